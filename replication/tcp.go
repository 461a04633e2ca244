package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/protocol"
)

// TCPConfig configures a TCPTransport.
type TCPConfig struct {
	// Self is sent in the handshake so the receiver knows who speaks.
	Self crdt.NodeID
	// Token is the peer token the receivers expect (may be empty when
	// they require none).
	Token string
	// DialTimeout bounds connecting and the handshake.
	DialTimeout time.Duration
	// IOTimeout bounds sending one message and reading its receipt.
	IOTimeout time.Duration
}

// DefaultTCPConfig returns the timeouts a LAN domain needs.
func DefaultTCPConfig() TCPConfig {
	return TCPConfig{DialTimeout: time.Second, IOTimeout: 5 * time.Second}
}

// ErrTransportClosed is returned by Send after Close.
var ErrTransportClosed = errors.New("upu: replication transport closed")

// TCPTransport sends replication messages to peers over the binary protocol:
// one connection per peer, dialled on first use with the peer role, each
// message a replicate request whose empty answer says it was taken. A
// connection that fails in any way is closed and dropped; the next Send
// dials again, and the replication machine's retransmission covers what
// was lost.
type TCPTransport struct {
	cfg TCPConfig

	mu     sync.Mutex
	conns  map[string]*peerConn
	closed bool
}

// NewTCPTransport returns a transport; zero timeouts take the defaults.
func NewTCPTransport(cfg TCPConfig) *TCPTransport {
	d := DefaultTCPConfig()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = d.IOTimeout
	}
	return &TCPTransport{cfg: cfg, conns: make(map[string]*peerConn)}
}

// peerConn is one connection to a peer. Its mutex serialises messages so
// that each waits for its own receipt.
type peerConn struct {
	mu    sync.Mutex
	nc    net.Conn
	dec   *protocol.Decoder
	buf   []byte
	reqID uint64
	dead  bool
}

// Send delivers msg to the peer and waits for its receipt.
func (t *TCPTransport) Send(ctx context.Context, to Peer, msg Message) error {
	pc, err := t.conn(ctx, to)
	if err != nil {
		return err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.dead {
		return fmt.Errorf("upu: connection to %s lost", to.Addr)
	}
	err = pc.roundTrip(ctx, t.cfg.IOTimeout, func(dst []byte, h protocol.Header) []byte {
		h.Opcode = protocol.OpReplicate
		frame := AppendMessage(protocol.AppendHeader(dst, h), &msg)
		protocol.SetBodyLen(frame)
		return frame
	})
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code == protocol.CodeProtocol || pe.Code == protocol.CodeUnknownOp {
			t.drop(to.Addr, pc)
		}
		return fmt.Errorf("upu: send %s to %s: %w", msg.Type, to.ID, err)
	}
	return nil
}

// conn returns the connection to a peer, dialling it when there is none.
func (t *TCPTransport) conn(ctx context.Context, to Peer) (*peerConn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrTransportClosed
	}
	pc := t.conns[to.Addr]
	t.mu.Unlock()
	if pc != nil {
		return pc, nil
	}
	pc, err := t.dial(ctx, to)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		pc.nc.Close()
		return nil, ErrTransportClosed
	}
	if old := t.conns[to.Addr]; old != nil {
		pc.nc.Close() // another Send won the race
		return old, nil
	}
	t.conns[to.Addr] = pc
	return pc, nil
}

func (t *TCPTransport) dial(ctx context.Context, to Peer) (*peerConn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", to.Addr)
	if err != nil {
		return nil, fmt.Errorf("upu: dial peer %s at %s: %w", to.ID, to.Addr, err)
	}
	pc := &peerConn{nc: nc, dec: protocol.NewDecoder(0)}
	hello := protocol.Hello{Version: protocol.Version, Role: protocol.RolePeer, Token: t.cfg.Token, NodeID: t.cfg.Self.String(), Client: "upu-replication"}
	err = pc.roundTrip(dctx, t.cfg.DialTimeout, func(dst []byte, h protocol.Header) []byte {
		h.Opcode = protocol.OpHello
		frame, _ := protocol.AppendFrame(dst, h, &hello) // a Hello always encodes
		return frame
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upu: handshake with peer %s at %s: %w", to.ID, to.Addr, err)
	}
	return pc, nil
}

// roundTrip writes the frame that build appends for header h (its request
// ID set), and reads until its answer. An error frame comes back as a
// *protocol.Error.
func (pc *peerConn) roundTrip(ctx context.Context, timeout time.Duration, build func(dst []byte, h protocol.Header) []byte) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pc.nc.SetDeadline(deadline)
	pc.reqID++
	id := pc.reqID
	pc.buf = build(pc.buf[:0], protocol.Header{ReqID: id})
	if _, err := pc.nc.Write(pc.buf); err != nil {
		pc.dead = true
		return err
	}
	for {
		f, ok, err := pc.dec.Next()
		if err != nil {
			pc.dead = true
			return err
		}
		if !ok {
			if _, err := pc.dec.ReadOnce(pc.nc); err != nil {
				pc.dead = true
				return err
			}
			continue
		}
		if f.ReqID != id && f.ReqID != 0 {
			continue // an answer to a request that timed out earlier
		}
		if f.Opcode == protocol.OpError {
			var pe protocol.Error
			if err := protocol.DecodeBody(f.Body, &pe); err != nil {
				pc.dead = true
				return err
			}
			return &pe
		}
		return nil
	}
}

func (t *TCPTransport) drop(addr string, pc *peerConn) {
	pc.dead = true
	pc.nc.Close()
	t.mu.Lock()
	if t.conns[addr] == pc {
		delete(t.conns, addr)
	}
	t.mu.Unlock()
}

// Close closes every connection; later Sends fail with ErrTransportClosed.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for addr, pc := range t.conns {
		pc.nc.Close()
		delete(t.conns, addr)
	}
	return nil
}
