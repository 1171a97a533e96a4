package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRound3KeepsThreeSignificantDigits(t *testing.T) {
	for in, want := range map[int64]int64{7: 7, 999: 999, 1234: 1230, 987654: 987000, 120_000_000: 120_000_000} {
		if got := round3(in); got != want {
			t.Errorf("round3(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestHistogramClampsAndCounts(t *testing.T) {
	h := newHistogram()
	h.record(-5)
	h.record(1234)
	h.record(1239)
	h.record(1 << 40)
	got := h.counts()
	want := [][2]int64{{1, 1}, {1230, 2}, {120_000_000, 1}}
	if len(got) != len(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	}
	h.reset()
	if len(h.counts()) != 0 {
		t.Fatal("reset left counts")
	}
}

func TestOnMessageCountsOnlyThisRound(t *testing.T) {
	c := &counters{latency: newHistogram()}
	now := monotonicNs()
	c.onMessage([]byte("123:xx")) // before any round: seen, not counted
	c.roundStart.Store(now - 1_000_000)
	c.roundEnd.Store(now + 60_000_000_000)
	c.onMessage([]byte("5:xx"))                  // an earlier round's message
	c.onMessage([]byte("nonsense"))              // not a benchmark body
	c.onMessage([]byte(itoa(now) + ":xxxx\"}}")) // this round's, as found in a frame
	if c.receivedAll.Load() != 4 || c.receivedTotal.Load() != 1 || c.received.Load() != 1 {
		t.Fatalf("all %d total %d received %d", c.receivedAll.Load(), c.receivedTotal.Load(), c.received.Load())
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCentrifugoFramesAndPings(t *testing.T) {
	c := &counters{latency: newHistogram()}
	c.roundStart.Store(1)
	c.roundEnd.Store(1 << 62)
	d := &centrifugoDriver{c: c, conn: &wsConn{waiting: map[int64]chan []byte{}}}
	ch := make(chan []byte, 1)
	d.conn.waiting[3] = ch
	now := itoa(monotonicNs())
	d.handle([]byte(`{"push":{"channel":"bench:r","pub":{"data":{"b":"` + now + `:x"}}}}` + "\n" +
		`{"id":3,"publish":{}}` + "\n" + `{"push":{"channel":"bench:r","pub":{"data":{"b":"` + now + `:y"}}}}`))
	if c.receivedTotal.Load() != 2 {
		t.Fatalf("received %d pushes, want 2", c.receivedTotal.Load())
	}
	select {
	case reply := <-ch:
		if string(reply) != `{"id":3,"publish":{}}` {
			t.Fatalf("reply %s", reply)
		}
	default:
		t.Fatal("the reply to 3 was not handed over")
	}
}

func TestChatcoreMessagePushAndReplies(t *testing.T) {
	c := &counters{latency: newHistogram()}
	c.roundStart.Store(1)
	c.roundEnd.Store(1 << 62)
	d := &chatcoreDriver{c: c, conn: &wsConn{waiting: map[int64]chan []byte{}}}
	ch := make(chan []byte, 1)
	d.conn.waiting[9] = ch
	now := itoa(monotonicNs())
	d.handle([]byte(`{"type":"message","chat":"c","seq":1,"body":"` + now + `:x","ts":1}`))
	d.handle([]byte(`{"type":"accepted","id":9,"chat":"c","client_msg_id":"u-1","message_id":"m"}`))
	if c.receivedTotal.Load() != 1 {
		t.Fatalf("received %d messages, want 1", c.receivedTotal.Load())
	}
	if reply := <-ch; !strings.Contains(string(reply), `"accepted"`) {
		t.Fatalf("reply %s", reply)
	}
}

func TestTokenIsAnHS256JWTForTheUser(t *testing.T) {
	tok := token("secret-0123456789abcdef0123456789abcdef", "alice")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	mac := hmac.New(sha256.New, []byte("secret-0123456789abcdef0123456789abcdef"))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) != parts[2] {
		t.Fatal("bad signature")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Sub != "alice" || claims.Exp == 0 {
		t.Fatalf("claims %s", payload)
	}
}

func TestChatcoreBatchIsReadFrameByFrame(t *testing.T) {
	c := &counters{latency: newHistogram()}
	c.roundStart.Store(1)
	c.roundEnd.Store(1 << 62)
	d := &chatcoreDriver{c: c, conn: &wsConn{waiting: map[int64]chan []byte{}}}
	ch := make(chan []byte, 1)
	d.conn.waiting[7] = ch
	now := itoa(monotonicNs())
	msg := `{"type":"message","chat":"c","seq":%d,"body":"` + now + `:x","ts":1}`
	d.handle([]byte(`[` + fmt.Sprintf(msg, 1) + `,` + fmt.Sprintf(msg, 2) +
		`,{"type":"accepted","id":7,"chat":"c","client_msg_id":"u-1","message_id":"m"}]`))
	if c.receivedTotal.Load() != 2 {
		t.Fatalf("received %d messages, want 2", c.receivedTotal.Load())
	}
	if reply := <-ch; !strings.Contains(string(reply), `"accepted"`) {
		t.Fatalf("reply %s", reply)
	}
}

func TestAClientThatNeverConnectedHasEnded(t *testing.T) {
	for _, e := range []ender{&chatcoreDriver{}, &plainDriver{}} {
		select {
		case <-e.ended():
		default:
			t.Fatalf("%T without a connection has not ended", e)
		}
	}
}

func TestARefusalCarriesTheServersRetryAfter(t *testing.T) {
	var frame chatcoreFrame
	raw := `{"type":"error","id":3,"code":"overloaded","message":"busy","retry_after_ms":250}`
	if err := json.Unmarshal([]byte(raw), &frame); err != nil || frame.RetryAfterMs != 250 {
		t.Fatalf("frame %+v, err %v", frame, err)
	}
	err := error(refusal{time.Duration(frame.RetryAfterMs) * time.Millisecond})
	if !errors.Is(err, errRefused) || retryAfter(err) != 250*time.Millisecond {
		t.Fatalf("refusal %v: is refused %v, wait %v", err, errors.Is(err, errRefused), retryAfter(err))
	}
	if retryAfter(fmt.Errorf("send failed: %w", errors.New("x"))) != 0 {
		t.Fatal("another error asks for no wait")
	}
}
