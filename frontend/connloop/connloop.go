package connloop

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
)

// Outcome is what a connection does after the answers to a read are
// written.
type Outcome uint8

const (
	Continue Outcome = iota // read the next requests
	Close                   // the protocol ended the conversation (QUIT, a framing error)
	HandOff                 // the socket now belongs to another owner (Conn.HandOff)
)

// Conn is one protocol's side of a connection. The loop calls it from the
// connection's goroutine only.
type Conn interface {
	// ReadOnce reads from r into the protocol's buffer with one Read call.
	ReadOnce(r io.Reader) (int, error)
	// Process handles every complete request buffered and queues their
	// answers.
	Process() Outcome
	// Flush writes the queued answers, if any, and forgets them.
	Flush(w io.Writer) error
	// ReadDeadline is when the next bytes must have arrived, given now.
	ReadDeadline(now time.Time) time.Time
	// Refuse queues the answer to a connection over the limit.
	Refuse()
	// HandOff gives the socket to its new owner after Process said so.
	HandOff(nc net.Conn)
	// Log is the connection's logger.
	Log() *logrus.Entry
}

// Config tunes a Server. Zero fields take their defaults.
type Config struct {
	// MaxConns caps open connections; more are refused.
	MaxConns int
	// WriteTimeout bounds the write of one batch of answers.
	WriteTimeout time.Duration
	// SocketBuffer is the kernel buffer size asked for each direction: a
	// pipeline of small requests then costs one read and one write.
	SocketBuffer int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxConns: 10000, WriteTimeout: 30 * time.Second, SocketBuffer: 512 << 10}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.SocketBuffer = cmp.Or(c.SocketBuffer, d.SocketBuffer)
	return c
}

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid connection loop config")

// Validate reports every invalid field.
func (c Config) Validate() error {
	var l confcheck.List
	if c.MaxConns < 0 {
		l.Add("MaxConns", c.MaxConns, "must not be negative")
	}
	if c.WriteTimeout < 0 {
		l.Add("WriteTimeout", c.WriteTimeout, "must not be negative")
	}
	if c.SocketBuffer < 0 {
		l.Add("SocketBuffer", c.SocketBuffer, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}

// Deps are what a Server needs: its logger and the protocol, which makes
// the Conn for each accepted socket.
type Deps struct {
	Log     *logrus.Entry
	NewConn func(nc net.Conn) Conn
}

// refuseTimeout bounds the write of a refusal: a refused client gets one
// chance to read why.
const refuseTimeout = 100 * time.Millisecond

// Server accepts connections on one listener and owns their goroutines.
type Server struct {
	cfg     Config
	log     *logrus.Entry
	newConn func(net.Conn) Conn

	ln      net.Listener
	closing atomic.Bool
	stop    chan struct{} // closed by Shutdown: ends the accept loop's backoff
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[*served]struct{}

	open     atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64
}

// served is one connection the server owns.
type served struct {
	nc net.Conn
	c  Conn
}

// New makes a server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil || deps.NewConn == nil {
		return nil, errors.New("connloop: Deps.Log and Deps.NewConn are required")
	}
	return &Server{cfg: cfg.withDefaults(), log: deps.Log, newConn: deps.NewConn, stop: make(chan struct{}), conns: make(map[*served]struct{})}, nil
}

// Serve accepts connections on ln until Shutdown, which closes ln.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go s.acceptLoop()
}

// Addr is the listener's address; the zero TCP address before Serve.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return &net.TCPAddr{}
	}
	return s.ln.Addr()
}

// Closing reports whether Shutdown has begun.
func (s *Server) Closing() bool { return s.closing.Load() }

// Open, Accepted and Rejected count connections: open now, accepted and
// refused since the start.
func (s *Server) Open() int64     { return s.open.Load() }
func (s *Server) Accepted() int64 { return s.accepted.Load() }
func (s *Server) Rejected() int64 { return s.rejected.Load() }

func (s *Server) acceptLoop() {
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
			s.log.WithError(err).WithField("retry_in", delay.String()).WithField(logging.FieldEvent, logging.EventListenerError).Warn("accept failed")
			select {
			case <-time.After(delay):
			case <-s.stop:
				return
			}
			continue
		}
		delay = 0
		s.accepted.Add(1)
		e := &served{nc: nc, c: s.newConn(nc)}
		if !s.track(e) {
			s.rejected.Add(1)
			s.refuse(e)
			continue
		}
		go s.run(e)
	}
}

// track registers a connection, refusing it past MaxConns or during
// shutdown.
func (s *Server) track(e *served) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() || len(s.conns) >= s.cfg.MaxConns {
		return false
	}
	s.conns[e] = struct{}{}
	s.open.Add(1)
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(e *served) {
	s.mu.Lock()
	delete(s.conns, e)
	s.mu.Unlock()
	s.open.Add(-1)
	s.wg.Done()
}

func (s *Server) refuse(e *served) {
	e.c.Log().WithField("max_conns", s.cfg.MaxConns).WithField(logging.FieldEvent, logging.EventConnLimit).Warn("connection refused: too many connections")
	e.c.Refuse()
	e.nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	e.c.Flush(e.nc)
	e.nc.Close()
}

// run serves one connection until it ends.
func (s *Server) run(e *served) {
	defer s.untrack(e)
	out := s.serve(e)
	if out == HandOff {
		e.nc.SetDeadline(time.Time{}) // the new owner sets its own
		e.c.HandOff(e.nc)
		return
	}
	e.nc.Close()
}

func (s *Server) serve(e *served) Outcome {
	if tc, ok := e.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(s.cfg.SocketBuffer)
		tc.SetWriteBuffer(s.cfg.SocketBuffer)
	}
	log := e.c.Log()
	log.Debug("connection opened")
	for {
		// The deadline is set before closing is checked: a wake-up that
		// comes after the check overrides it, so a read never blocks
		// past the start of a shutdown.
		e.nc.SetReadDeadline(e.c.ReadDeadline(time.Now()))
		if s.closing.Load() {
			e.c.Log().Debug("connection closed: shutting down")
			return Close
		}
		n, err := e.c.ReadOnce(e.nc)
		if n > 0 {
			out := e.c.Process()
			if !s.flush(e) {
				return Close
			}
			if out != Continue {
				return out
			}
		}
		if err != nil {
			s.readFailed(e, err)
			return Close
		}
	}
}

func (s *Server) flush(e *served) bool {
	e.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := e.c.Flush(e.nc); err != nil {
		e.c.Log().WithError(err).Debug("connection write failed")
		return false
	}
	return true
}

// readFailed logs why a connection ends. None of these is the server's
// failure: a client going away or going silent is routine.
func (s *Server) readFailed(e *served, err error) {
	log := e.c.Log()
	switch {
	case s.closing.Load():
		log.Debug("connection closed: shutting down")
	case errors.Is(err, io.EOF):
		log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("connection closed: idle timeout")
	default:
		log.WithError(err).Debug("connection read failed")
	}
}

// Shutdown stops accepting, wakes every connection so it answers what it
// has read and exits, and waits for them until ctx ends; then it closes
// them and waits for their goroutines.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	s.mu.Lock()
	if s.closing.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	close(s.stop)
	s.ln.Close()
	now := time.Now()
	for e := range s.conns {
		e.nc.SetReadDeadline(now)
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
		for e := range s.conns {
			e.nc.Close()
		}
		s.mu.Unlock()
		s.log.WithField("conns", n).WithField(logging.FieldEvent, logging.EventShutdownTimeout).Warn("shutdown timeout: closing connections with requests in flight")
		<-done
		return ctx.Err()
	}
}
