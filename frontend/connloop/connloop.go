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

	"github.com/prometheus/client_golang/prometheus"
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
	More                    // the budget ran out with requests still buffered: write, then process again before reading
)

// Budget bounds what one Process call handles before its answers are
// written: a pipeline is answered in bounded pieces, and while a piece is
// written nothing more is read, so a deep pipeline is slowed (backpressure)
// rather than buffered.
type Budget struct {
	Requests   int // requests handled
	ReplyBytes int // bytes of answers queued
}

// Full reports whether a Process call that has handled handled requests
// and queued queued bytes of answers must stop and return More.
func (b Budget) Full(handled, queued int) bool {
	return handled >= b.Requests || queued >= b.ReplyBytes
}

// Refusal is why a new connection is refused.
type Refusal uint8

const (
	RefuseMaxConns  Refusal = iota // the server's MaxConns is reached
	RefusePerClient                // the client address's MaxConnsPerClient is reached
)

// Limit names a limit a client hit, the label of upu_client_limit_total.
type Limit string

const (
	LimitConns          Limit = "conns"            // a connection refused: MaxConns
	LimitConnsPerClient Limit = "conns_per_client" // a connection refused: MaxConnsPerClient
	LimitRequestSize    Limit = "request_size"     // a request refused for its size
	LimitPipeline       Limit = "pipeline"         // reading paused until a piece of a pipeline was written
	LimitReplyBuffer    Limit = "reply_buffer"     // a connection closed: its answers were not read within the write timeout
)

var limits = []Limit{LimitConns, LimitConnsPerClient, LimitRequestSize, LimitPipeline, LimitReplyBuffer}

// Conn is one protocol's side of a connection. The loop calls it from the
// connection's goroutine only.
type Conn interface {
	// ReadOnce reads from r into the protocol's buffer with one Read call.
	ReadOnce(r io.Reader) (int, error)
	// Process handles the complete requests buffered and queues their
	// answers, until b is Full (then it returns More).
	Process(b Budget) Outcome
	// Queued is the size of the answers queued and not yet flushed.
	Queued() int
	// Flush writes the queued answers, if any, and forgets them.
	Flush(w io.Writer) error
	// ReadDeadline is when the next bytes must have arrived, given now.
	ReadDeadline(now time.Time) time.Time
	// Refuse queues the answer to a connection over a limit.
	Refuse(why Refusal)
	// HandOff gives the socket to its new owner after Process said so.
	HandOff(nc net.Conn)
	// Log is the connection's logger.
	Log() *logrus.Entry
}

// Config tunes a Server. Zero fields take their defaults.
type Config struct {
	// MaxConns caps open connections; more are refused.
	MaxConns int
	// MaxConnsPerClient caps the open connections of one client IP
	// address, loopback included; more are refused.
	MaxConnsPerClient int
	// MaxPipeline is the most requests of a connection handled before
	// their answers are written; MaxReplyBuffer, the most bytes of answers
	// queued before they are (one answer may pass it). See Budget.
	MaxPipeline    int
	MaxReplyBuffer int
	// WriteTimeout bounds the write of one batch of answers.
	WriteTimeout time.Duration
	// SocketBuffer is the kernel buffer size asked for each direction: a
	// pipeline of small requests then costs one read and one write.
	SocketBuffer int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxConns: 10000, MaxConnsPerClient: 256, MaxPipeline: 1024, MaxReplyBuffer: 32 << 20, WriteTimeout: 30 * time.Second, SocketBuffer: 512 << 10}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.MaxConnsPerClient = cmp.Or(c.MaxConnsPerClient, d.MaxConnsPerClient)
	c.MaxPipeline = cmp.Or(c.MaxPipeline, d.MaxPipeline)
	c.MaxReplyBuffer = cmp.Or(c.MaxReplyBuffer, d.MaxReplyBuffer)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.SocketBuffer = cmp.Or(c.SocketBuffer, d.SocketBuffer)
	return c
}

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid connection loop config")

// Validate reports every invalid field.
func (c Config) Validate() error {
	var l confcheck.List
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxConns", c.MaxConns}, {"MaxConnsPerClient", c.MaxConnsPerClient}, {"MaxPipeline", c.MaxPipeline}, {"MaxReplyBuffer", c.MaxReplyBuffer}} {
		if f.v < 0 {
			l.Add(f.name, f.v, "must not be negative")
		}
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
// the Conn for each accepted socket; Protocol labels its metrics.
type Deps struct {
	Log      *logrus.Entry
	NewConn  func(nc net.Conn) Conn
	Protocol string
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

	mu       sync.Mutex
	conns    map[*served]struct{}
	perAddr  map[string]int // open connections by client IP
	limits   *prometheus.CounterVec
	warns    warnLimiter
	peakSent atomic.Int64 // the most answer bytes one flush has written

	open     atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64
}

// served is one connection the server owns.
type served struct {
	nc   net.Conn
	c    Conn
	addr string // the client's IP, its key in perAddr
}

// New makes a server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil || deps.NewConn == nil {
		return nil, errors.New("connloop: Deps.Log and Deps.NewConn are required")
	}
	s := &Server{
		cfg: cfg.withDefaults(), log: deps.Log, newConn: deps.NewConn, stop: make(chan struct{}),
		conns: make(map[*served]struct{}), perAddr: make(map[string]int),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "upu_client_limit_total",
			Help:        "Times a client hit a limit, by protocol and limit: connections refused, requests refused, reading paused (pipeline), connections closed (reply_buffer).",
			ConstLabels: prometheus.Labels{"protocol": deps.Protocol},
		}, []string{"limit"}),
	}
	for _, l := range limits {
		s.limits.WithLabelValues(string(l))
	}
	return s, nil
}

