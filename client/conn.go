package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upu/upu/protocol"
)

const (
	// sockBufSize asks the kernel for big socket buffers, as the node does:
	// a pipeline of small requests then costs one system call each way.
	sockBufSize = 512 << 10
	// maxHelloBody bounds the server's Hello, read before its limits are known.
	maxHelloBody = 64 << 10
	// maxKeptBatch bounds the write buffer a connection keeps between batches.
	maxKeptBatch = 1 << 20
)

// request is what a call asks of a connection.
type request struct {
	op    protocol.Opcode
	body  any    // the message; nil for an empty body
	key   []byte // checked against the node's limits when keyed
	value []byte // checked against the node's limits when valued
	keyed bool
	// valued says value is checked.
	valued bool
	// retry says the request may be repeated after it may have been sent.
	retry bool
}

// conn is one connection to a node, after a successful handshake. It owns a
// reader and a writer goroutine, which the Client's WaitGroup waits for.
// Once failed it is closed, dropped from its node and never used again.
type conn struct {
	c    *Client
	node *node
	slot int
	nc   net.Conn

	hello     protocol.Hello // the node's: its limits and timers
	maxBody   uint32         // largest request body the node takes
	heartbeat time.Duration  // send something at least this often; 0: never
	idle      time.Duration  // silence after which the connection is dead; 0: never

	epoch    time.Time    // base of lastSend, for a monotonic stamp
	lastSend atomic.Int64 // nanoseconds since epoch when the writer last began a write
	proven   atomic.Bool  // a reply arrived: the node serves
	dead     atomic.Bool  // fail began: take no new calls
	nextID   atomic.Uint64
	slots    chan struct{} // MaxInFlight tokens
	wake     chan struct{} // capacity 1: the write buffer became non-empty
	quit     chan struct{} // closed by fail

	mu      sync.Mutex
	wbuf    []byte // encoded frames the writer has not taken yet
	gen     uint64 // generation of wbuf; the writer bumps it when it takes wbuf
	taken   uint64 // latest generation the writer took
	pending map[uint64]*call
	closed  bool
	cause   error
}

// isRESPType reports whether b starts a Redis protocol reply.
func isRESPType(b byte) bool { return strings.IndexByte("+-:$*_#,(!=%~>|", b) >= 0 }

// wrongProtocol is the error for a node port that answered a hello in the
// Redis protocol: a --resp-addr given where the UPU protocol's --addr was
// meant.
func wrongProtocol(nc net.Conn) error {
	return fmt.Errorf("%w: %s speaks the Redis protocol (RESP), not the UPU protocol: point the client at the node's --addr, not its --resp-addr",
		ErrProtocol, nc.RemoteAddr())
}

// handshake sends the client's Hello on nc and reads the node's. It reads
// exactly one frame, so nothing the node sends next is lost.
func handshake(nc net.Conn, cfg *Config) (protocol.Hello, error) {
	out, err := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello}, &protocol.Hello{
		Version: protocol.Version,
		Role:    cfg.Role,
		Token:   cfg.Token,
		Client:  cfg.Name,
	})
	if err != nil {
		return protocol.Hello{}, err
	}
	if _, err := nc.Write(out); err != nil {
		return protocol.Hello{}, err
	}
	var hdr [protocol.HeaderSize]byte
	if n, err := io.ReadFull(nc, hdr[:]); err != nil {
		if n > 0 && hdr[0] == '-' {
			return protocol.Hello{}, wrongProtocol(nc)
		}
		return protocol.Hello{}, fmt.Errorf("reading hello: %w", err)
	}
	if hdr[0] != protocol.Magic && isRESPType(hdr[0]) {
		return protocol.Hello{}, wrongProtocol(nc)
	}
	h, err := protocol.ParseHeader(hdr[:], maxHelloBody)
	if err != nil {
		return protocol.Hello{}, fmt.Errorf("%w: hello: %w", ErrProtocol, err)
	}
	body := make([]byte, h.Len)
	if _, err := io.ReadFull(nc, body); err != nil {
		return protocol.Hello{}, fmt.Errorf("reading hello: %w", err)
	}
	if h.Opcode == protocol.OpError {
		var e protocol.Error
		if err := protocol.DecodeBody(body, &e); err != nil {
			return protocol.Hello{}, fmt.Errorf("%w: hello refused: %w", ErrProtocol, err)
		}
		return protocol.Hello{}, &ServerError{Code: e.Code, Message: e.Message, ReqID: e.ReqID, Node: nc.RemoteAddr().String(), Op: protocol.OpHello}
	}
	if h.Opcode != protocol.OpHello || !h.IsResponse() {
		return protocol.Hello{}, fmt.Errorf("%w: got %s instead of a hello reply", ErrProtocol, h.Opcode)
	}
	var sh protocol.Hello
	if err := protocol.DecodeBody(body, &sh); err != nil {
		return protocol.Hello{}, fmt.Errorf("%w: hello: %w", ErrProtocol, err)
	}
	if sh.Version != protocol.Version {
		return protocol.Hello{}, fmt.Errorf("%w: node speaks protocol version %d, client %d", ErrProtocol, sh.Version, protocol.Version)
	}
	return sh, nil
}

