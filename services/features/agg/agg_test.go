package agg_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

const viewYAML = `
name: card_activity
entities: [card_id]
source: transactions
ttl: 8d
lateness: 30m
features:
  - {name: txn_count_10m, agg: count, window: 10m, default: 0}
  - {name: txn_count_1h, agg: count, window: 1h, default: 0}
  - {name: txn_count_7d, agg: count, window: 7d, default: 0}
  - {name: amount_sum_1h, agg: sum, field: amount, window: 1h, default: 0}
  - {name: amount_avg_24h, agg: avg, field: amount, window: 24h, default: 0}
  - {name: amount_max_24h, agg: max, field: amount, window: 24h, default: 0}
  - {name: amount_min_24h, agg: min, field: amount, window: 24h, default: 0}
  - {name: amount_std_24h, agg: stddev, field: amount, window: 24h, default: 0}
  - {name: distinct_merchants_24h, agg: count_distinct, field: merchant_id, window: 24h, default: 0}
  - {name: last_country, agg: last, field: country, default: ""}
  - {name: ecom_count_1h, agg: count, window: 1h, filter: {field: channel, op: eq, value: ecom}, default: 0}
`

func engine(t testing.TB) *agg.Engine {
	t.Helper()
	v, err := views.Parse([]byte(viewYAML))
	if err != nil {
		t.Fatal(err)
	}
	return agg.NewEngine(v)
}

var base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()

func event(ts int64, amount float64, merchant, country string, ecom bool) agg.Event {
	one := agg.Value{Kind: agg.Num, Num: 1}
	num := agg.Value{Kind: agg.Num, Num: amount}
	ecomVal := agg.Value{}
	if ecom {
		ecomVal = one
	}
	return agg.Event{Time: ts, Vals: []agg.Value{one, one, one, num, num, num, num, num,
		{Kind: agg.Str, Str: merchant}, {Kind: agg.Str, Str: country}, ecomVal}}
}

func value(t *testing.T, e *agg.Engine, s *agg.State, at int64, name string) any {
	t.Helper()
	i, ok := e.View.Feature(name)
	if !ok {
		t.Fatalf("no feature %s", name)
	}
	r := e.Read(s, at)[i]
	if r.Status != agg.Present {
		return r.Status.String()
	}
	return r.Value
}

func TestWindowsAreExactAtAnyReadTime(t *testing.T) {
	e := engine(t)
	s := e.NewState()
	e.Apply(s, event(base, 10, "m1", "DE", false))
	e.Apply(s, event(base+5*60_000, 20, "m2", "FR", true))
	e.Apply(s, event(base+20*60_000, 30, "m1", "NL", false))

	checks := []struct {
		at   int64
		name string
		want any
	}{
		{base + 20*60_000, "txn_count_1h", 3.0},
		{base + 20*60_000, "txn_count_10m", 1.0},
		{base + 20*60_000 - 1, "txn_count_10m", 0.0}, // an event is never visible before its time
		{base + 20*60_000, "amount_sum_1h", 60.0},
		{base + 20*60_000, "ecom_count_1h", 1.0},
		{base + 20*60_000, "distinct_merchants_24h", 2.0},
		{base + 20*60_000, "last_country", "NL"},
		{base + 19*60_000, "last_country", "FR"},
		{base + 20*60_000, "amount_avg_24h", 20.0},
		{base + 20*60_000, "amount_min_24h", 10.0},
		{base + 20*60_000, "amount_max_24h", 30.0},
		{base + 20*60_000, "amount_std_24h", math.Sqrt(200.0 / 3)},
		// Two hours after the last event, with no new event, the 1h count is 0.
		{base + 140*60_000, "txn_count_1h", 0.0},
		{base + 140*60_000, "amount_sum_1h", 0.0},
		{base + 140*60_000, "txn_count_7d", 3.0},
		{base + 25*3600_000, "amount_avg_24h", "NULL_VALUE"},
		{base + 25*3600_000, "distinct_merchants_24h", 0.0},
		{base + 25*3600_000, "last_country", "NL"},
		{base + 9*24*3600_000, "txn_count_7d", "OUTSIDE_MAX_AGE"},
		{base - 1, "txn_count_1h", "NOT_FOUND"},
	}
	for _, c := range checks {
		if got := value(t, e, s, c.at, c.name); got != c.want {
			if f, ok := got.(float64); ok && c.want == f {
				continue
			}
			t.Errorf("%s at +%dm: got %v, want %v", c.name, (c.at-base)/60_000, got, c.want)
		}
	}
	if r := e.Read(nil, base); r[0].Status != agg.NotFound {
		t.Errorf("no state: got %v", r[0].Status)
	}
}

func TestWindowStartsOnTheTileGrid(t *testing.T) {
	e := engine(t)
	s := e.NewState()
	// 1h windows use 1-minute tiles: at 11:00:30 the window starts at 10:01:00.
	e.Apply(s, event(base+30_000, 1, "m", "DE", false)) // 10:00:30, in the tile 10:00
	e.Apply(s, event(base+61_000, 1, "m", "DE", false)) // 10:01:01
	if got := value(t, e, s, base+3600_000+30_000, "txn_count_1h"); got != 1.0 {
		t.Fatalf("got %v, want 1 (the 10:00 tile is outside the window)", got)
	}
	if got := value(t, e, s, base+3600_000-1, "txn_count_1h"); got != 2.0 {
		t.Fatalf("got %v, want 2", got)
	}
}

