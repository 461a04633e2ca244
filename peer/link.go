package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// link is one yamux session to a remote node.
type link struct {
	p      *Pool
	remote string
	sess   *yamux.Session
	conn   *liveConn
	sem    chan struct{} // bounds the streams served at once
	log    *logrus.Entry

	// mu serialises Sends on out, this side's message stream, opened by
	// the first Send and dropped when a write to it fails; outDeadline is
	// the write deadline set on it last, zero when it is a context's.
	mu          sync.Mutex
	out         *yamux.Stream
	outDeadline time.Time
}

// errNotSent is a Call whose stream could not be opened: the link is down
// and the request never left.
var errNotSent = errors.New("upu: peer link down before sending")

// call runs one request on a new stream.
func (l *link) call(ctx context.Context, kind Kind, req []byte) ([]byte, error) {
	st, err := l.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	defer st.Close()
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
		if timeout = time.Until(d); timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
	defer stop()
	buf := l.p.getBuf()
	*buf = appendRequest(append((*buf)[:0], byte(streamCall)), kind, timeout, req)
	_, err = st.Write(*buf)
	l.p.putBuf(buf)
	if err != nil {
		return nil, l.streamErr(ctx, err)
	}
	s, body, err := readResponse(st, l.p.cfg.MaxMessage)
	if err != nil {
		return nil, l.streamErr(ctx, err)
	}
	switch s {
	case statusUnknownKind:
		return nil, ErrUnknownKind
	case statusFailed:
		return nil, &RemoteError{Kind: kind, Message: string(body)}
	case statusTooLarge:
		return nil, fmt.Errorf("%w: the remote node's bound", ErrTooLarge)
	}
	return body, nil
}

// send writes one message on the link's message stream, opening it first
// if need be. It returns once the message is written, or ctx ends, or
// WriteTimeout passes.
func (l *link) send(ctx context.Context, kind Kind, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.p.getBuf()
	defer l.p.putBuf(buf)
	*buf = (*buf)[:0]
	if l.out == nil {
		st, err := l.sess.OpenStream()
		if err != nil {
			return fmt.Errorf("%w: %w", errNotSent, err)
		}
		l.out = st
		*buf = append(*buf, byte(streamMessages))
	}
	st := l.out
	// A receiver that stopped taking messages fills the stream's window:
	// WriteTimeout bounds the wait as it bounds any write. Setting a
	// deadline costs an allocation, so the bound moves in steps of an
	// eighth of it, not at every Send; a context's deadline is exact.
	now := time.Now()
	if d, ok := ctx.Deadline(); ok && d.Before(now.Add(l.p.cfg.WriteTimeout)) {
		st.SetWriteDeadline(d)
		l.outDeadline = time.Time{}
	} else if l.outDeadline.Sub(now) < l.p.cfg.WriteTimeout*7/8 {
		l.outDeadline = now.Add(l.p.cfg.WriteTimeout)
		st.SetWriteDeadline(l.outDeadline)
	}
	stop := func() bool { return true }
	if ctx.Done() != nil { // a context that cannot end costs nothing
		stop = context.AfterFunc(ctx, func() { st.SetWriteDeadline(time.Now()) })
	}
	*buf = appendRequest(*buf, kind, 0, msg)
	_, err := st.Write(*buf)
	// A message cut short would garble the ones after it, and a context
	// that ended may still move the deadline of the next: either way the
	// next Send opens a new stream.
	if ended := !stop(); ended || err != nil {
		st.Close()
		l.out, l.outDeadline = nil, time.Time{}
	}
	if err != nil {
		return l.streamErr(ctx, err)
	}
	return nil
}

// streamErr says why a stream failed: the caller's context, the link, or
// the stream's own bytes.
func (l *link) streamErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrBadFrame), errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, yamux.ErrTimeout):
		return context.DeadlineExceeded
	}
	return fmt.Errorf("%w: %w", ErrLinkLost, err)
}

// accept serves the streams the remote node opens until the link closes,
// then waits for the handlers it started.
func (l *link) accept() {
	defer l.p.wg.Done()
	var handlers sync.WaitGroup
	defer handlers.Wait()
	// Cancelled, before the wait, once the link is gone.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		st, err := l.sess.AcceptStream()
		if err != nil {
			return
		}
		select {
		case l.sem <- struct{}{}:
		case <-l.sess.CloseChan():
			st.Close()
			return
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer func() { <-l.sem }()
			l.serve(ctx, st)
		}()
	}
}

