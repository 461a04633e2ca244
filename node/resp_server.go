package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/resp"
)

// respServer accepts Redis-protocol connections (Config.RespAddr) and owns
// their goroutines. It works like server, the binary protocol's: one
// goroutine per connection, writes of a pipeline applied as one batch,
// answers written with one system call.
type respServer struct {
	n       *Node
	log     *logrus.Entry
	ln      net.Listener
	readCfg resp.Config
	cmds    *respCommands
	cursors scanCursors

	closing atomic.Bool
	wg      sync.WaitGroup // accept loop and every connection

	mu    sync.Mutex
	conns map[*respConn]struct{}
	open  atomic.Int64

	// For INFO.
	lastID    atomic.Int64 // CLIENT ID of the newest connection
	accepted  atomic.Int64
	rejected  atomic.Int64
	processed atomic.Int64
}

// startResp listens on addr and serves the Redis protocol until shutdown.
func startResp(n *Node, addr string) (*respServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upu: listen on %s: %w", addr, err)
	}
	s := &respServer{
		n:       n,
		log:     n.logger.Component("resp"),
		ln:      ln,
		cmds:    newRespCommands(),
		cursors: newScanCursors(n.cfg.MaxKeySize),
		conns:   make(map[*respConn]struct{}),
		// A bulk string over the value limit (plus room for a key) is
		// refused by the reader, which closes the connection: it cannot
		// be skipped without reading it. Smaller oversized values get an
		// error reply and the connection stays.
		readCfg: resp.Config{MaxBulkLen: max(n.cfg.MaxValueSize, n.cfg.MaxKeySize) + protocolOverhead},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// RespAddr returns the Redis protocol listener's address, or nil when it is
// off.
func (n *Node) RespAddr() net.Addr {
	if n.resp == nil {
		return nil
	}
	return n.resp.ln.Addr()
}

func (s *respServer) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.WithError(err).WithField("retry_in", delay.String()).Warn("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.accepted.Add(1)
		c := newRespConn(s, nc, s.lastID.Add(1))
		if !s.track(c) {
			s.rejected.Add(1)
			c.refuse()
			continue
		}
		go c.run()
	}
}

// track registers a connection, refusing it past MaxConns or during shutdown.
func (s *respServer) track(c *respConn) bool {
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

func (s *respServer) untrack(c *respConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.open.Add(-1)
	s.wg.Done()
}

// shutdown stops accepting, wakes every connection so it answers what it
// has read and exits, and waits for them until ctx ends; then it forces them
// shut. It may be called on a nil server (the listener is off) and more
// than once.
func (s *respServer) shutdown(ctx context.Context) error {
	if s == nil {
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
		s.log.WithField("conns", n).Warn("shutdown timeout: closing Redis-protocol connections with requests in flight")
		<-done
		return ctx.Err()
	}
}
