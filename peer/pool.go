package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
)

// Node is a remote node as a Call or Send names it: its node ID, and the
// binary protocol address to dial when no link to it is up. Addr may be
// empty when the node is known to have linked to this one.
type Node struct {
	ID   string
	Addr string
}

// Handler serves one kind of request from the node from, Called or Sent.
// req belongs to the handler. ctx ends when the link closes, and for a
// Call when the caller's deadline passes. For a Call, a returned error
// reaches the caller as a *RemoteError; for a Send, the answer and the
// error are dropped. A handler holds up the Sends after the one it serves:
// it should not block.
type Handler func(ctx context.Context, from string, req []byte) ([]byte, error)

// Pool holds this node's links to other nodes: those it dialed and those
// it accepted, each carrying Calls and Sends either way.
type Pool struct {
	cfg  Config
	clk  clock.Clock
	log  *logrus.Entry
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	ymux *yamux.Config
	bufs sync.Pool // request buffers (getBuf, putBuf)

	hmu      sync.RWMutex
	handlers [256]Handler

	mu      sync.Mutex
	closed  bool
	links   map[string][]*link // by remote node ID, oldest first; one that closes is dropped
	dials   map[string]*dialing
	backoff map[string]backoff
	named   map[string]string // address -> node ID, as Identify found them

	wg sync.WaitGroup // every link's goroutines
}

// dialing is a dial under way, which other Calls to the same node wait for.
type dialing struct {
	done   chan struct{}
	cancel context.CancelFunc
	l      *link
	err    error
	gaveUp bool // the dialing Call's context ended: others may dial again
}

// backoff is what the last failed dials to a node said.
type backoff struct {
	failures int
	until    time.Time
	err      error
}

// New returns a Pool with no links; it dials when a Call needs it and
// serves what AcceptLink hands it.
func New(cfg Config, deps Deps) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg:     cfg,
		clk:     deps.Clock,
		log:     deps.Log,
		dial:    deps.Dial,
		links:   map[string][]*link{},
		dials:   map[string]*dialing{},
		backoff: map[string]backoff{},
	}
	if p.clk == nil {
		p.clk = clock.Real()
	}
	if p.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		p.log = logrus.NewEntry(l)
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	p.ymux = &yamux.Config{
		AcceptBacklog:          cfg.MaxStreams,
		EnableKeepAlive:        true,
		KeepAliveInterval:      cfg.KeepAlive,
		ConnectionWriteTimeout: cfg.WriteTimeout,
		MaxStreamWindowSize:    1 << 20, // a 1 MiB push in one window
		StreamCloseTimeout:     cfg.DeadAfter,
		// No per-stream open timer (a goroutine per Call): a link whose
		// streams go unanswered falls silent, and DeadAfter closes it.
		StreamOpenTimeout: 0,
		Logger:            yamuxLogger{p.log},
	}
	return p, nil
}

// Register makes h serve requests of kind k, replacing any handler before.
func (p *Pool) Register(k Kind, h Handler) {
	p.hmu.Lock()
	p.handlers[k] = h
	p.hmu.Unlock()
}

func (p *Pool) handler(k Kind) Handler {
	p.hmu.RLock()
	defer p.hmu.RUnlock()
	return p.handlers[k]
}

// Call sends req to the node to, to be served by its handler for kind, and
// returns the answer. It uses a link to to.ID that is up, or dials
// to.Addr. It returns once ctx ends; the remote handler's context ends with
// ctx's deadline too.
func (p *Pool) Call(ctx context.Context, to Node, kind Kind, req []byte) ([]byte, error) {
	if len(req) > p.cfg.MaxMessage {
		return nil, fmt.Errorf("upu: peer call %s to %s: %w: %d bytes", kind, to.ID, ErrTooLarge, len(req))
	}
	for attempt := 0; ; attempt++ {
		l, err := p.link(ctx, to)
		if err != nil {
			return nil, fmt.Errorf("upu: peer call %s to %s: %w", kind, to.ID, err)
		}
		resp, err := l.call(ctx, kind, req)
		if errors.Is(err, errNotSent) && attempt == 0 {
			// The link died before this request left: nothing was
			// handled, so a new link may carry it.
			p.remove(l)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("upu: peer call %s to %s: %w", kind, to.ID, err)
		}
		return resp, nil
	}
}

