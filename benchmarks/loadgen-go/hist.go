package main

import (
	"sort"
	"sync"
)

const (
	lowestUs  = 1
	highestUs = 120_000_000
	shards    = 64
)

// histogram counts latencies in microseconds, rounded to 3 significant digits (the
// precision of the parent's HDR histogram), clamped into 1 µs .. 120 s. It is
// sharded so that many reading goroutines rarely share a lock.
type histogram struct {
	shards [shards]struct {
		sync.Mutex
		counts map[int64]int64
		_      [40]byte // keep shards on separate cache lines
	}
	next sync.Mutex
	turn uint64
}

func newHistogram() *histogram {
	h := &histogram{}
	for i := range h.shards {
		h.shards[i].counts = map[int64]int64{}
	}
	return h
}

// round3 keeps the 3 most significant decimal digits of v.
func round3(v int64) int64 {
	scale := int64(1)
	for v/scale >= 1000 {
		scale *= 10
	}
	return v / scale * scale
}

func (h *histogram) record(us int64) {
	us = round3(min(max(us, lowestUs), highestUs))
	s := &h.shards[uint64(us)%shards]
	s.Lock()
	s.counts[us]++
	s.Unlock()
}

func (h *histogram) reset() {
	for i := range h.shards {
		s := &h.shards[i]
		s.Lock()
		s.counts = map[int64]int64{}
		s.Unlock()
	}
}

// counts are [microseconds, count] pairs, ascending.
func (h *histogram) counts() [][2]int64 {
	out := [][2]int64{}
	for i := range h.shards {
		s := &h.shards[i]
		s.Lock()
		for v, n := range s.counts {
			out = append(out, [2]int64{v, n})
		}
		s.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
