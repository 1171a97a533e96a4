package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsConn is a WebSocket with requests answered by id and a reading goroutine.
type wsConn struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	nextID  int64
	waiting map[int64]chan []byte
	done    chan struct{} // closed when readLoop returns (the connection ended)
}

func dial(ctx context.Context, url, sourceIP string, subprotocols []string) (*wsConn, error) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sourceIP)}, Timeout: 120 * time.Second}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       dialer.DialContext,
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      client,
		Subprotocols:    subprotocols,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s from %s: %w", url, sourceIP, err)
	}
	ws.SetReadLimit(8 << 20)
	return &wsConn{ws: ws, nextID: 1, waiting: map[int64]chan []byte{}, done: make(chan struct{})}, nil
}

// id reserves the next request id and a channel for its answer.
func (c *wsConn) id() (int64, chan []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	ch := make(chan []byte, 1)
	c.waiting[c.nextID] = ch
	return c.nextID, ch
}

// answer hands a reply to whoever waits for its id; false if nobody does.
func (c *wsConn) answer(id int64, frame []byte) bool {
	c.mu.Lock()
	ch, ok := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if ok {
		ch <- frame
	}
	return ok
}

func (c *wsConn) forget(id int64) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

// request writes frame (built with id) and waits for the answer to id, or for ctx.
// The write itself is not bound to ctx: a write cut short closes the connection.
func (c *wsConn) request(ctx context.Context, id int64, ch chan []byte, frame []byte) ([]byte, error) {
	if err := c.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case reply := <-ch:
		return reply, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

// readLoop calls handle for every frame until the connection ends.
func (c *wsConn) readLoop(handle func([]byte)) {
	defer close(c.done)
	ctx := context.Background()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		handle(data)
	}
}

// token is an HS256 JWT for user, valid for a day: the token chatcore's
// TokenAuthority issues, which Centrifugo also accepts with the same key.
func token(secret, user string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"sub": user, "iat": now, "exp": now + 24*3600})
	signed := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// neverOpened is the ended channel of a client whose first connection failed: a storm
// counts it as down from the start and tries to connect it like the others.
var neverOpened = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// endedOf is closed once conn has ended; at once when there is no connection.
func endedOf(conn *wsConn) <-chan struct{} {
	if conn == nil {
		return neverOpened
	}
	return conn.done
}
