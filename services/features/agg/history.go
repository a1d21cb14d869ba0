package agg

import (
	"slices"
	"sort"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// History is the offline counterpart of State: all applied events of one entity, from which
// values at any past time t are read with the same code as online reads. Tiles are built
// from the events in arrival order (as online), so partial sums are bit-identical.
type History struct {
	e      *Engine
	tiles  [][]Tile
	byTime []Event // sorted by (time, seq)
	span   int64
	best   [][]LastValue // per last feature: best value among byTime[:j+1]
}

// NewHistory indexes events, which must be in arrival (Seq) order.
func (e *Engine) NewHistory(events []Event) *History {
	h := &History{e: e, tiles: make([][]Tile, len(e.Sizes))}
	s := &State{Tiles: h.tiles}
	for _, ev := range events {
		e.addToTiles(s, ev)
	}
	h.tiles = s.Tiles
	h.byTime = slices.Clone(events)
	sort.SliceStable(h.byTime, func(i, j int) bool {
		a, b := h.byTime[i], h.byTime[j]
		return a.Time < b.Time || (a.Time == b.Time && a.Seq < b.Seq)
	})
	if len(e.Sizes) > 0 {
		h.span = e.Sizes[0]
	}
	h.best = make([][]LastValue, len(e.View.Features))
	for i, f := range e.View.Features {
		if f.Agg == views.CountDistinct || f.Agg == views.Last {
			h.span = max(h.span, time.Duration(f.Window).Milliseconds())
		}
		if f.Agg != views.Last {
			continue
		}
		best := make([]LastValue, len(h.byTime))
		var cur LastValue
		for j, ev := range h.byTime {
			if v := ev.Vals[i]; v.Kind != None && (cur.Val.Kind == None || later(ev.Time, ev.Seq, cur.Time, cur.Seq)) {
				cur = LastValue{Time: ev.Time, Seq: ev.Seq, Val: v}
			}
			best[j] = cur
		}
		h.best[i] = best
	}
	return h
}

// Read returns the values at t, as an online read at t would have returned them from a
// state holding these events.
func (h *History) Read(t int64, out []Result) {
	from := t - h.span - 1
	lo := sort.Search(len(h.byTime), func(j int) bool { return h.byTime[j].Time >= from })
	hi := sort.Search(len(h.byTime), func(j int) bool { return h.byTime[j].Time > t })
	s := &State{Tiles: h.tiles, Distinct: make([]map[string]Sighting, len(h.e.View.Features)),
		LastOut: make([]LastValue, len(h.e.View.Features))}
	s.Head = slices.Clone(h.byTime[lo:hi])
	slices.SortFunc(s.Head, func(a, b Event) int { return int(a.Seq - b.Seq) })
	if lo > 0 {
		prev := h.byTime[lo-1]
		s.LastTime, s.Evicted = LastValue{Time: prev.Time, Seq: prev.Seq}, true
		for i := range h.best {
			if h.best[i] != nil {
				s.LastOut[i] = h.best[i][lo-1]
			}
		}
	}
	if hi == 0 {
		h.e.ReadInto(nil, t, out)
		return
	}
	h.e.ReadInto(s, t, out)
}
