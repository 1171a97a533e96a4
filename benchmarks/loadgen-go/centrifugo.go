package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
)

// centrifugoNamespace is the namespace the centrifugo peer's configuration lets
// clients subscribe and publish in (benchmarks/peers/centrifugo/config.py).
const centrifugoNamespace = "bench"

// centrifugoDriver speaks Centrifugo's JSON protocol (client protocol v2): connect
// with a JWT, subscribe to a channel, publish to it. Frames may hold several
// newline-separated replies and pushes; an empty object is a ping, answered with one.
type centrifugoDriver struct {
	url, user, sourceIP, token string
	c                          *counters
	conn                       *wsConn
}

type centrifugoReply struct {
	ID    int64 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (d *centrifugoDriver) Connect(ctx context.Context) error {
	conn, err := dial(ctx, d.url, d.sourceIP, nil)
	if err != nil {
		return err
	}
	d.conn = conn
	go conn.readLoop(d.handle)
	_, err = d.request(ctx, func(id int64) string {
		return fmt.Sprintf(`{"id":%d,"connect":{"token":%s,"name":"bench"}}`, id, jsonString(d.token))
	})
	if err != nil {
		return fmt.Errorf("connect refused: %w", err)
	}
	return nil
}

var (
	pushPrefix = []byte(`{"push":`)
	dataKey    = []byte(`"b":"`)
	ping       = []byte(`{}`)
)

func (d *centrifugoDriver) handle(frame []byte) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		switch {
		case len(line) == 0:
		case bytes.Equal(line, ping):
			go d.conn.ws.Write(context.Background(), websocket.MessageText, ping) //nolint:errcheck
		case bytes.HasPrefix(line, pushPrefix):
			if i := bytes.Index(line, dataKey); i >= 0 {
				d.c.onMessage(line[i+len(dataKey):])
			}
		default:
			var reply centrifugoReply
			if json.Unmarshal(line, &reply) == nil && reply.ID != 0 {
				d.conn.answer(reply.ID, append([]byte(nil), line...))
			}
		}
	}
}

func (d *centrifugoDriver) request(ctx context.Context, build func(id int64) string) ([]byte, error) {
	id, ch := d.conn.id()
	raw, err := d.conn.request(ctx, id, ch, []byte(build(id)))
	if err != nil {
		return nil, err
	}
	var reply centrifugoReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("bad reply %s: %w", raw, err)
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("error %d: %s", reply.Error.Code, reply.Error.Message)
	}
	return raw, nil
}

func (d *centrifugoDriver) CreateRoom(ctx context.Context, title string, members []string) (string, error) {
	return centrifugoNamespace + ":" + title, nil // a channel exists while someone subscribes
}

func (d *centrifugoDriver) Join(ctx context.Context, room string) error {
	_, err := d.request(ctx, func(id int64) string {
		return fmt.Sprintf(`{"id":%d,"subscribe":{"channel":%s}}`, id, jsonString(room))
	})
	if err != nil {
		return fmt.Errorf("subscribing to %s failed: %w", room, err)
	}
	return nil
}

func (d *centrifugoDriver) Send(ctx context.Context, room, body string) error {
	_, err := d.request(ctx, func(id int64) string {
		return fmt.Sprintf(`{"id":%d,"publish":{"channel":%s,"data":{"b":%s}}}`,
			id, jsonString(room), jsonString(body))
	})
	if err != nil {
		return fmt.Errorf("publish failed: %w", err)
	}
	return nil
}

// driverFactory makes the driver for job.Target given (user, source ip).
func driverFactory(job Job, c *counters) (func(user, ip string) Driver, error) {
	switch {
	case len(job.Target) >= 8 && job.Target[:8] == "chatcore":
		return func(user, ip string) Driver {
			return &chatcoreDriver{url: job.URL, user: user, sourceIP: ip, token: token(job.Secret, user), sync: job.Sync, c: c}
		}, nil
	case job.Target == "uvicorn" || job.Target == "websockets":
		return func(user, ip string) Driver {
			return &plainDriver{url: job.URL, sourceIP: ip}
		}, nil
	case job.Target == "centrifugo":
		return func(user, ip string) Driver {
			return &centrifugoDriver{url: job.URL, user: user, sourceIP: ip, token: token(job.Secret, user), c: c}
		}, nil
	}
	return nil, fmt.Errorf("the Go load generator cannot drive %q (chatcore-*, centrifugo, or uvicorn and websockets for connections only)", job.Target)
}