// connect dials n and shakes hands within ctx. The connection it returns
// has no goroutines yet: start launches them.
func (c *Client) connect(ctx context.Context, n *node, slot int) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", n.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		// Best effort: the kernel may cap the sizes; NODELAY is Go's default.
		_ = tc.SetReadBuffer(sockBufSize)
		_ = tc.SetWriteBuffer(sockBufSize)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	// Close cancels ctx: end a handshake that would wait for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	hello, err := handshake(nc, &c.cfg)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("handshake with %s: %w", n.addr, err)
	}
	cn := &conn{
		c:         c,
		node:      n,
		slot:      slot,
		nc:        nc,
		hello:     hello,
		maxBody:   hello.MaxBody,
		heartbeat: time.Duration(hello.HeartbeatMS) * time.Millisecond,
		idle:      time.Duration(hello.IdleTimeoutMS) * time.Millisecond,
		epoch:     time.Now(),
		slots:     make(chan struct{}, c.cfg.MaxInFlight),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		gen:       1,
		pending:   make(map[uint64]*call),
	}
	if cn.maxBody == 0 {
		cn.maxBody = protocol.DefaultMaxBody
	}
	return cn, nil
}

// start launches the connection's reader and writer.
func (cn *conn) start() {
	cn.c.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
}

func (cn *conn) mono() int64 { return int64(time.Since(cn.epoch)) }

// exchange sends r and waits for the reply, which it leaves in cl. A broken
// connection gives a *connFailure; an expired wait gives errExpired.
func (cn *conn) exchange(ctx context.Context, cl *call, r *request, expire <-chan time.Time) error {
	if err := cn.check(r); err != nil {
		return err
	}
	select {
	case cn.slots <- struct{}{}:
	default:
		select {
		case cn.slots <- struct{}{}:
		case <-ctx.Done():
			return errExpired
		case <-expire:
			return errExpired
		case <-cn.quit:
			return cn.failure(false)
		}
	}
	defer func() { <-cn.slots }()

	id := cn.nextID.Add(1)
	var err error
	cl.wbuf, err = protocol.AppendFrame(cl.wbuf[:0], protocol.Header{Opcode: r.op, ReqID: id}, r.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if n := len(cl.wbuf) - protocol.HeaderSize; n > int(cn.maxBody) {
		return fmt.Errorf("%w: %s request of %d bytes, node %s takes %d", ErrTooLarge, r.op, n, cn.node.addr, cn.maxBody)
	}
	cl.id, cl.err, cl.sent = id, nil, false // clear what an earlier attempt left
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return cn.failure(false)
	}
	idle := len(cn.wbuf) == 0
	cn.wbuf = append(cn.wbuf, cl.wbuf...)
	cl.gen = cn.gen
	cn.pending[id] = cl
	cn.mu.Unlock()
	if idle {
		// A non-empty buffer has a wake-up pending already.
		select {
		case cn.wake <- struct{}{}:
		default:
		}
	}

	select {
	case <-cl.done:
	case <-ctx.Done():
		if cn.forget(cl) {
			return errExpired
		}
		<-cl.done
	case <-expire:
		if cn.forget(cl) {
			return errExpired
		}
		<-cl.done
	}
	if cl.err != nil {
		return &connFailure{addr: cn.node.addr, err: cl.err, sent: cl.sent}
	}
	return nil
}

// check enforces the node's size limits without a round trip.
func (cn *conn) check(r *request) error {
	if r.keyed {
		if len(r.key) == 0 {
			return fmt.Errorf("%w: empty key", ErrBadRequest)
		}
		if limit := cn.hello.MaxKey; limit > 0 && len(r.key) > int(limit) {
			return fmt.Errorf("%w: key of %d bytes, node %s takes %d", ErrTooLarge, len(r.key), cn.node.addr, limit)
		}
	}
	if limit := cn.hello.MaxValue; r.valued && limit > 0 && len(r.value) > int(limit) {
		return fmt.Errorf("%w: value of %d bytes, node %s takes %d", ErrTooLarge, len(r.value), cn.node.addr, limit)
	}
	return nil
}

// forget drops a call whose caller gave up, so its late reply is discarded.
// It reports false when the reply or a failure already claimed the call:
// then done is about to be signalled.
func (cn *conn) forget(cl *call) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.pending[cl.id] != cl {
		return false
	}
	delete(cn.pending, cl.id)
	return true
}

// failure is the error of a call refused because the connection failed.
func (cn *conn) failure(sent bool) *connFailure {
	cn.mu.Lock()
	cause := cn.cause
	cn.mu.Unlock()
	return &connFailure{addr: cn.node.addr, err: cause, sent: sent}
}

