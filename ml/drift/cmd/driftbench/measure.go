package main

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// results is everything a run measured, with its conditions.
type results struct {
	Config     config          `json:"config"`
	Monitor    monitorConfig   `json:"monitor"`
	Machine    machine         `json:"machine"`
	Load       load            `json:"load"`
	Features   []featureInfo   `json:"features"`
	Conditions []condition     `json:"conditions"`
	Profile    profileInfo     `json:"profile"`
	FA         []faCell        `json:"false_alarms,omitempty"`
	Detect     []detectCell    `json:"detection,omitempty"`
	Throughput *throughputInfo `json:"throughput,omitempty"`
	Seconds    float64         `json:"seconds"`
}

type featureInfo struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Missing float64 `json:"missing"`
	Bins    int     `json:"bins"` // profile bins (categories + unseen for categorical)
}

type profileInfo struct {
	Rows       int `json:"rows"`
	SampleRows int `json:"sample_rows"`
	Bins       int `json:"bins"`
	JSONBytes  int `json:"json_bytes"`
}

// faCell is one window size's stationary windows.
type faCell struct {
	N          int            `json:"n"`
	Windows    int            `json:"windows"`
	Data       int            `json:"data_verdicts"`       // windows with a data-drift verdict
	Events     int            `json:"events"`              // events by k-of-n persistence over consecutive windows
	Prediction int            `json:"prediction_verdicts"` // windows with a prediction-drift verdict
	Rejected   []int          `json:"rejected_per_feature"`
	Fixed      map[string]int `json:"fixed"`           // windows where the rule alarms on some feature
	PerFeature map[string]int `json:"fixed_on_normal"` // the rule's alarms on the N(0,1) feature alone
	Seconds    float64        `json:"seconds"`
}

// detectCell is one window size and change.
type detectCell struct {
	N         int             `json:"n"`
	Condition string          `json:"condition"`
	Trials    int             `json:"trials"`
	Cap       int             `json:"cap"`
	Verdict   runs            `json:"verdict"` // first window with a data-drift verdict
	Event     runs            `json:"event"`   // first window raising an event
	Named     int             `json:"named"`   // trials whose first verdict rejected the changed feature
	Fixed     map[string]runs `json:"fixed"`
	Seconds   float64         `json:"seconds"`
}

// runs summarises, over trials, the window at which something was first detected (1 = the
// first window after the change; 0 = not within the cap).
type runs struct {
	First    []int   `json:"first"`
	Detected int     `json:"detected"`
	Within3  int     `json:"within3"`
	Median   float64 `json:"median"` // +Inf (JSON: null) when more than half were not detected
	Max      int     `json:"max"`    // 0 when some trial was not detected
}

func summarise(first []int) runs {
	r := runs{First: first}
	sorted := make([]float64, len(first))
	for i, f := range first {
		if f > 0 {
			r.Detected++
			if f <= 3 {
				r.Within3++
			}
			r.Max = max(r.Max, f)
			sorted[i] = float64(f)
		} else {
			sorted[i] = math.Inf(1)
		}
	}
	if r.Detected < len(first) {
		r.Max = 0
	}
	slices.Sort(sorted)
	if k := len(sorted); k > 0 {
		r.Median = sorted[(k-1)/2]
		if k%2 == 0 {
			r.Median = (sorted[k/2-1] + sorted[k/2]) / 2
		}
	}
	return r
}

// MarshalJSON writes an infinite median as null.
func (r runs) MarshalJSON() ([]byte, error) {
	type plain runs
	out := struct {
		plain
		Median *float64 `json:"median"`
	}{plain: plain(r)}
	if !math.IsInf(r.Median, 0) {
		out.Median = &r.Median
	}
	return json.Marshal(out)
}

// seedOf derives a stream's seed from what identifies it.
func seedOf(parts ...uint64) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write(binary.LittleEndian.AppendUint64(nil, p))
	}
	return h.Sum64()
}

// bench is the shared state of a run.
type bench struct {
	cfg    config
	s      *stream
	conds  []condition
	mon    *monitor
	fixed  *fixedRules
	normal int // index of the N(0,1) feature
}

// worker holds one goroutine's buffers, sized for the largest window.
type worker struct {
	flat  []float64
	rows  [][]float64
	preds []float64
	cols  [][]float64
}

func (b *bench) newWorker() *worker { return b.workerFor(slices.Max(b.cfg.Sizes)) }