// Send hands msg to the node to's handler for kind, one-way: it returns
// once msg is written to the link, and learns nothing of what the handler
// made of it. Messages Sent to a node arrive in the order sent, and each
// is handled before the next; a lost link loses those not yet handled. It
// uses a link to to.ID that is up, or dials to.Addr. It returns once ctx
// ends, or when the message could not be written for WriteTimeout.
func (p *Pool) Send(ctx context.Context, to Node, kind Kind, msg []byte) error {
	if len(msg) > p.cfg.MaxMessage {
		return fmt.Errorf("upu: peer send %s to %s: %w: %d bytes", kind, to.ID, ErrTooLarge, len(msg))
	}
	for attempt := 0; ; attempt++ {
		l, err := p.link(ctx, to)
		if err != nil {
			return fmt.Errorf("upu: peer send %s to %s: %w", kind, to.ID, err)
		}
		err = l.send(ctx, kind, msg)
		if errors.Is(err, errNotSent) && attempt == 0 {
			p.remove(l)
			continue
		}
		if err != nil {
			return fmt.Errorf("upu: peer send %s to %s: %w", kind, to.ID, err)
		}
		return nil
	}
}

// link returns a link to to that is up, dialing one when there is none.
func (p *Pool) link(ctx context.Context, to Node) (*link, error) {
	if to.ID == "" {
		return nil, ErrNoRoute // a link is known by its node's ID
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if ls := p.links[to.ID]; len(ls) > 0 {
		p.mu.Unlock()
		return ls[0], nil
	}
	if to.Addr == "" {
		p.mu.Unlock()
		return nil, ErrNoRoute
	}
	if d := p.dials[to.ID]; d != nil {
		p.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err != nil && d.gaveUp {
			return p.link(ctx, to) // the dialer's caller gave up, not this one
		}
		return d.l, d.err
	}
	if b, ok := p.backoff[to.ID]; ok && p.clk.Now().Before(b.until) {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %d dials failed, the last: %v", ErrUnreachable, b.failures, b.err)
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	d := &dialing{done: make(chan struct{}), cancel: cancel}
	p.dials[to.ID] = d
	p.mu.Unlock()

	nc, rest, _, err := p.handshake(dctx, to)
	cancel()

	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.dials, to.ID)
	switch {
	case err == nil && p.closed:
		nc.Close()
		err = ErrClosed
	case err == nil:
		delete(p.backoff, to.ID)
		d.l, err = p.start(nc, rest, to.ID, true)
	case ctx.Err() != nil && !p.closed:
		// The caller gave up: that says nothing of the remote node.
		d.gaveUp = true
	case p.closed:
		err = ErrClosed
	default:
		now := p.clk.Now()
		// A backoff nobody ran into for RedialMax is forgotten: the nodes
		// that left do not pile up, and one that comes back starts anew.
		for id, b := range p.backoff {
			if now.Sub(b.until) > p.cfg.RedialMax {
				delete(p.backoff, id)
			}
		}
		b := p.backoff[to.ID]
		b.failures++
		b.until = now.Add(min(p.cfg.RedialMin<<min(b.failures-1, 30), p.cfg.RedialMax))
		b.err = err
		p.backoff[to.ID] = b
		p.log.WithError(err).WithFields(logrus.Fields{
			logging.FieldPeer: to.ID, logging.FieldRemote: to.Addr, "failures": b.failures,
		}).Debug("peer dial failed")
	}
	d.err = err
	close(d.done)
	return d.l, err
}

// Identify links to whichever node answers at addr, and returns its node
// ID: how a node known only by its address (a seed) is first reached. The
// link is kept, so that Calls and Sends to that ID use it. It is bounded
// by ctx and by the dial timeout.
func (p *Pool) Identify(ctx context.Context, addr string) (string, error) {
	if addr == "" {
		return "", ErrNoRoute
	}
	p.mu.Lock()
	if id, ok := p.named[addr]; ok && len(p.links[id]) > 0 {
		p.mu.Unlock()
		return id, nil
	}
	p.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	nc, rest, id, err := p.handshake(dctx, Node{Addr: addr})
	cancel()
	if err != nil {
		return "", fmt.Errorf("upu: peer identify %s: %w", addr, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		nc.Close()
		return "", ErrClosed
	}
	if p.named == nil || len(p.named) >= maxNamed {
		p.named = map[string]string{} // a few seeds at a time: start over
	}
	p.named[addr] = id
	if len(p.links[id]) > 0 {
		nc.Close() // one is up already: keep that one
		return id, nil
	}
	if _, err := p.start(nc, rest, id, true); err != nil {
		return "", fmt.Errorf("upu: peer identify %s: %w", addr, err)
	}
	return id, nil
}

// maxNamed bounds what Identify remembers.
const maxNamed = 256

// AcceptLink serves a link that the remote node dialed: conn, past the
// handshake and the OpPeerLink answer, with buffered the bytes already read
// from it after that request. remote is the node ID the remote's hello
// stated. The link's goroutines are the Pool's; AcceptLink returns at once.
// After Close it closes conn.
func (p *Pool) AcceptLink(_ context.Context, conn net.Conn, buffered []byte, remote string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		conn.Close()
		return
	}
	if _, err := p.start(conn, buffered, remote, false); err != nil {
		p.log.WithError(err).WithFields(logrus.Fields{logging.FieldPeer: remote, logging.FieldRemote: conn.RemoteAddr().String(), logging.FieldEvent: logging.EventPeerLinkError}).
			Warn("peer link not served")
	}
}

// start runs a link over nc and adds it to the links to remote. The caller
// holds p.mu and has checked that the pool is open.
func (p *Pool) start(nc net.Conn, buffered []byte, remote string, dialed bool) (*link, error) {
	lc := &liveConn{Conn: nc, rest: buffered}
	var sess *yamux.Session
	var err error
	if dialed {
		sess, err = yamux.Client(lc, p.ymux)
	} else {
		sess, err = yamux.Server(lc, p.ymux)
	}
	if err != nil {
		nc.Close()
		return nil, err // only an invalid yamux config fails, and New built it
	}
	l := &link{
		p:      p,
		remote: remote,
		sess:   sess,
		conn:   lc,
		sem:    make(chan struct{}, p.cfg.MaxStreams),
		log:    p.log.WithFields(logrus.Fields{logging.FieldPeer: remote, logging.FieldRemote: nc.RemoteAddr().String(), "dialed": dialed}),
	}
	p.links[remote] = append(p.links[remote], l)
	p.wg.Add(2)
	go l.accept()
	go l.monitor(p.clk.Now())
	l.log.Debug("peer link up")
	return l, nil
}

// remove drops l from the links; it closes l if it is still open.
func (p *Pool) remove(l *link) {
	l.sess.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := p.links[l.remote]
	for i, x := range ls {
		if x == l {
			ls = append(ls[:i:i], ls[i+1:]...)
			break
		}
	}
	if len(ls) == 0 {
		delete(p.links, l.remote)
	} else {
		p.links[l.remote] = ls
	}
}

// Close closes every link and cancels the dials under way, and waits for
// every goroutine the pool started. Later Calls fail with ErrClosed. It is
// idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	var ls []*link
	for _, group := range p.links {
		ls = append(ls, group...)
	}
	for _, d := range p.dials {
		d.cancel()
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.sess.Close()
	}
	p.wg.Wait()
	return nil
}

// yamuxLogger takes yamux's log lines: link failures it also reports by
// closing the link, which the link's monitor logs.
type yamuxLogger struct{ log *logrus.Entry }

func (y yamuxLogger) Print(v ...any)                 { y.log.Debug(v...) }
func (y yamuxLogger) Printf(format string, v ...any) { y.log.Debugf(format, v...) }
func (y yamuxLogger) Println(v ...any)               { y.log.Debug(v...) }