// readLoop reads replies and hands each to its call until the connection
// fails.
func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	limit := min(4*uint64(max(cn.maxBody, protocol.DefaultMaxBody)), math.MaxUint32)
	dec := protocol.NewDecoder(uint32(limit))
	lastRecv := cn.mono()
	for {
		if cn.idle > 0 {
			_ = cn.nc.SetReadDeadline(time.Now().Add(cn.idle))
		}
		n, err := dec.ReadOnce(cn.nc)
		if n > 0 {
			lastRecv = cn.mono()
		}
		for {
			f, ok, ferr := dec.Next()
			if ferr != nil {
				cn.fail(fmt.Errorf("%w: bad frame from node: %w", ErrProtocol, ferr))
				return
			}
			if !ok {
				break
			}
			if ferr := cn.receive(f); ferr != nil {
				cn.fail(ferr)
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && cn.lastSend.Load() <= lastRecv:
			// Nothing was sent since the last frame arrived, so silence
			// proves nothing. The writer's pings make this rare.
		case errors.Is(err, os.ErrDeadlineExceeded):
			cn.c.stats.idleCloses.Add(1)
			cn.fail(fmt.Errorf("nothing received for %v: connection dead: %w", cn.idle, err))
			return
		case errors.Is(err, io.EOF):
			cn.fail(fmt.Errorf("connection closed by node: %w", err))
			return
		default:
			cn.fail(err)
			return
		}
	}
}

// receive handles one frame from the node.
func (cn *conn) receive(f protocol.Frame) error {
	if !f.IsResponse() {
		if f.Opcode != protocol.OpPing {
			return fmt.Errorf("%w: node sent a %s request", ErrProtocol, f.Opcode)
		}
		cn.enqueue(protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpPing, Flags: protocol.FlagResponse, ReqID: f.ReqID}))
		return nil
	}
	if !cn.proven.Load() {
		cn.proven.Store(true)
		cn.node.healthy()
	}
	if f.ReqID == 0 {
		// Heartbeat replies carry ID 0, and so does a node's report of a
		// framing error before it closes the connection.
		if f.Opcode != protocol.OpError {
			return nil
		}
		var e protocol.Error
		if err := protocol.DecodeBody(f.Body, &e); err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		return &ServerError{Code: e.Code, Message: e.Message, ReqID: e.ReqID, Node: cn.node.addr}
	}
	cn.mu.Lock()
	if cn.closed {
		// The calls were failed already; the reader stops here.
		cn.mu.Unlock()
		return cn.cause
	}
	cl := cn.pending[f.ReqID]
	delete(cn.pending, f.ReqID)
	cn.mu.Unlock()
	if cl == nil {
		cn.c.stats.lateReplies.Add(1)
		return nil
	}
	cl.op = f.Opcode
	cl.body = append(cl.body[:0], f.Body...)
	cl.done <- struct{}{}
	return nil
}

// enqueue adds an encoded frame to the write buffer outside of any call.
func (cn *conn) enqueue(frame []byte) {
	cn.mu.Lock()
	cn.wbuf = append(cn.wbuf, frame...)
	cn.mu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes whatever callers queued, a whole batch per system call,
// and pings when the connection has been quiet for half the heartbeat.
func (cn *conn) writeLoop() {
	defer cn.c.wg.Done()
	var tick <-chan time.Time
	if cn.heartbeat > 0 {
		t := time.NewTicker(cn.heartbeat / 2)
		defer t.Stop()
		tick = t.C
	}
	ping := protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpPing})
	lastWrite := time.Now()
	var spare []byte
	for {
		select {
		case <-cn.quit:
			return
		case <-cn.wake:
			// Let callers that are running queue their requests too: one
			// write then carries many (BenchmarkClientSetParallel: -30%).
			runtime.Gosched()
		case now := <-tick:
			if now.Sub(lastWrite) < cn.heartbeat/2 {
				continue
			}
			cn.mu.Lock()
			cn.wbuf = append(cn.wbuf, ping...)
			cn.mu.Unlock()
			cn.c.stats.pings.Add(1)
		}
		cn.mu.Lock()
		batch := cn.wbuf
		cn.wbuf = spare[:0]
		cn.taken = cn.gen
		cn.gen++
		cn.mu.Unlock()
		if len(batch) > 0 {
			if cn.idle > 0 {
				_ = cn.nc.SetWriteDeadline(time.Now().Add(cn.idle))
			}
			cn.lastSend.Store(cn.mono())
			if _, err := cn.nc.Write(batch); err != nil {
				cn.fail(err)
				return
			}
			lastWrite = time.Now()
		}
		if cap(batch) > maxKeptBatch {
			batch = nil
		}
		spare = batch
	}
}

// fail closes the connection for cause, fails its pending calls and drops it
// from its node. Only the first call has an effect.
func (cn *conn) fail(cause error) {
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return
	}
	cn.closed, cn.cause = true, cause
	cn.dead.Store(true)
	pending, taken := cn.pending, cn.taken
	cn.pending = nil
	cn.mu.Unlock()

	_ = cn.nc.Close()
	close(cn.quit)
	for _, cl := range pending {
		cl.err, cl.sent = cause, cl.gen <= taken
		cl.done <- struct{}{}
	}
	cn.node.drop(cn, cause)
	cn.c.stats.connsOpen.Add(-1)
}
