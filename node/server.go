package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication/crdt"
	"github.com/upu/upu/store"
)

// server accepts binary-protocol connections and owns their goroutines.
type server struct {
	n   *Node
	log *logrus.Entry
	ln  net.Listener

	closing atomic.Bool
	wg      sync.WaitGroup // accept loop and every connection

	mu    sync.Mutex
	conns map[*conn]struct{}
	open  atomic.Int64
}

func newServer(n *Node) *server {
	return &server{n: n, log: n.logger.Component("server"), conns: make(map[*conn]struct{})}
}

func (s *server) addr() net.Addr {
	if s.ln == nil {
		return &net.TCPAddr{}
	}
	return s.ln.Addr()
}

func (s *server) serve(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning on a listener that keeps failing.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.WithError(err).WithField("retry_in", delay.String()).Warn("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := newConn(s, nc)
		if !s.track(c) {
			c.refuse()
			continue
		}
		go c.run()
	}
}

// track registers a connection, refusing it past MaxConns or during shutdown.
func (s *server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() || len(s.conns) >= s.n.cfg.MaxConns {
		return false
	}
	s.conns[c] = struct{}{}
	s.open.Add(1)
	s.wg.Add(1)
	return true
}

func (s *server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.open.Add(-1)
	s.wg.Done()
}

// shutdown stops accepting, wakes every connection so it answers what it has
// read and exits, and waits for them until ctx ends; then it forces them shut.
func (s *server) shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	s.mu.Lock()
	s.closing.Store(true)
	s.ln.Close()
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		s.log.WithField("conns", n).Warn("shutdown timeout: closing connections with requests in flight")
		<-done
		return ctx.Err()
	}
}

// errorCode maps an error from the store or the CRDT layer to its wire code.
// Only CodeInternal means the server failed the caller.
func errorCode(err error) protocol.Code {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return pe.Code
	case errors.Is(err, store.ErrNotFound):
		return protocol.CodeNotFound
	case errors.Is(err, store.ErrTooLarge):
		return protocol.CodeTooLarge
	case errors.Is(err, store.ErrBadRequest), errors.Is(err, crdt.ErrOverflow), errors.Is(err, crdt.ErrBadEncoding):
		return protocol.CodeBadRequest
	case errors.Is(err, crdt.ErrWrongType):
		return protocol.CodeWrongType
	case errors.Is(err, store.ErrClosed):
		return protocol.CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.CodeTimeout
	}
	return protocol.CodeInternal
}
