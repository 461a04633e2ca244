package peer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/upu/upu/protocol"
)

// handshake dials to.Addr and turns the connection into a link: a hello
// with the peer role and, once the server's hello says it is the node
// meant (any node when to.ID is empty), OpPeerLink. It returns the
// connection, the bytes read past the answers and the node ID the server
// stated. The whole of it is bounded by ctx.
func (p *Pool) handshake(ctx context.Context, to Node) (net.Conn, []byte, string, error) {
	nc, err := p.dial(ctx, "tcp", to.Addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("dial %s: %w", to.Addr, err)
	}
	rest, id, err := p.greet(ctx, nc, to)
	if err != nil {
		nc.Close()
		return nil, nil, "", fmt.Errorf("handshake with %s: %w", to.Addr, err)
	}
	return nc, rest, id, nil
}

func (p *Pool) greet(ctx context.Context, nc net.Conn, to Node) ([]byte, string, error) {
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	// A cancel without a deadline ends the reads and writes too.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	hello := protocol.Hello{Version: protocol.Version, Role: protocol.RolePeer, Token: p.cfg.Token, NodeID: p.cfg.Self, Client: "upu-peer"}
	out, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello, ReqID: 1}, &hello) // a Hello always encodes
	if _, err := nc.Write(out); err != nil {
		return nil, "", ctxErr(ctx, err)
	}
	dec := protocol.NewDecoder(0)
	var answer protocol.Hello
	if err := expect(nc, dec, protocol.OpHello, &answer); err != nil {
		return nil, "", ctxErr(ctx, err)
	}
	switch {
	case answer.NodeID == "":
		return nil, "", fmt.Errorf("%w: %s stated no node id", ErrWrongNode, to.Addr)
	case to.ID != "" && answer.NodeID != to.ID:
		return nil, "", fmt.Errorf("%w: %s answered as %q", ErrWrongNode, to.Addr, answer.NodeID)
	}
	if _, err := nc.Write(protocol.AppendHeader(out[:0], protocol.Header{Opcode: protocol.OpPeerLink, ReqID: 2})); err != nil {
		return nil, "", ctxErr(ctx, err)
	}
	if err := expect(nc, dec, protocol.OpPeerLink, nil); err != nil {
		return nil, "", ctxErr(ctx, err)
	}
	if !stop() {
		return nil, "", ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return bytes.Clone(dec.Unread()), answer.NodeID, nil
}

// expect reads the next frame, which must answer op; its body is decoded
// into msg unless msg is nil. An error answer becomes ErrRefused for the
// codes that say the node will not link, and a *protocol.Error otherwise.
func expect(nc net.Conn, dec *protocol.Decoder, op protocol.Opcode, msg any) error {
	for {
		f, ok, err := dec.Next()
		if err != nil {
			return err
		}
		if !ok {
			if _, err := dec.ReadOnce(nc); err != nil {
				return err
			}
			continue
		}
		switch {
		case f.Opcode == protocol.OpError:
			var pe protocol.Error
			if err := protocol.DecodeBody(f.Body, &pe); err != nil {
				return err
			}
			if pe.Code == protocol.CodeUnauthorized || pe.Code == protocol.CodeUnavailable || pe.Code == protocol.CodeUnknownOp {
				return fmt.Errorf("%w: %w", ErrRefused, &pe)
			}
			return &pe
		case f.Opcode != op || !f.IsResponse():
			return fmt.Errorf("%w: answer %s to %s", ErrBadFrame, f.Opcode, op)
		case msg != nil:
			return protocol.DecodeBody(f.Body, msg)
		}
		return nil
	}
}

// ctxErr names ctx's end as the cause of the failure it caused (the
// deadline set on the connection).
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %v", cerr, err)
	}
	return err
}