func TestLateEvents(t *testing.T) {
	e := engine(t)
	s := e.NewState()
	e.Apply(s, event(base+60*60_000, 5, "m", "DE", false))
	if !e.Apply(s, event(base+40*60_000, 7, "m", "DE", false)) {
		t.Fatal("an event 20m late is within the 30m lateness")
	}
	if e.Apply(s, event(base+20*60_000, 9, "m", "DE", false)) {
		t.Fatal("an event 40m late must be dropped")
	}
	if got := value(t, e, s, base+60*60_000, "amount_sum_1h"); got != 12.0 {
		t.Fatalf("late event must land in its tile: sum %v", got)
	}
	if got := value(t, e, s, base+60*60_000, "last_country"); got != "DE" {
		t.Fatalf("last %v", got)
	}
}

// The core skew property: for random streams with out-of-order and too-late events and
// float amounts, the online state (encoded and decoded as Redis keeps it) and the offline
// history of applied events return identical values, bit for bit, at every read time the
// online store serves (t >= watermark - read_back).
func TestOnlineEqualsOfflineBitForBit(t *testing.T) {
	e := engine(t)
	rng := rand.New(rand.NewPCG(1, 2))
	merchants := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	countries := []string{"DE", "FR", "NL"}
	for entity := range 40 {
		s := e.NewState()
		var applied []agg.Event
		now := base
		for step := range 400 {
			now += int64(rng.ExpFloat64() * 10 * 60_000)
			ts := now - int64(rng.Float64()*float64(rng.IntN(3))*35*60_000) // some late, some too late
			ev := event(ts, math.Round(rng.ExpFloat64()*3000)/100+rng.Float64()/3, merchants[rng.IntN(6)], countries[rng.IntN(3)], rng.IntN(3) == 0)
			seq := s.NextSeq
			if e.Apply(s, ev) {
				ev.Seq = seq
				applied = append(applied, ev)
			}
			if step%17 == 0 { // round-trip through the Redis encoding
				blob := e.Encode(nil, s)
				back, err := e.Decode(blob)
				if err != nil {
					t.Fatal(err)
				}
				s = back
			}
			if step%5 != 0 {
				continue
			}
			h := e.NewHistory(applied)
			for range 3 {
				at := s.Watermark - int64(rng.Float64()*float64(5*60_000)) + int64(rng.IntN(3))*int64(rng.IntN(5*3600_000))
				online := e.Read(s, at)
				offline := make([]agg.Result, len(online))
				h.Read(at, offline)
				if !reflect.DeepEqual(online, offline) {
					t.Fatalf("entity %d step %d at %d:\nonline  %v\noffline %v", entity, step, at, online, offline)
				}
				for i := range online {
					if a, ok := online[i].Value.(float64); ok && math.Float64bits(a) != math.Float64bits(offline[i].Value.(float64)) {
						t.Fatalf("bits differ for feature %d", i)
					}
				}
			}
		}
	}
}

func TestDecodeRejectsCorruptBlobs(t *testing.T) {
	e := engine(t)
	s := e.NewState()
	for i := range 50 {
		e.Apply(s, event(base+int64(i)*60_000, float64(i), fmt.Sprint("m", i%4), "DE", i%2 == 0))
	}
	blob := e.Encode(nil, s)
	for cut := range len(blob) {
		if _, err := e.Decode(blob[:cut]); err == nil {
			t.Fatalf("a blob cut at %d of %d decoded without error", cut, len(blob))
		}
	}
	back, err := e.Decode(blob)
	if err != nil || !reflect.DeepEqual(e.Read(back, base+3600_000), e.Read(s, base+3600_000)) {
		t.Fatalf("round trip changed values: %v", err)
	}
}

func BenchmarkApplyAndEncode(b *testing.B) {
	e := engine(b)
	s := e.NewState()
	for i := range 200 {
		e.Apply(s, event(base+int64(i)*300_000, float64(i), fmt.Sprint("m", i%9), "DE", i%3 == 0))
	}
	blob := e.Encode(nil, s)
	b.ReportAllocs()
	b.SetBytes(int64(len(blob)))
	i := 200
	for b.Loop() {
		st, _ := e.Decode(blob)
		e.Apply(st, event(base+int64(i)*300_000, 5, "m1", "DE", false))
		blob = e.Encode(blob[:0], st)
		i++
	}
}

func BenchmarkRead(b *testing.B) {
	e := engine(b)
	s := e.NewState()
	for i := range 200 {
		e.Apply(s, event(base+int64(i)*300_000, float64(i), fmt.Sprint("m", i%9), "DE", i%3 == 0))
	}
	out := make([]agg.Result, len(e.View.Features))
	b.ReportAllocs()
	for b.Loop() {
		e.ReadInto(s, s.Watermark, out)
	}
}

// FuzzDecode: no blob, however broken, crashes the decoder or yields a state reads choke on.
func FuzzDecode(f *testing.F) {
	e := engine(f)
	s := e.NewState()
	for i := range 30 {
		e.Apply(s, event(base+int64(i)*90_000, float64(i), fmt.Sprint("m", i%4), "DE", i%2 == 0))
	}
	f.Add(e.Encode(nil, s))
	f.Add(e.Encode(nil, e.NewState()))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, blob []byte) {
		st, err := e.Decode(blob)
		if err != nil {
			return
		}
		e.Read(st, st.Watermark)
		e.Apply(st, event(st.Watermark, 1, "m", "DE", false))
		if _, err := e.Decode(e.Encode(nil, st)); err != nil {
			t.Fatalf("a decoded state does not survive a round trip: %v", err)
		}
	})
}
