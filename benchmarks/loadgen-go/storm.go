package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ender is a Driver that tells when its connection ended (the server went away).
type ender interface {
	ended() <-chan struct{}
}

type stormResult struct {
	Type          string     `json:"type"`
	Reconnected   int64      `json:"reconnected"`
	Failed        int64      `json:"failed"`
	Attempts      int64      `json:"attempts"`
	FirstDownNs   int64      `json:"first_down_ns"`
	LastDownNs    int64      `json:"last_down_ns"`
	FirstBackNs   int64      `json:"first_back_ns"`
	LastBackNs    int64      `json:"last_back_ns"`
	CPUS          float64    `json:"cpu_s"`
	LatencyCounts [][2]int64 `json:"latency_counts"`
	Error         string     `json:"error"`
}

// storm waits for every connection to end (the parent restarts the server) and
// reconnects each one at once, with a fixed pause of cmd.RetryMs between attempts
// and no jitter (the worst case for the server), hello and sync included. Each
// client's time from its disconnect to being back goes to the histogram.
func (lg *loadGenerator) storm(cmd Command) stormResult {
	cpuBefore := cpuSeconds()
	timeout := time.Duration(max(1, cmd.TimeoutS) * 1e9)
	retry := time.Duration(max(1, cmd.RetryMs) * 1e6)
	// One attempt is bounded too, so a connection lost in a full accept queue is tried
	// again; a bound shorter than the server needs to work off the storm makes clients
	// abandon work it already did, and the storm collapses (10 s did at 10,000).
	attemptTimeout := time.Duration(max(1, cmd.AttemptS) * 1e9)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hist := newHistogram()
	var reconnected, failed, attempts atomic.Int64
	var mu sync.Mutex
	var firstDown, lastDown, firstBack, lastBack int64
	var lastErr string
	note := func(first, last *int64, t int64) {
		mu.Lock()
		if *first == 0 || t < *first {
			*first = t
		}
		if t > *last {
			*last = t
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, d := range lg.drivers {
		e, ok := d.(ender)
		if !ok {
			return stormResult{Type: "storm_result", Error: fmt.Sprintf("%T cannot reconnect", d)}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-e.ended():
			case <-ctx.Done():
				failed.Add(1)
				return
			}
			down := monotonicNs()
			note(&firstDown, &lastDown, down)
			for {
				attempts.Add(1)
				actx, cancel := context.WithTimeout(ctx, attemptTimeout)
				err := d.Connect(actx)
				cancel()
				if err == nil {
					back := monotonicNs()
					note(&firstBack, &lastBack, back)
					hist.record((back - down) / 1000)
					reconnected.Add(1)
					return
				}
				if ctx.Err() != nil {
					mu.Lock()
					lastErr = err.Error()
					mu.Unlock()
					failed.Add(1)
					return
				}
				select {
				case <-time.After(retry):
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
	return stormResult{
		Type: "storm_result", Reconnected: reconnected.Load(), Failed: failed.Load(),
		Attempts: attempts.Load(), FirstDownNs: firstDown, LastDownNs: lastDown,
		FirstBackNs: firstBack, LastBackNs: lastBack, CPUS: cpuSeconds() - cpuBefore,
		LatencyCounts: hist.counts(), Error: lastErr,
	}
}
