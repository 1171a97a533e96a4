package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// chatcoreSubprotocol is chatcore's JSON subprotocol (chatcore.protocol.SUBPROTOCOL_JSON).
const chatcoreSubprotocol = "chatcore.v1.json"

// chatcoreDriver speaks chatcore's JSON protocol (docs/protocol.md): hello, then
// requests by id (chat.create, send) and message pushes. Like the Python SDK and the
// browser page, it asks for frame batches in hello ("batch": true): under load the
// server may then send several queued frames as one JSON array.
type chatcoreDriver struct {
	url, user, sourceIP, token string
	sync                       bool // sync after the welcome (as the SDK does)
	c                          *counters
	conn                       *wsConn
	msgIDs                     atomic.Int64
}

type chatcoreFrame struct {
	Type         string          `json:"type"`
	ID           *int64          `json:"id"`
	Body         *string         `json:"body"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Chat         json.RawMessage `json:"chat"`
	RetryAfterMs int64           `json:"retry_after_ms"`
}

func (d *chatcoreDriver) Connect(ctx context.Context) error {
	conn, err := dial(ctx, d.url, d.sourceIP, []string{chatcoreSubprotocol})
	if err != nil {
		return err
	}
	d.conn = conn
	hello := fmt.Sprintf(`{"type":"hello","id":1,"token":%s,"device":"bench","batch":true}`, jsonString(d.token))
	if err := conn.ws.Write(ctx, websocket.MessageText, []byte(hello)); err != nil {
		return err
	}
	_, raw, err := conn.ws.Read(ctx)
	if err != nil {
		return fmt.Errorf("no welcome: %w", err)
	}
	var welcome chatcoreFrame
	if err := json.Unmarshal(raw, &welcome); err != nil || welcome.Type != "welcome" {
		return fmt.Errorf("expected welcome, got %s", raw)
	}
	if d.sync {
		if err := d.syncNow(ctx); err != nil {
			return err
		}
	}
	go conn.readLoop(d.handle)
	return nil
}

// syncNow sends a sync without cursors (the state of every chat) and reads up to its
// synced answer, before the reading goroutine starts.
func (d *chatcoreDriver) syncNow(ctx context.Context) error {
	if err := d.conn.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"sync","id":2}`)); err != nil {
		return err
	}
	for {
		_, raw, err := d.conn.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("no synced: %w", err)
		}
		var frame chatcoreFrame
		if json.Unmarshal(raw, &frame) != nil {
			continue
		}
		switch frame.Type {
		case "synced":
			return nil
		case "error":
			return fmt.Errorf("sync failed: %s: %s", frame.Code, frame.Message)
		}
	}
}

// ended is closed once the current connection has ended (at once if it never opened).
func (d *chatcoreDriver) ended() <-chan struct{} { return endedOf(d.conn) }

var (
	messagePrefix = []byte(`{"type":"message"`)
	bodyKey       = []byte(`"body":"`)
)

func (d *chatcoreDriver) handle(raw []byte) {
	if len(raw) > 0 && raw[0] == '[' { // a batch: each element is one frame
		var frames []json.RawMessage
		if json.Unmarshal(raw, &frames) != nil {
			return
		}
		for _, frame := range frames {
			d.handle(frame)
		}
		return
	}
	if bytes.HasPrefix(raw, messagePrefix) { // the common case, without decoding
		if i := bytes.Index(raw, bodyKey); i >= 0 {
			d.c.onMessage(raw[i+len(bodyKey):])
			return
		}
	}
	var frame chatcoreFrame
	if json.Unmarshal(raw, &frame) != nil {
		return
	}
	if frame.Type == "message" && frame.Body != nil {
		d.c.onMessage([]byte(*frame.Body))
	} else if frame.ID != nil {
		d.conn.answer(*frame.ID, raw)
	}
}

func (d *chatcoreDriver) request(ctx context.Context, build func(id int64) string) (chatcoreFrame, error) {
	id, ch := d.conn.id()
	raw, err := d.conn.request(ctx, id, ch, []byte(build(id)))
	var frame chatcoreFrame
	if err != nil {
		return frame, err
	}
	if err := json.Unmarshal(raw, &frame); err != nil {
		return frame, fmt.Errorf("bad reply %s: %w", raw, err)
	}
	if frame.Type == "error" {
		return frame, fmt.Errorf("%s: %s", frame.Code, frame.Message)
	}
	return frame, nil
}

func (d *chatcoreDriver) CreateRoom(ctx context.Context, title string, members []string) (string, error) {
	var others []string
	for _, m := range members {
		if m != d.user {
			others = append(others, m)
		}
	}
	list, _ := json.Marshal(others)
	reply, err := d.request(ctx, func(id int64) string {
		if len(others) == 1 {
			return fmt.Sprintf(`{"type":"chat.create","id":%d,"kind":"direct","members":%s}`, id, list)
		}
		return fmt.Sprintf(`{"type":"chat.create","id":%d,"kind":"group","members":%s,"title":%s}`,
			id, list, jsonString(title))
	})
	if err != nil {
		return "", fmt.Errorf("creating %q failed: %w", title, err)
	}
	var chat struct {
		Chat string `json:"chat"`
	}
	if reply.Type != "chat" || json.Unmarshal(reply.Chat, &chat) != nil || chat.Chat == "" {
		return "", fmt.Errorf("creating %q: unexpected reply %q", title, reply.Type)
	}
	return chat.Chat, nil
}

func (d *chatcoreDriver) Join(ctx context.Context, room string) error {
	return nil // membership is the server's business
}

// errRefused is a send the server refused as "overloaded" (counted, not an error).
var errRefused = errors.New("refused: overloaded")

// refusal is errRefused with the server's retry_after_ms.
type refusal struct{ after time.Duration }

func (r refusal) Error() string { return fmt.Sprintf("%v (retry after %v)", errRefused, r.after) }
func (r refusal) Unwrap() error { return errRefused }

// retryAfter is how long a refused sender should wait (0 for any other error).
func retryAfter(err error) time.Duration {
	var r refusal
	if errors.As(err, &r) {
		return r.after
	}
	return 0
}

func (d *chatcoreDriver) Send(ctx context.Context, room, body string) error {
	msgID := d.msgIDs.Add(1)
	reply, err := d.request(ctx, func(id int64) string {
		return fmt.Sprintf(`{"type":"send","id":%d,"chat":%s,"client_msg_id":"%s-%d","kind":"text","body":%s}`,
			id, jsonString(room), strings.ReplaceAll(d.user, `"`, ""), msgID, jsonString(body))
	})
	if err != nil {
		if reply.Type == "error" && reply.Code == "overloaded" {
			return refusal{time.Duration(reply.RetryAfterMs) * time.Millisecond}
		}
		return fmt.Errorf("send failed: %w", err)
	}
	if reply.Type != "accepted" {
		return fmt.Errorf("send failed: unexpected reply %q", reply.Type)
	}
	return nil
}
