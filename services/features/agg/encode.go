package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const stateFormat = 1

// ErrCorrupt is returned for a state blob that does not decode.
var ErrCorrupt = errors.New("corrupt feature state")

// Encode appends s in a compact binary form.
func (e *Engine) Encode(dst []byte, s *State) []byte {
	dst = append(dst, stateFormat)
	dst = binary.AppendVarint(dst, s.Watermark)
	dst = binary.AppendVarint(dst, s.NextSeq)
	dst = appendBool(dst, s.Evicted)
	dst = binary.AppendVarint(dst, s.LastTime.Time)
	dst = binary.AppendVarint(dst, s.LastTime.Seq)
	dst = binary.AppendUvarint(dst, uint64(len(s.Head)))
	for _, ev := range s.Head {
		dst = binary.AppendVarint(dst, ev.Time)
		dst = binary.AppendVarint(dst, ev.Seq)
		for _, v := range ev.Vals {
			dst = appendValue(dst, v)
		}
	}
	for r := range e.Sizes {
		dst = binary.AppendUvarint(dst, uint64(len(s.Tiles[r])))
		for _, t := range s.Tiles[r] {
			dst = binary.AppendVarint(dst, t.Start)
			for ci, c := range t.Cells {
				dst = binary.AppendVarint(dst, c.N)
				if c.N == 0 {
					continue
				}
				need := e.needs[r][ci]
				if need&needSum != 0 {
					dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Sum))
				}
				if need&needSumSq != 0 {
					dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.SumSq))
				}
				if need&needMinMax != 0 {
					dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Min))
					dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Max))
				}
			}
		}
	}
	for i := range e.View.Features {
		dst = binary.AppendUvarint(dst, uint64(len(s.Distinct[i])))
		for k, sg := range s.Distinct[i] {
			dst = appendString(dst, k)
			dst = binary.AppendVarint(dst, sg.Time)
			dst = binary.AppendVarint(dst, sg.Seq)
		}
		lo := s.LastOut[i]
		dst = binary.AppendVarint(dst, lo.Time)
		dst = binary.AppendVarint(dst, lo.Seq)
		dst = appendValue(dst, lo.Val)
	}
	return dst
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, v.Kind)
	switch v.Kind {
	case Num:
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Num))
	case Str:
		dst = appendString(dst, v.Str)
	}
	return dst
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = ErrCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count(limit int) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(limit) {
		r.err = ErrCorrupt
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = ErrCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) float() float64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = ErrCorrupt
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return f
}

func (r *reader) str() string {
	n := r.count(len(r.b))
	if r.err == nil && n > len(r.b) {
		r.err = ErrCorrupt
	}
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) value() Value {
	v := Value{Kind: r.byte1()}
	switch v.Kind {
	case None:
	case Num:
		v.Num = r.float()
	case Str:
		v.Str = r.str()
	default:
		r.err = ErrCorrupt
	}
	return v
}

// Decode reads a blob written by Encode for the same view version.
func (e *Engine) Decode(b []byte) (*State, error) {
	r := &reader{b: b}
	if r.byte1() != stateFormat {
		return nil, fmt.Errorf("%w: unknown format", ErrCorrupt)
	}
	s := e.NewState()
	s.Watermark = r.varint()
	s.NextSeq = r.varint()
	s.Evicted = r.byte1() == 1
	s.LastTime.Time = r.varint()
	s.LastTime.Seq = r.varint()
	nf := len(e.View.Features)
	n := r.count(len(b))
	s.Head = make([]Event, 0, n)
	slab := make([]Value, n*nf) // one allocation for every head event's inputs
	for k := range n {
		ev := Event{Time: r.varint(), Seq: r.varint(), Vals: slab[k*nf : (k+1)*nf : (k+1)*nf]}
		for i := range ev.Vals {
			ev.Vals[i] = r.value()
		}
		if r.err != nil {
			return nil, r.err
		}
		s.Head = append(s.Head, ev)
	}
	for ri := range e.Sizes {
		n := r.count(len(b))
		tiles := make([]Tile, 0, n)
		nc := e.cells[ri]
		cells := make([]Cell, n*nc) // one allocation for every tile's cells
		for k := range n {
			t := Tile{Start: r.varint(), Cells: cells[k*nc : (k+1)*nc : (k+1)*nc]}
			for c := range t.Cells {
				cell := Cell{N: r.varint()}
				if cell.N != 0 {
					need := e.needs[ri][c]
					if need&needSum != 0 {
						cell.Sum = r.float()
					}
					if need&needSumSq != 0 {
						cell.SumSq = r.float()
					}
					if need&needMinMax != 0 {
						cell.Min, cell.Max = r.float(), r.float()
					}
				}
				t.Cells[c] = cell
			}
			if r.err != nil {
				return nil, r.err
			}
			tiles = append(tiles, t)
		}
		s.Tiles[ri] = tiles
	}
	for i := range nf {
		if n := r.count(len(b)); n > 0 {
			s.Distinct[i] = make(map[string]Sighting, n)
			for range n {
				k := r.str()
				s.Distinct[i][k] = Sighting{Time: r.varint(), Seq: r.varint()}
			}
		}
		s.LastOut[i] = LastValue{Time: r.varint(), Seq: r.varint(), Val: r.value()}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r.b))
	}
	return s, nil
}
