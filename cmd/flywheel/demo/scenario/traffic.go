package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

var nan = math.NaN()

// traffic is live card payments: each is scored by serving (one request, as a checkout
// would), then published to the raw stream, and its label follows LabelDelay later.
type traffic struct {
	cfg      Config
	world    *world
	mu       sync.Mutex // world and the records
	producer *kafkax.Producer
	client   *http.Client

	ok, failed  atomic.Int64
	sent        atomic.Int64
	lastFailure atomic.Value // string
	compareTo   atomic.Int64 // when > 0, payments are also scored by this version, pinned
	records     []scored
	truth       map[string]bool   // payment id → fraud, until its label is published
	firstSeen   map[int]time.Time // version → when it first answered
}

// scored is one payment's answers and truth.
type scored struct {
	at      time.Time
	drifted bool
	fraud   bool
	version int
	score   float64
	pinned  float64 // the compared version's score (NaN: not compared)
}

func newTraffic(cfg Config, w *world, p *kafkax.Producer) *traffic {
	return &traffic{cfg: cfg, world: w, producer: p, firstSeen: map[int]time.Time{}, truth: map[string]bool{},
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// run sends cfg.Rate payments a second until ctx ends.
func (t *traffic) run(ctx context.Context) error {
	work := make(chan payment, 4*t.cfg.Rate)
	events := make(chan kafkax.Message, 8*t.cfg.Rate)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for p := range work {
				t.score(ctx, p)
				// a checkout publishes the payment once it is authorised, after the score
				p.At = time.Now().UTC()
				events <- kafkax.Message{Topic: schemas.RawTopic(t.cfg.Stream), Key: []byte(p.Card), Value: []byte(p.event())}
			}
		})
	}
	published := make(chan error, 1)
	go func() { published <- t.publish(ctx, events) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	carry := 0.0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			carry += float64(t.cfg.Rate) / 10
			t.mu.Lock()
			batch := make([]payment, 0, int(carry))
			for ; carry >= 1; carry-- {
				batch = append(batch, t.world.next(now.UTC()))
			}
			t.mu.Unlock()
			for _, p := range batch {
				select {
				case work <- p:
				default: // the services cannot keep up: the payment is not sent at all
				}
			}
		}
	}
	close(work)
	wg.Wait()
	close(events)
	return <-published
}

// publish writes payments to the raw stream every 100 ms and their labels once due.
func (t *traffic) publish(ctx context.Context, events <-chan kafkax.Message) error {
	type due struct {
		at  time.Time
		msg kafkax.Message
	}
	var labels []due
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	var batch []kafkax.Message
	send := func(final bool) error {
		now := time.Now()
		n := 0
		for n < len(labels) && (final || !labels[n].at.After(now)) {
			batch = append(batch, labels[n].msg)
			n++
		}
		labels = labels[n:]
		if len(batch) == 0 {
			return nil
		}
		err := t.producer.Produce(context.WithoutCancel(ctx), batch...)
		batch = batch[:0]
		return err
	}
	for {
		select {
		case m, ok := <-events:
			if !ok {
				return send(true)
			}
			batch = append(batch, m)
			var tx struct {
				ID   string `json:"transaction_id"`
				Card string `json:"card_id"`
			}
			_ = json.Unmarshal(m.Value, &tx)
			t.mu.Lock()
			label := t.labelOf(tx.ID)
			t.mu.Unlock()
			at := time.Now().Add(t.cfg.LabelDelay)
			labels = append(labels, due{at: at, msg: kafkax.Message{Topic: schemas.RawTopic(t.cfg.Labels), Key: []byte(tx.Card),
				Value: []byte(fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"is_fraud":%v,"event_time":%q}`, tx.ID, tx.Card, label, at.UTC().Format(time.RFC3339Nano)))}})
		case <-flush.C:
			if err := send(false); err != nil {
				return fmt.Errorf("publish payments and labels: %w", err)
			}
		}
	}
}

// score asks serving for the payment's fraud score, and the compared version's when set.
func (t *traffic) score(ctx context.Context, p payment) {
	body := []byte(`{"instances":[` + p.instance() + `]}`)
	version, score, err := t.predict(ctx, p.ID, body, 0)
	t.sent.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			t.failed.Add(1)
			t.lastFailure.Store(err.Error())
		}
		t.mu.Lock()
		t.truth[p.ID] = p.Fraud
		t.mu.Unlock()
		return
	}
	t.ok.Add(1)
	r := scored{at: p.At, drifted: t.world.isDrifted(), fraud: p.Fraud, version: version, score: score, pinned: nan}
	if v := int(t.compareTo.Load()); v > 0 && v != version {
		if _, s, err := t.predict(ctx, p.ID+"-cmp", body, v); err == nil {
			r.pinned = s
		}
	}
	t.mu.Lock()
	t.truth[p.ID] = p.Fraud
	t.records = append(t.records, r)
	if _, seen := t.firstSeen[version]; !seen {
		t.firstSeen[version] = time.Now()
	}
	t.mu.Unlock()
}

func (t *traffic) labelOf(id string) bool {
	fraud := t.truth[id]
	delete(t.truth, id)
	return fraud
}

func (t *traffic) predict(ctx context.Context, id string, body []byte, pin int) (int, float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.Services["serving"]+"/v1/models/"+t.cfg.Model+":predict", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	if pin > 0 {
		req.Header.Set("X-Flywheel-Model-Version", fmt.Sprint(pin))
	}
	if t.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.cfg.Token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("serving answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var out struct {
		Predictions []struct {
			Version int     `json:"version"`
			Score   float64 `json:"score"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Predictions) != 1 {
		return 0, 0, fmt.Errorf("serving answered %s", b)
	}
	return out.Predictions[0].Version, out.Predictions[0].Score, nil
}

// snapshot copies the records so far.
func (t *traffic) snapshot() ([]scored, map[int]time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[int]time.Time, len(t.firstSeen))
	for v, at := range t.firstSeen {
		seen[v] = at
	}
	return append([]scored(nil), t.records...), seen
}
