// Package agg is the one place the semantics of Flywheel's streaming features live. It folds
// events into per-entity state — tiles of partial aggregates plus the raw events of the most
// recent stretch — and reads feature values at any time t from that state. The online store
// (Redis) keeps the state; the offline store replays the same applied events through the same
// code, so online and offline values are identical, bit for bit.
//
// Semantics, for a read at time t (milliseconds):
//   - A windowed feature (count, sum, avg, min, max, stddev) with window W and tile size T
//     aggregates the full tiles before t's own tile whose start is at or after
//     floor(t/T)*T - W + T, plus the events of t's own tile with event time <= t, added in
//     arrival order. The window therefore spans (W - T, W], ends exactly at t, and never sees
//     an event after t.
//   - count_distinct counts distinct values among events with event time in (t - W, t].
//   - last is the value of the latest event with event time <= t (and > t - W when windowed);
//     ties go to the later arrival.
//   - An event more than the view's lateness behind the entity's latest event time is dropped
//     (and counted); a later one within lateness updates the tile it belongs to.
//
// This package imports no infrastructure.
package agg

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Value kinds.
const (
	None uint8 = iota // the feature takes nothing from this event (field absent, or filtered out)
	Num
	Str
)

// Value is one event's input to one feature. Count features get Num with Num = 1.
type Value struct {
	Kind uint8
	Num  float64
	Str  string
}

// Event is one event's inputs to a view, aligned with the view's features.
type Event struct {
	Time int64 // event time, Unix milliseconds
	Seq  int64 // arrival order within the entity
	Vals []Value
}

// Cell is a tile's partial aggregate of one feature.
type Cell struct {
	N          int64
	Sum, SumSq float64
	Min, Max   float64
}

func (c *Cell) add(x float64) {
	if c.N == 0 {
		c.Min, c.Max = x, x
	} else {
		c.Min, c.Max = math.Min(c.Min, x), math.Max(c.Max, x)
	}
	c.N++
	c.Sum += x
	c.SumSq += x * x
}

func (c *Cell) merge(o Cell) {
	if o.N == 0 {
		return
	}
	if c.N == 0 {
		c.Min, c.Max = o.Min, o.Max
	} else {
		c.Min, c.Max = math.Min(c.Min, o.Min), math.Max(c.Max, o.Max)
	}
	c.N += o.N
	c.Sum += o.Sum
	c.SumSq += o.SumSq
}

// Tile holds the cells of the features sharing one tile size, for one tile.
type Tile struct {
	Start int64
	Cells []Cell
}

// Sighting is when a value was last seen.
type Sighting struct {
	Time, Seq int64
}

// LastValue is a remembered value with its time.
type LastValue struct {
	Time, Seq int64
	Val       Value
}

// State is one entity's state for one view.
type State struct {
	Watermark int64                 // latest event time applied
	Head      []Event               // recent events in arrival order
	Tiles     [][]Tile              // per tile size (Engine.Sizes), sorted by start
	Distinct  []map[string]Sighting // per feature: sightings of events evicted from Head
	LastOut   []LastValue           // per feature: latest value among events evicted from Head
	LastTime  LastValue             // latest event (any feature) evicted from Head
	Evicted   bool                  // whether LastTime holds an event
	NextSeq   int64

	// distinctPrunedAt is the watermark of the last pruning of Distinct. Pruning walks the
	// whole sets, so it runs once per minute of event time rather than per event; entries
	// it has not dropped yet are outside every readable window, so reads are unchanged. Not
	// encoded: a decoded state prunes at its first event.
	distinctPrunedAt int64
}

// distinctPruneEvery is how far event time moves between prunings of Distinct (ms).
const distinctPruneEvery = 60_000

// Engine applies and reads one view's features.
//
// Tiles exist at every size of views.Ladder up to the view's coarsest, and every input is
// kept at its own size and all finer ones: a read takes whole coarse tiles for the body of a
// window and assembles the read time's own coarse tile from finer tiles, down to one minute,
// plus the raw events of the read time's own minute. So the state only keeps raw events for
// the last minute plus the view's read-back, however long its windows are.
type Engine struct {
	View     *views.View
	Sizes    []int64   // tile sizes (ms), finest first
	res      []int     // per feature: index into Sizes of its own tile size, -1 when not tiled
	cellAt   [][]int   // per tile size and feature: cell index, -1 when not kept there
	cells    []int     // per tile size: number of cells
	src      [][]int   // per tile size and cell: the feature whose input feeds the cell
	needs    [][]uint8 // per tile size and cell: which statistics readers use (need* bits)
	lateness int64
	readBack int64
	headSpan int64
	keep     []int64 // per tile size: how far behind the watermark its tiles are still read (ms)
}

