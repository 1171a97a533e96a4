// Command loadgen is chatcore's load generator in Go: the same job, rounds and JSON
// lines on stdin/stdout as `python -m benchmarks.loadgen` (benchmarks/loadgen.py),
// so the parent runner can drive either. It speaks chatcore's JSON protocol
// (targets chatcore-*) and Centrifugo's JSON protocol (target centrifugo).
//
// The parent writes a Job as the first line on stdin; the process connects, sets up
// its groups and answers "ready"; each "round" line runs one measurement and is
// answered with a "result"; "stop" (or end of input) ends the process. "progress"
// lines come every half second. Logs go to stderr.
//
// Latency is taken from the intended send time written into each body
// ("<CLOCK_MONOTONIC ns>:<padding>"), as the Python generator does. Histograms go
// back as latency_counts: [microseconds rounded to 3 significant digits, count] pairs.
// A send refused as "overloaded" is counted in "refused" and dropped, not sent again;
// in a flat-out round its sender then waits the server's retry_after_ms before its
// next send, as a real client does (a paced round keeps its schedule).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Job is what one load generator connects and sets up (benchmarks.loadgen.Job).
type Job struct {
	Target             string   `json:"target"`
	URL                string   `json:"url"`
	RunID              string   `json:"run_id"`
	Worker             int      `json:"worker"`
	Secret             string   `json:"secret"`
	Connections        int      `json:"connections"`
	Groups             []int    `json:"groups"`
	SendersPerGroup    int      `json:"senders_per_group"`
	SourceIPs          []string `json:"source_ips"`
	ConnectConcurrency int      `json:"connect_concurrency"`
	BodyBytes          int      `json:"body_bytes"`
	Sync               bool     `json:"sync"`   // chatcore: sync after hello, as the SDK does
	Client             string   `json:"client"` // ignored: chatcore is always driven over the wire protocol
}

// Command is a Round or a Stop line.
type Command struct {
	Type      string  `json:"type"`
	DurationS float64 `json:"duration_s"`
	Rate      float64 `json:"rate"`
	Window    int     `json:"window"`
	DrainS    float64 `json:"drain_s"`
	TimeoutS  float64 `json:"timeout_s"` // storm: how long clients may take to be back
	RetryMs   float64 `json:"retry_ms"`  // storm: the fixed pause between connection attempts
	AttemptS  float64 `json:"attempt_s"` // storm: the longest one attempt may take
}

type progressReport struct {
	Type        string `json:"type"`
	Connected   int64  `json:"connected"`
	Failed      int64  `json:"failed"`
	Sent        int64  `json:"sent"`
	Received    int64  `json:"received"`
	ReceivedAll int64  `json:"received_all"`
}

type readyReport struct {
	Type      string  `json:"type"`
	Connected int64   `json:"connected"`
	Failed    int64   `json:"failed"`
	Rooms     int     `json:"rooms"`
	ConnectS  float64 `json:"connect_s"`
	Error     string  `json:"error"`
}

type roundResult struct {
	Type          string     `json:"type"`
	Sent          int64      `json:"sent"`
	Accepted      int64      `json:"accepted"`
	Received      int64      `json:"received"`
	ReceivedTotal int64      `json:"received_total"`
	DurationS     float64    `json:"duration_s"`
	CPUS          float64    `json:"cpu_s"`
	Latency       string     `json:"latency"`
	LatencyCounts [][2]int64 `json:"latency_counts"`
	Errors        int64      `json:"errors"`
	Error         string     `json:"error"`
	Refused       int64      `json:"refused"`
}

type failedReport struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

var stdoutMu sync.Mutex