// Collector exports upu_client_limit_total for the server's protocol.
func (s *Server) Collector() prometheus.Collector { return s.limits }

// Count counts a limit hit; the protocol counts the ones it enforces
// (request sizes).
func (s *Server) Count(l Limit) { s.limits.WithLabelValues(string(l)).Inc() }

// PeakSent is the most bytes of answers one write has carried: with the
// budget, MaxReplyBuffer plus one answer.
func (s *Server) PeakSent() int64 { return s.peakSent.Load() }

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
		e := &served{nc: nc, c: s.newConn(nc), addr: clientAddr(nc.RemoteAddr())}
		if ok, why := s.track(e); !ok {
			s.rejected.Add(1)
			s.refuse(e, why)
			continue
		}
		go s.run(e)
	}
}

// clientAddr is the IP a connection's limit is counted under: every port
// of one host counts as one client.
func clientAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// track registers a connection, refusing it past MaxConns or
// MaxConnsPerClient, or during shutdown.
func (s *Server) track(e *served) (bool, Refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load() || len(s.conns) >= s.cfg.MaxConns:
		return false, RefuseMaxConns
	case s.perAddr[e.addr] >= s.cfg.MaxConnsPerClient:
		return false, RefusePerClient
	}
	s.conns[e] = struct{}{}
	s.perAddr[e.addr]++
	s.open.Add(1)
	s.wg.Add(1)
	return true, 0
}

func (s *Server) untrack(e *served) {
	s.mu.Lock()
	delete(s.conns, e)
	if s.perAddr[e.addr]--; s.perAddr[e.addr] <= 0 {
		delete(s.perAddr, e.addr)
	}
	s.mu.Unlock()
	s.open.Add(-1)
	s.wg.Done()
}

// refuse answers and closes a connection over a limit. Its WARN is
// rate-limited: a client flooding connections must not flood the log.
func (s *Server) refuse(e *served, why Refusal) {
	limit, msg, field, max := LimitConns, "connection refused: too many connections", "max_conns", s.cfg.MaxConns
	if why == RefusePerClient {
		limit, msg, field, max = LimitConnsPerClient, "connection refused: too many connections from this client address", "max_conns_per_client", s.cfg.MaxConnsPerClient
	}
	s.Count(limit)
	if n, ok := s.warns.allow(limit, time.Now()); ok {
		e.c.Log().WithFields(logrus.Fields{field: max, "suppressed": n, logging.FieldEvent: logging.EventConnLimit}).Warn(msg)
	}
	e.c.Refuse(why)
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
			if out := s.process(e); out != Continue {
				return out
			}
		}
		if err != nil {
			s.readFailed(e, err)
			return Close
		}
	}
}

// process answers what a read brought, a budget's worth at a time: each
// piece's answers are written before the next is handled, and nothing more
// is read until all are, so a connection never holds more than
// MaxReplyBuffer (plus one answer) of answers, however deep its pipeline.
func (s *Server) process(e *served) Outcome {
	b := Budget{Requests: s.cfg.MaxPipeline, ReplyBytes: s.cfg.MaxReplyBuffer}
	for {
		out := e.c.Process(b)
		if !s.flush(e) {
			return Close
		}
		if out != More {
			return out
		}
		s.Count(LimitPipeline)
	}
}

func (s *Server) flush(e *served) bool {
	queued := int64(e.c.Queued())
	for peak := s.peakSent.Load(); queued > peak && !s.peakSent.CompareAndSwap(peak, queued); peak = s.peakSent.Load() {
	}
	e.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	err := e.c.Flush(e.nc)
	switch {
	case err == nil:
		return true
	case errors.Is(err, os.ErrDeadlineExceeded) && !s.closing.Load():
		// The client sends but does not read: its answers would pile up.
		s.Count(LimitReplyBuffer)
		if n, ok := s.warns.allow(LimitReplyBuffer, time.Now()); ok {
			e.c.Log().WithFields(logrus.Fields{"queued_bytes": queued, "write_timeout": s.cfg.WriteTimeout.String(), "suppressed": n, logging.FieldEvent: logging.EventSlowClient}).
				Warn("connection closed: the client does not read its answers")
		}
	default:
		e.c.Log().WithError(err).Debug("connection write failed")
	}
	return false
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

// warnInterval is the least time between two WARN lines of one limit.
const warnInterval = time.Second

// warnLimiter lets one WARN line per limit through each warnInterval and
// counts the ones it holds back, for the next line to report.
type warnLimiter struct {
	mu         sync.Mutex
	last       map[Limit]time.Time
	suppressed map[Limit]int
}

// allow reports whether a line for l may be logged now and, if so, how
// many were held back since the last one.
func (w *warnLimiter) allow(l Limit, now time.Time) (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last, w.suppressed = make(map[Limit]time.Time), make(map[Limit]int)
	}
	if t, ok := w.last[l]; ok && now.Sub(t) < warnInterval {
		w.suppressed[l]++
		return 0, false
	}
	n := w.suppressed[l]
	w.last[l], w.suppressed[l] = now, 0
	return n, true
}
