package agg

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Status of a read value, as in Feast.
type Status uint8

// Statuses.
const (
	Present       Status = iota
	NotFound             // no state for the entity
	NullValue            // the entity is known but the feature has no value at t (empty window)
	OutsideMaxAge        // the entity's latest event at or before t is older than the view's TTL
)

var statusNames = [...]string{"PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"}

func (s Status) String() string { return statusNames[s] }

// Result is one feature's value at a read time. Value is float64 or string; nil unless
// Present. EventTime is the entity's latest event time at or before t (ms; 0 when none).
type Result struct {
	Status    Status
	Value     any
	EventTime int64
}

// Exact reports whether s answers reads at t exactly: t must not be more than the view's
// read-back behind the entity's newest event. Older reads belong to the offline store.
func (e *Engine) Exact(s *State, t int64) bool {
	return s == nil || t >= s.Watermark-e.readBack
}

// Read computes every feature of the view at t from s (nil means no state).
func (e *Engine) Read(s *State, t int64) []Result {
	out := make([]Result, len(e.View.Features))
	e.ReadInto(s, t, out)
	return out
}

// ReadInto is Read into a caller's slice of len(View.Features).
func (e *Engine) ReadInto(s *State, t int64, out []Result) {
	if s == nil {
		for i := range out {
			out[i] = Result{Status: NotFound}
		}
		return
	}
	latest := e.latestAtOrBefore(s, t)
	if latest < 0 {
		for i := range out {
			out[i] = Result{Status: NotFound}
		}
		return
	}
	if t-latest > time.Duration(e.View.TTL).Milliseconds() {
		for i := range out {
			out[i] = Result{Status: OutsideMaxAge, EventTime: latest}
		}
		return
	}
	var memo []cellMemo // features sharing a cell and window (sum, avg, max of amount/24h) read it once
	for i, f := range e.View.Features {
		var r Result
		switch f.Agg {
		case views.CountDistinct:
			r = e.readDistinct(s, i, t, time.Duration(f.Window).Milliseconds())
		case views.Last:
			r = e.readLast(s, i, t, time.Duration(f.Window).Milliseconds())
		default:
			r = e.readWindowed(s, i, t, &memo)
		}
		r.EventTime = latest
		out[i] = r
	}
}

func (e *Engine) latestAtOrBefore(s *State, t int64) int64 {
	latest := int64(-1)
	for _, ev := range s.Head {
		if ev.Time <= t && ev.Time > latest {
			latest = ev.Time
		}
	}
	if latest < 0 && s.Evicted && s.LastTime.Time <= t {
		latest = s.LastTime.Time
	}
	return latest
}

type cellMemo struct {
	res, cell int
	window    int64
	c         Cell
}

func (e *Engine) readWindowed(s *State, i int, t int64, memo *[]cellMemo) Result {
	f := e.View.Features[i]
	r := e.res[i]
	window := time.Duration(f.Window).Milliseconds()
	var c Cell
	found := false
	for _, m := range *memo {
		if m.res == r && m.cell == e.cellAt[r][i] && m.window == window {
			c, found = m.c, true
			break
		}
	}
	if !found {
		own := floorDiv(t, e.Sizes[r]) * e.Sizes[r]
		from := own - window + e.Sizes[r]
		// The body of the window: whole tiles of the feature's own size.
		e.mergeTiles(&c, s.Tiles[r], e.cellAt[r][i], from, own)
		// The read time's own tile, from ever finer tiles...
		for j := r - 1; j >= 0; j-- {
			finer := floorDiv(t, e.Sizes[j]) * e.Sizes[j]
			e.mergeTiles(&c, s.Tiles[j], e.cellAt[j][i], own, finer)
			own = finer
		}
		// ...and the raw events of the finest tile, up to t.
		for _, ev := range s.Head {
			if ev.Time >= own && ev.Time <= t && ev.Vals[i].Kind == Num {
				c.add(ev.Vals[i].Num)
			}
		}
		*memo = append(*memo, cellMemo{res: r, cell: e.cellAt[r][i], window: window, c: c})
	}
	switch f.Agg {
	case views.Count:
		return Result{Value: float64(c.N)}
	case views.Sum:
		return Result{Value: c.Sum}
	}
	if c.N == 0 {
		return Result{Status: NullValue}
	}
	switch f.Agg {
	case views.Avg:
		return Result{Value: c.Sum / float64(c.N)}
	case views.Min:
		return Result{Value: c.Min}
	case views.Max:
		return Result{Value: c.Max}
	default: // stddev, population
		mean := c.Sum / float64(c.N)
		return Result{Value: math.Sqrt(math.Max(0, c.SumSq/float64(c.N)-mean*mean))}
	}
}

// mergeTiles adds cell ci of the tiles starting in [from, to), in order.
func (e *Engine) mergeTiles(c *Cell, tiles []Tile, ci int, from, to int64) {
	k := sort.Search(len(tiles), func(j int) bool { return tiles[j].Start >= from })
	for ; k < len(tiles) && tiles[k].Start < to; k++ {
		c.merge(tiles[k].Cells[ci])
	}
}

func (e *Engine) readDistinct(s *State, i int, t, window int64) Result {
	// Distinct holds one latest sighting per value, so its values in the window count
	// directly; a value seen only in Head counts once unless Distinct already counted it.
	n := 0
	for _, sg := range s.Distinct[i] {
		if sg.Time > t-window && sg.Time <= t {
			n++
		}
	}
	var seen []string // Head is a minute or so of events: a slice beats a map
	for _, ev := range s.Head {
		v := ev.Vals[i]
		if v.Kind == None || ev.Time <= t-window || ev.Time > t {
			continue
		}
		k := distinctKey(v)
		if sg, ok := s.Distinct[i][k]; ok && sg.Time > t-window && sg.Time <= t {
			continue
		}
		if !slices.Contains(seen, k) {
			seen = append(seen, k)
		}
	}
	return Result{Value: float64(n + len(seen))}
}

func (e *Engine) readLast(s *State, i int, t, window int64) Result {
	var best LastValue
	found := false
	for _, ev := range s.Head {
		v := ev.Vals[i]
		if v.Kind == None || ev.Time > t || (window > 0 && ev.Time <= t-window) {
			continue
		}
		if !found || later(ev.Time, ev.Seq, best.Time, best.Seq) {
			best, found = LastValue{Time: ev.Time, Seq: ev.Seq, Val: v}, true
		}
	}
	if !found {
		lo := s.LastOut[i]
		if lo.Val.Kind != None && lo.Time <= t && (window == 0 || lo.Time > t-window) {
			best, found = lo, true
		}
	}
	if !found {
		return Result{Status: NullValue}
	}
	if best.Val.Kind == Str {
		return Result{Value: best.Val.Str}
	}
	return Result{Value: best.Val.Num}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
