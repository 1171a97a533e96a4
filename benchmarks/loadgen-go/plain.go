package main

import (
	"context"
	"errors"
)

// plainDriver only holds a WebSocket open (the bare uvicorn and websockets peers):
// the handshake is the whole protocol.
type plainDriver struct {
	url, sourceIP string
	conn          *wsConn
}

var errConnectionsOnly = errors.New("a bare WebSocket peer takes connections only")

func (d *plainDriver) Connect(ctx context.Context) error {
	conn, err := dial(ctx, d.url, d.sourceIP, nil)
	if err != nil {
		return err
	}
	d.conn = conn
	go conn.readLoop(func([]byte) {})
	return nil
}

func (d *plainDriver) CreateRoom(context.Context, string, []string) (string, error) {
	return "", errConnectionsOnly
}

func (d *plainDriver) Join(context.Context, string) error { return errConnectionsOnly }

func (d *plainDriver) Send(context.Context, string, string) error { return errConnectionsOnly }

func (d *plainDriver) ended() <-chan struct{} { return endedOf(d.conn) }