// workerFor holds buffers for windows of up to n predictions.
func (b *bench) workerFor(n int) *worker {
	k := len(b.s.fs)
	w := &worker{flat: make([]float64, n*k), rows: make([][]float64, n), preds: make([]float64, n), cols: make([][]float64, k)}
	for j := range w.cols {
		w.cols[j] = make([]float64, n)
	}
	return w
}

// window draws a window of n under condition c and scores it with the monitor.
func (b *bench) window(w *worker, r *rand.Rand, n int, c *condition) verdict {
	b.s.window(r, c, w.flat[:n*len(b.s.fs)], w.rows[:n], w.preds[:n])
	return b.mon.detect(w.rows[:n], w.preds[:n], w.cols)
}

// parallel runs jobs on cfg.Workers goroutines.
func (b *bench) parallel(jobs []func(*worker)) {
	ch := make(chan func(*worker))
	var wg sync.WaitGroup
	for range b.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := b.newWorker()
			for job := range ch {
				job(w)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
}

func measure(cfg config, benchTime time.Duration) (*results, error) {
	start := time.Now()
	l0 := sampleLoad()
	fs := schema()
	b := &bench{cfg: cfg, s: &stream{fs: fs}, conds: conditions(fs)}
	res := &results{Config: cfg, Machine: describeMachine(), Conditions: b.conds}
	for i, f := range fs {
		if f.name == "normal" {
			b.normal = i
		}
	}

	// The reference: cfg.RefRows stationary rows, profiled as the trainer profiles its
	// training frame (profile.Build with default bins and sample), stored as JSON in the
	// artifact and read back by the monitor.
	t := time.Now()
	ref := &dataset.Frame{}
	for _, f := range fs {
		ref.Names = append(ref.Names, f.name)
		ref.Kinds = append(ref.Kinds, f.kind)
		ref.Cols = append(ref.Cols, make([]float64, cfg.RefRows))
	}
	flat := make([]float64, cfg.RefRows*len(fs))
	rows := make([][]float64, cfg.RefRows)
	preds := make([]float64, cfg.RefRows)
	b.s.window(rand.New(rand.NewPCG(cfg.Seed, seedOf(0))), &b.conds[0], flat, rows, preds)
	for i, row := range rows {
		for j, v := range row {
			ref.Cols[j][i] = v
		}
	}
	built, err := profile.Build(ref, preds, profile.Options{Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(built)
	if err != nil {
		return nil, err
	}
	var prof profile.Profile
	if err := json.Unmarshal(raw, &prof); err != nil {
		return nil, err
	}
	res.Profile = profileInfo{Rows: prof.Rows, SampleRows: len(prof.Sample.Rows), Bins: 10, JSONBytes: len(raw)}
	for j, f := range prof.Features {
		fi := featureInfo{Name: f.Name, Kind: f.Kind, Missing: f.Missing}
		if f.Numeric != nil {
			fi.Bins = len(f.Numeric.Counts)
		} else {
			fi.Bins = len(f.Categories) + 1
		}
		_ = j
		res.Features = append(res.Features, fi)
	}
	mc := defaultMonitor()
	if cfg.Numeric != "" {
		mc.Numeric = drift.Method(cfg.Numeric)
	}
	if cfg.Categorical != "" {
		mc.Categorical = drift.Method(cfg.Categorical)
	}
	if b.mon, err = newMonitor(&prof, mc); err != nil {
		return nil, err
	}
	res.Monitor = b.mon.cfg
	if b.fixed, err = newFixedRules(&prof, ref); err != nil {
		return nil, err
	}
	logf("reference of %d rows profiled in %.1fs (profile JSON %d bytes)", cfg.RefRows, time.Since(t).Seconds(), len(raw))

	if has(cfg.Parts, "fa") {
		res.FA = b.falseAlarms()
	}
	if has(cfg.Parts, "detect") {
		res.Detect = b.detection()
	}
	if has(cfg.Parts, "throughput") {
		tp, err := b.throughput(&prof, benchTime)
		if err != nil {
			return nil, err
		}
		res.Throughput = tp
	}
	res.Seconds = time.Since(start).Seconds()
	res.Load = l0.until(sampleLoad())
	return res, nil
}

// falseAlarms scores cfg.Windows stationary windows per size: verdicts, events over the
// windows taken in order, and the fixed rules on the same windows.
func (b *bench) falseAlarms() []faCell {
	var out []faCell
	for si, n := range b.cfg.Sizes {
		t := time.Now()
		W := b.cfg.Windows[si]
		type win struct {
			v     verdict
			fixed map[string]bool
			onN   map[string]bool
		}
		wins := make([]win, W)
		jobs := make([]func(*worker), 0, W)
		for i := range W {
			jobs = append(jobs, func(w *worker) {
				r := rand.New(rand.NewPCG(b.cfg.Seed, seedOf(1, uint64(n), uint64(i))))
				v := b.window(w, r, n, &b.conds[0])
				x := win{v: v}
				x.fixed, x.onN = b.fixed.window(w.cols, n, v.psi, nil, b.normal)
				wins[i] = x
			})
		}
		b.parallel(jobs)
		c := faCell{N: n, Windows: W, Rejected: make([]int, len(b.s.fs)), Fixed: map[string]int{}, PerFeature: map[string]int{}}
		p := &persistence{k: b.mon.cfg.PersistK, n: b.mon.cfg.PersistN}
		for _, x := range wins {
			if x.v.data {
				c.Data++
			}
			if p.observe(x.v.data) {
				c.Events++
			}
			if x.v.prediction {
				c.Prediction++
			}
			for j, r := range x.v.rejected {
				if r {
					c.Rejected[j]++
				}
			}
			for _, rule := range rules {
				if x.fixed[rule] {
					c.Fixed[rule]++
				}
				if x.onN[rule] {
					c.PerFeature[rule]++
				}
			}
		}
		c.Seconds = time.Since(t).Seconds()
		logf("false alarms n=%d: %d/%d data verdicts, %d events, fixed %v (%.0fs)", n, c.Data, W, c.Events, c.Fixed, c.Seconds)
		out = append(out, c)
	}
	return out
}

// detection runs, per size and change, cfg.Trials streams that change at window 1 after a
// clean history: windows are drawn until the monitor's verdict, its event and every fixed
// rule have fired, or cfg.Cap windows.
func (b *bench) detection() []detectCell {
	var out []detectCell
	for si, n := range b.cfg.Sizes {
		for ci := 1; ci < len(b.conds); ci++ {
			t := time.Now()
			c := &b.conds[ci]
			T := b.cfg.Trials[si]
			type trial struct {
				verdict, event int
				named          bool
				fixed          map[string]int
			}
			trials := make([]trial, T)
			jobs := make([]func(*worker), 0, T)
			for k := range T {
				jobs = append(jobs, func(w *worker) {
					r := rand.New(rand.NewPCG(b.cfg.Seed, seedOf(2, uint64(n), uint64(ci), uint64(k))))
					tr := trial{fixed: map[string]int{}}
					p := &persistence{k: b.mon.cfg.PersistK, n: b.mon.cfg.PersistN}
					for win := 1; win <= b.cfg.Cap; win++ {
						v := b.window(w, r, n, c)
						if v.data && tr.verdict == 0 {
							tr.verdict, tr.named = win, v.rejected[c.index]
						}
						if p.observe(v.data) && tr.event == 0 {
							tr.event = win
						}
						need := map[string]bool{}
						for _, rule := range rules {
							if tr.fixed[rule] == 0 && applies(rule, c) {
								need[rule] = true
							}
						}
						if len(need) > 0 {
							alarm, _ := b.fixed.window(w.cols, n, v.psi, need, -1)
							for rule := range need {
								if alarm[rule] {
									tr.fixed[rule] = win
									delete(need, rule)
								}
							}
						}
						done := tr.verdict > 0 && tr.event > 0 && len(need) == 0
						if done {
							break
						}
					}
					trials[k] = tr
				})
			}
			b.parallel(jobs)
			cell := detectCell{N: n, Condition: c.Name, Trials: T, Cap: b.cfg.Cap, Fixed: map[string]runs{}}
			verdicts, events := make([]int, T), make([]int, T)
			fixed := map[string][]int{}
			for k, tr := range trials {
				verdicts[k], events[k] = tr.verdict, tr.event
				if tr.named {
					cell.Named++
				}
				for _, rule := range rules {
					fixed[rule] = append(fixed[rule], tr.fixed[rule])
				}
			}
			cell.Verdict, cell.Event = summarise(verdicts), summarise(events)
			for _, rule := range rules {
				cell.Fixed[rule] = summarise(fixed[rule])
			}
			cell.Seconds = time.Since(t).Seconds()
			logf("detect n=%d %s: verdict median %v max %d within3 %d/%d; event median %v within3 %d (%.0fs)", n, c.Name,
				cell.Verdict.Median, cell.Verdict.Max, cell.Verdict.Within3, T, cell.Event.Median, cell.Event.Within3, cell.Seconds)
			out = append(out, cell)
		}
	}
	return out
}

// applies reports whether a fixed rule can see change c: KS and Wasserstein read numeric
// features only.
func applies(rule string, c *condition) bool {
	return rule == rulePSI || c.probs == nil
}