func emit(report any) {
	line, err := json.Marshal(report)
	if err != nil {
		panic(err)
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

// monotonicNs reads CLOCK_MONOTONIC, the clock of Python's time.monotonic_ns().
func monotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func sleepUntil(ns int64) {
	if d := ns - monotonicNs(); d > 0 {
		time.Sleep(time.Duration(d))
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// Driver is one connection of the load generator (benchmarks.drivers.Driver).
type Driver interface {
	// Connect opens the connection and finishes the protocol's handshake; messages
	// received afterwards go to the counters.
	Connect(ctx context.Context) error
	// CreateRoom makes a group of this user and members; its id.
	CreateRoom(ctx context.Context, title string, members []string) (string, error)
	// Join makes sure this connection receives the room's messages.
	Join(ctx context.Context, room string) error
	// Send sends body to room and waits for the server's acknowledgement.
	Send(ctx context.Context, room, body string) error
}

type counters struct {
	connected, failed                    atomic.Int64
	sent, accepted, errors, refused      atomic.Int64
	received, receivedTotal, receivedAll atomic.Int64
	roundStart, roundEnd                 atomic.Int64
	generation                           atomic.Int64
	errMu                                sync.Mutex
	lastError                            string
	latency                              *histogram
}

func (c *counters) fail(err error) {
	c.errMu.Lock()
	c.lastError = err.Error()
	c.errMu.Unlock()
}

func (c *counters) lastErr() string {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.lastError
}

// onMessage counts one chat message whose body starts with "<sent ns>:".
func (c *counters) onMessage(body []byte) {
	now := monotonicNs()
	c.receivedAll.Add(1)
	var sent int64
	digits := 0
	for _, b := range body {
		if b < '0' || b > '9' {
			break
		}
		sent = sent*10 + int64(b-'0')
		digits++
	}
	if digits == 0 {
		return
	}
	start := c.roundStart.Load()
	if start == 0 || sent < start {
		return // a message of an earlier round
	}
	c.receivedTotal.Add(1)
	c.latency.record((now - sent) / 1000)
	if now < c.roundEnd.Load() {
		c.received.Add(1)
	}
}

type group struct {
	members []Driver
	names   []string
	room    string
}

type loadGenerator struct {
	job     Job
	c       *counters
	groups  []*group
	drivers []Driver
	pad     string
}

func newLoadGenerator(job Job) (*loadGenerator, error) {
	c := &counters{latency: newHistogram()}
	newDriver, err := driverFactory(job, c)
	if err != nil {
		return nil, err
	}
	ips := job.SourceIPs
	if len(ips) == 0 {
		ips = []string{"127.0.0.1"}
	}
	index := 0
	next := func(user string) Driver {
		index++
		return newDriver(user, ips[index%len(ips)])
	}
	lg := &loadGenerator{job: job, c: c}
	prefix := fmt.Sprintf("%s.%d", job.RunID, job.Worker)
	if len(job.Groups) > 0 {
		for g, size := range job.Groups {
			gr := &group{}
			for i := range size {
				name := fmt.Sprintf("%s.%d.%d", prefix, g, i)
				gr.names = append(gr.names, name)
				gr.members = append(gr.members, next(name))
			}
			lg.groups = append(lg.groups, gr)
			lg.drivers = append(lg.drivers, gr.members...)
		}
	} else {
		for i := range job.Connections {
			lg.drivers = append(lg.drivers, next(fmt.Sprintf("%s.%d", prefix, i)))
		}
	}
	if pad := job.BodyBytes - 20; pad > 0 {
		lg.pad = strings.Repeat("x", pad)
	}
	return lg, nil
}

func (lg *loadGenerator) connectAll(ctx context.Context) {
	gate := make(chan struct{}, max(1, lg.job.ConnectConcurrency))
	var wg sync.WaitGroup
	for _, d := range lg.drivers {
		gate <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-gate }()
			cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
			defer cancel()
			if err := d.Connect(cctx); err != nil {
				lg.c.fail(err)
				lg.c.failed.Add(1)
				return
			}
			lg.c.connected.Add(1)
		}()
	}
	wg.Wait()
}

func (lg *loadGenerator) makeRooms(ctx context.Context) error {
	if failed := lg.c.failed.Load(); failed > 0 { // a member without a connection
		return fmt.Errorf("%d connections failed, the last: %s", failed, lg.c.lastErr())
	}
	gate := make(chan struct{}, 20)
	errs := make(chan error, len(lg.groups))
	var wg sync.WaitGroup
	for _, gr := range lg.groups {
		wg.Add(1)
		gate <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-gate }()
			room, err := gr.members[0].CreateRoom(ctx, gr.names[0], gr.names)
			if err != nil {
				errs <- err
				return
			}
			gr.room = room
			for _, m := range gr.members {
				if err := m.Join(ctx, room); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (lg *loadGenerator) progress() {
	c := lg.c
	for {
		emit(progressReport{
			Type: "progress", Connected: c.connected.Load(), Failed: c.failed.Load(),
			Sent: c.sent.Load(), Received: c.received.Load(), ReceivedAll: c.receivedAll.Load(),
		})
		time.Sleep(500 * time.Millisecond)
	}
}

func (lg *loadGenerator) body(sentNs int64) string {
	return fmt.Sprintf("%d:%s", sentNs, lg.pad)
}

// send sends one message; for a send refused as overloaded, how long the server asks
// the sender to wait (retry_after_ms; 0 otherwise).
func (lg *loadGenerator) send(ctx context.Context, d Driver, room string, sentNs, end, gen int64) time.Duration {
	c := lg.c
	c.sent.Add(1)
	if err := d.Send(ctx, room, lg.body(sentNs)); err != nil {
		if errors.Is(err, errRefused) { // dropped, not sent again: the load stays as offered
			if c.generation.Load() == gen {
				c.refused.Add(1)
			}
			return retryAfter(err)
		}
		if c.generation.Load() == gen {
			c.errors.Add(1)
			c.fail(err)
		}
		return 0
	}
	if monotonicNs() < end && c.generation.Load() == gen {
		c.accepted.Add(1)
	}
	return 0
}

func (lg *loadGenerator) round(cmd Command) roundResult {
	c := lg.c
	gen := c.generation.Add(1)
	c.sent.Store(0)
	c.accepted.Store(0)
	c.received.Store(0)
	c.receivedTotal.Store(0)
	c.errors.Store(0)
	c.refused.Store(0)
	c.latency.reset()
	cpuBefore := cpuSeconds()
	start := monotonicNs() + 50_000_000
	end := start + int64(cmd.DurationS*1e9)
	drained := end + int64(cmd.DrainS*1e9)
	c.roundStart.Store(start)
	c.roundEnd.Store(end)
	type sender struct {
		d    Driver
		room string
	}
	var senders []sender
	for _, gr := range lg.groups {
		for i := 0; i < min(max(1, lg.job.SendersPerGroup), len(gr.members)); i++ {
			senders = append(senders, sender{gr.members[i], gr.room})
		}
	}
	timeout := time.Duration((cmd.DurationS + cmd.DrainS + 0.05) * 1e9)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	window := max(1, cmd.Window)
	for _, s := range senders {
		if cmd.Rate > 0 {
			go func() {
				interval := int64(1e9 / (cmd.Rate / float64(len(senders))))
				due := start + rand.Int64N(max(1, interval))
				for due < end && ctx.Err() == nil {
					sleepUntil(due)
					go lg.send(ctx, s.d, s.room, due, end, gen)
					due += interval
				}
			}()
		} else {
			for range window {
				go func() {
					sleepUntil(start)
					for now := monotonicNs(); now < end && ctx.Err() == nil; now = monotonicNs() {
						// a refused sender waits as the server asks, as a real client does
						if wait := lg.send(ctx, s.d, s.room, now, end, gen); wait > 0 {
							sleepUntil(min(end, monotonicNs()+wait.Nanoseconds()))
						}
					}
				}()
			}
		}
	}
	sleepUntil(drained) // deliveries land
	return roundResult{
		Type: "result", Sent: c.sent.Load(), Accepted: c.accepted.Load(),
		Received: c.received.Load(), ReceivedTotal: c.receivedTotal.Load(),
		DurationS: cmd.DurationS, CPUS: cpuSeconds() - cpuBefore,
		LatencyCounts: c.latency.counts(), Errors: c.errors.Load(), Error: c.lastErr(),
		Refused: c.refused.Load(),
	}
}

func (lg *loadGenerator) run(stdin *bufio.Reader) error {
	go lg.progress()
	started := time.Now()
	lg.connectAll(context.Background())
	connectS := time.Since(started).Seconds()
	errText := ""
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	if err := lg.makeRooms(ctx); err != nil {
		errText = "setting up rooms failed: " + err.Error()
	}
	cancel()
	if errText == "" {
		errText = lg.c.lastErr()
	}
	emit(readyReport{
		Type: "ready", Connected: lg.c.connected.Load(), Failed: lg.c.failed.Load(),
		Rooms: len(lg.groups), ConnectS: connectS, Error: errText,
	})
	for {
		line, _ := stdin.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 {
			return nil // end of input, or an empty line: stop, as the Python generator does
		}
		var cmd Command
		if err := json.Unmarshal(line, &cmd); err != nil {
			return fmt.Errorf("bad command %q: %w", line, err)
		}
		switch cmd.Type {
		case "stop":
			return nil
		case "round":
			emit(lg.round(cmd))
		case "storm":
			emit(lg.storm(cmd))
		default:
			return fmt.Errorf("unknown command %q", cmd.Type)
		}
	}
}

func main() {
	raiseFdLimit(200_000)
	stdin := bufio.NewReaderSize(os.Stdin, 1<<20)
	err := func() error {
		line, err := stdin.ReadBytes('\n')
		if err != nil && len(line) == 0 {
			return errors.New("no job on stdin")
		}
		job := Job{SendersPerGroup: 1, ConnectConcurrency: 100, BodyBytes: 100}
		if err := json.Unmarshal(line, &job); err != nil {
			return fmt.Errorf("bad job: %w", err)
		}
		lg, err := newLoadGenerator(job)
		if err != nil {
			return err
		}
		return lg.run(stdin)
	}()
	if err != nil {
		emit(failedReport{Type: "failed", Error: err.Error()})
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	os.Exit(0) // dropping thousands of connections one by one takes long
}

func raiseFdLimit(wanted uint64) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur >= wanted {
		return
	}
	lim.Cur = min(wanted, lim.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