// NewEngine compiles a view.
func NewEngine(v *views.View) *Engine {
	e := &Engine{View: v, lateness: time.Duration(v.Lateness).Milliseconds(), readBack: time.Duration(v.ReadBack).Milliseconds()}
	top := -1
	for _, f := range v.Features {
		if views.Windowed(f.Agg) {
			top = max(top, slices.Index(views.Ladder, f.Tile))
		}
	}
	for _, d := range views.Ladder[:top+1] {
		e.Sizes = append(e.Sizes, d.Milliseconds())
	}
	n := len(e.Sizes)
	e.cellAt = make([][]int, n)
	e.cells = make([]int, n)
	e.src = make([][]int, n)
	e.needs = make([][]uint8, n)
	e.keep = make([]int64, n)
	// Features with the same input (the same field and filter, or the same filter for counts)
	// share one cell per tile size: txn_count_10m and txn_count_1h, or the sum, avg and max of
	// amount over 24h, are one partial aggregate each.
	shared := make([]map[string]int, n)
	for r := range n {
		shared[r] = map[string]int{}
		e.cellAt[r] = make([]int, len(v.Features))
		for i := range e.cellAt[r] {
			e.cellAt[r][i] = -1
		}
	}
	for i, f := range v.Features {
		if !views.Windowed(f.Agg) {
			e.res = append(e.res, -1)
			continue
		}
		own := slices.Index(views.Ladder, f.Tile)
		e.res = append(e.res, own)
		field := f.Field
		if f.Agg == views.Count {
			field = ""
		}
		key := fmt.Sprintf("%s|%v", field, f.Filter)
		for r := 0; r <= own; r++ {
			c, ok := shared[r][key]
			if !ok {
				c = e.cells[r]
				shared[r][key] = c
				e.cells[r]++
				e.src[r] = append(e.src[r], i)
				e.needs[r] = append(e.needs[r], 0)
			}
			e.needs[r][c] |= needsOf(f.Agg)
			e.cellAt[r][i] = c
		}
		e.keep[own] = max(e.keep[own], time.Duration(f.Window).Milliseconds())
	}
	for r := range n - 1 {
		e.keep[r] = max(e.keep[r], e.Sizes[r+1]) // finer tiles fill the coarser own tile
	}
	// Raw events are read individually only inside the read time's own finest tile, and reads
	// are exact for t >= watermark - read_back.
	e.headSpan = e.readBack
	if n > 0 {
		e.headSpan += e.Sizes[0]
	}
	return e
}

// NewState returns an empty state for the engine's view.
func (e *Engine) NewState() *State {
	s := &State{Tiles: make([][]Tile, len(e.Sizes)), Distinct: make([]map[string]Sighting, len(e.View.Features)),
		LastOut: make([]LastValue, len(e.View.Features))}
	return s
}

// Clone returns a deep copy, so a batch can be applied to a cached state and thrown away if
// its commit fails.
func (s *State) Clone() *State {
	c := *s
	c.Head = slices.Clone(s.Head)
	c.Tiles = make([][]Tile, len(s.Tiles))
	for r, tiles := range s.Tiles {
		c.Tiles[r] = make([]Tile, len(tiles))
		for k, t := range tiles {
			c.Tiles[r][k] = Tile{Start: t.Start, Cells: slices.Clone(t.Cells)}
		}
	}
	c.Distinct = make([]map[string]Sighting, len(s.Distinct))
	for i, m := range s.Distinct {
		if m != nil {
			c.Distinct[i] = maps.Clone(m)
		}
	}
	c.LastOut = slices.Clone(s.LastOut)
	return &c
}