// serve serves one stream: a request to answer, or messages.
func (l *link) serve(ctx context.Context, st *yamux.Stream) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(l.p.cfg.WriteTimeout))
	var mode [1]byte
	if _, err := io.ReadFull(st, mode[:]); err != nil {
		l.log.WithError(err).Debug("peer stream closed before its first byte")
		return
	}
	switch streamMode(mode[0]) {
	case streamCall:
		l.answer(ctx, st)
	case streamMessages:
		st.SetReadDeadline(time.Time{}) // quiet between messages; monitor watches the link
		l.take(ctx, st)
	default:
		l.log.WithField("mode", mode[0]).WithField(logging.FieldEvent, logging.EventProtocolError).Warn("peer stream of an unknown mode: closed")
	}
}

// take hands each message on st to its kind's handler, in order, until the
// stream ends. A message over the bound is skipped unread.
func (l *link) take(ctx context.Context, st *yamux.Stream) {
	var h [requestHeaderSize]byte
	for {
		req, err := readRequest(st, &h, l.p.cfg.MaxMessage)
		switch {
		case errors.Is(err, errBodyTooLarge):
			l.log.WithFields(logrus.Fields{"kind": req.kind.String(), "bytes": req.size, "max_message": l.p.cfg.MaxMessage, logging.FieldEvent: logging.EventProtocolError}).
				Warn("peer message over the size bound dropped")
			if _, err := io.CopyN(io.Discard, st, int64(req.size)); err != nil {
				return
			}
			continue
		case err != nil:
			if !errors.Is(err, io.EOF) {
				l.log.WithError(err).Debug("peer message stream ended")
			}
			return
		}
		h := l.p.handler(req.kind)
		if h == nil {
			l.log.WithField("kind", req.kind.String()).Debug("peer message of an unknown kind dropped")
			continue
		}
		if _, err := h(ctx, l.remote, req.body); err != nil && l.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			l.log.WithError(err).WithField("kind", req.kind.String()).Debug("peer message not taken")
		}
	}
}

// answer reads st's request and writes the handler's answer.
func (l *link) answer(ctx context.Context, st *yamux.Stream) {
	req, err := readRequest(st, new([requestHeaderSize]byte), l.p.cfg.MaxMessage)
	var out []byte
	switch {
	case errors.Is(err, errBodyTooLarge):
		out = appendResponse(nil, statusTooLarge, nil)
	case err != nil:
		l.log.WithError(err).Debug("peer request unreadable")
		return
	default:
		out = l.handle(ctx, req)
	}
	st.SetWriteDeadline(time.Now().Add(l.p.cfg.WriteTimeout))
	if _, err := st.Write(out); err != nil {
		l.log.WithError(err).WithField("kind", req.kind.String()).Debug("peer response not sent")
	}
}

// handle runs the request's handler and frames its answer.
func (l *link) handle(ctx context.Context, req request) []byte {
	h := l.p.handler(req.kind)
	if h == nil {
		l.log.WithField("kind", req.kind.String()).Debug("peer request of an unknown kind")
		return appendResponse(nil, statusUnknownKind, nil)
	}
	if req.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.timeout)
		defer cancel()
	}
	resp, err := h(ctx, l.remote, req.body)
	switch {
	case err != nil:
		return appendResponse(nil, statusFailed, []byte(err.Error()))
	case len(resp) > l.p.cfg.MaxMessage:
		return appendResponse(nil, statusTooLarge, nil)
	}
	return appendResponse(make([]byte, 0, responseHeaderSize+len(resp)), statusOK, resp)
}

// monitor closes the link when nothing arrived on it for DeadAfter, and
// drops it from the pool once it is closed, however that came about.
func (l *link) monitor(heard time.Time) {
	defer l.p.wg.Done()
	defer l.p.remove(l)
	t := l.p.clk.NewTicker(l.p.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-l.sess.CloseChan():
			l.log.Debug("peer link down")
			return
		case <-t.C():
			now := l.p.clk.Now()
			if l.conn.heard.Swap(false) {
				heard = now
				continue
			}
			if silent := now.Sub(heard); silent >= l.p.cfg.DeadAfter {
				l.log.WithField("silent_ms", silent.Milliseconds()).Info("peer link closed: nothing received from the remote node")
				l.sess.Close()
			}
		}
	}
}

// liveConn is a link's connection: it reads first the bytes the handshake
// read ahead, and notes that something arrived.
type liveConn struct {
	net.Conn
	rest  []byte
	heard atomic.Bool
}

func (c *liveConn) Read(b []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		c.heard.Store(true)
		return n, nil
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard.Store(true)
	}
	return n, err
}

// maxPooledBuf is the largest request buffer kept for reuse: one grown for
// a big request goes to the garbage collector.
const maxPooledBuf = 64 << 10

func (p *Pool) getBuf() *[]byte {
	if b, ok := p.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4<<10)
	return &b
}

func (p *Pool) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		p.bufs.Put(b)
	}
}