// Apply folds ev into s and reports whether it was applied; an event more than the lateness
// behind the watermark is not. ev.Seq is assigned from s.NextSeq.
func (e *Engine) Apply(s *State, ev Event) bool {
	if len(s.Head) > 0 || s.Watermark != 0 {
		if ev.Time < s.Watermark-e.lateness {
			return false
		}
	}
	ev.Seq = s.NextSeq
	s.NextSeq++
	e.addToTiles(s, ev)
	s.Head = append(s.Head, ev)
	if ev.Time > s.Watermark {
		s.Watermark = ev.Time
	}
	e.evict(s)
	return true
}

// Statistics a cell keeps beyond its count.
const (
	needSum uint8 = 1 << iota
	needSumSq
	needMinMax
)

func needsOf(agg string) uint8 {
	switch agg {
	case views.Sum, views.Avg:
		return needSum
	case views.Min, views.Max:
		return needMinMax
	case views.Stddev:
		return needSum | needSumSq
	}
	return 0
}

func (e *Engine) addToTiles(s *State, ev Event) {
	for r, size := range e.Sizes {
		start := floorDiv(ev.Time, size) * size
		var tile *Tile
		for c, i := range e.src[r] {
			v := ev.Vals[i]
			if v.Kind != Num {
				continue
			}
			if tile == nil {
				tiles := s.Tiles[r]
				k := sort.Search(len(tiles), func(j int) bool { return tiles[j].Start >= start })
				if k == len(tiles) || tiles[k].Start != start {
					tiles = slices.Insert(tiles, k, Tile{Start: start, Cells: make([]Cell, e.cells[r])})
					s.Tiles[r] = tiles
				}
				tile = &tiles[k]
			}
			tile.Cells[c].add(v.Num)
		}
	}
}

func (e *Engine) evict(s *State) {
	cut := s.Watermark - e.headSpan
	n := 0
	for _, ev := range s.Head {
		if ev.Time >= cut {
			s.Head[n] = ev
			n++
			continue
		}
		if !s.Evicted || later(ev.Time, ev.Seq, s.LastTime.Time, s.LastTime.Seq) {
			s.LastTime, s.Evicted = LastValue{Time: ev.Time, Seq: ev.Seq}, true
		}
		for i, v := range ev.Vals {
			if v.Kind == None {
				continue
			}
			switch e.View.Features[i].Agg {
			case views.CountDistinct:
				if s.Distinct[i] == nil {
					s.Distinct[i] = map[string]Sighting{}
				}
				key := distinctKey(v)
				if old, ok := s.Distinct[i][key]; !ok || later(ev.Time, ev.Seq, old.Time, old.Seq) {
					s.Distinct[i][key] = Sighting{Time: ev.Time, Seq: ev.Seq}
				}
			case views.Last:
				if later(ev.Time, ev.Seq, s.LastOut[i].Time, s.LastOut[i].Seq) || s.LastOut[i].Val.Kind == None {
					s.LastOut[i] = LastValue{Time: ev.Time, Seq: ev.Seq, Val: v}
				}
			}
		}
	}
	clear(s.Head[n:])
	s.Head = s.Head[:n]
	if s.distinctPrunedAt != 0 && s.Watermark-s.distinctPrunedAt < distinctPruneEvery {
		e.evictTiles(s)
		return
	}
	s.distinctPrunedAt = s.Watermark
	for i, f := range e.View.Features {
		if f.Agg == views.CountDistinct {
			horizon := s.Watermark - e.readBack - time.Duration(f.Window).Milliseconds()
			for k, sg := range s.Distinct[i] {
				if sg.Time <= horizon {
					delete(s.Distinct[i], k)
				}
			}
		}
	}
	e.evictTiles(s)
}

// evictTiles drops tiles no read can reach any more.
func (e *Engine) evictTiles(s *State) {
	for r, size := range e.Sizes {
		oldest := s.Watermark - e.readBack - e.keep[r] - size
		tiles := s.Tiles[r]
		k := sort.Search(len(tiles), func(j int) bool { return tiles[j].Start >= oldest })
		if k > 0 {
			s.Tiles[r] = slices.Delete(tiles, 0, k)
		}
	}
}

func later(t1, s1, t2, s2 int64) bool { return t1 > t2 || (t1 == t2 && s1 > s2) }

func distinctKey(v Value) string {
	if v.Kind == Str {
		return "s" + v.Str
	}
	return "n" + formatFloat(v.Num)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
