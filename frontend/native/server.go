package native

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
)

// Config configures the binary-protocol server. Zero fields take their
// defaults.
type Config struct {
	// NodeID and Domain are announced in the handshake and in status.
	NodeID crdt.NodeID
	Domain string
	// HeartbeatInterval is announced in the handshake: clients send a frame
	// at least this often on an otherwise idle connection.
	HeartbeatInterval time.Duration
	// IdleTimeout is announced in the handshake: a connection on which
	// nothing arrives for this long is closed. It also bounds the write
	// of an answer.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for a new connection's Hello.
	HandshakeTimeout time.Duration
	// MaxConns caps open connections; more are refused with an error frame.
	MaxConns int
	// Limits on one client: see connloop.Config. Zero means its default.
	MaxConnsPerClient, MaxPipeline, MaxReplyBuffer int
	// Tokens separate roles. With none set every role is open (a
	// development node); otherwise a role whose token is unset falls back
	// to a stronger rule (see authorize).
	ClientToken, PeerToken, AdminToken string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{HeartbeatInterval: 5 * time.Second, IdleTimeout: 30 * time.Second, HandshakeTimeout: 10 * time.Second, MaxConns: 10000}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, d.HeartbeatInterval)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, d.HandshakeTimeout)
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	return c
}

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid native server config")

// Validate reports every invalid field, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var l confcheck.List
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HeartbeatInterval", c.HeartbeatInterval}, {"IdleTimeout", c.IdleTimeout}, {"HandshakeTimeout", c.HandshakeTimeout}} {
		if d.v < 0 {
			l.Add(d.name, d.v, "must not be negative")
		}
	}
	if c.IdleTimeout < 2*c.HeartbeatInterval {
		l.Add("IdleTimeout", c.IdleTimeout, fmt.Sprintf("must be at least twice HeartbeatInterval (%s)", c.HeartbeatInterval))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxConns", c.MaxConns}, {"MaxConnsPerClient", c.MaxConnsPerClient}, {"MaxPipeline", c.MaxPipeline}, {"MaxReplyBuffer", c.MaxReplyBuffer}} {
		if f.v < 0 {
			l.Add(f.name, f.v, "must not be negative")
		}
	}
	return l.Err(ErrInvalidConfig)
}

// authorize checks a token against the role asked for. With no token
// configured at all, every role is open (a development node). Otherwise a
// role whose own token is unset falls back to a stronger rule: the admin
// role needs the client token, and the peer role is closed, so that holding
// the client token never lets a connection inject replication traffic.
func (c Config) authorize(role protocol.Role, token string) bool {
	open := c.ClientToken == "" && c.PeerToken == "" && c.AdminToken == ""
	var want string
	switch role {
	case protocol.RoleClient:
		want = c.ClientToken
	case protocol.RolePeer:
		if c.PeerToken == "" && !open {
			return false
		}
		want = c.PeerToken
	case protocol.RoleAdmin:
		want = c.AdminToken
		if want == "" {
			want = c.ClientToken
		}
	default:
		return false
	}
	return want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// Admin answers the administrative requests from the node's state.
type Admin interface {
	// Status fills what the node knows beyond this server: the store's
	// figures, the version, the domain's membership and replication.
	Status(ctx context.Context, st *protocol.StatusResponse) error
	// Digest is the store's digest and key count.
	Digest(ctx context.Context) (string, int, error)
	// Members is the domain as gossip sees it.
	Members() []protocol.Member
	// Backup writes a backup of the node's store to w (store.Backup's
	// format), calling begin with its description before the first byte;
	// an error from begin ends it.
	Backup(ctx context.Context, w io.Writer, begin func(protocol.BackupResponse) error) error
}

// Cascade is the node's place in the domain hierarchy, for the cascade
// requests.
type Cascade interface {
	// Status is the node's view of the hierarchy: parent, relay, lag,
	// children.
	Status(ctx context.Context) (protocol.CascadeStatus, error)
	// SetParent makes domain, reached first through seeds (binary protocol
	// addresses of some of its members), the parent of this node's domain.
	SetParent(ctx context.Context, domain string, seeds []string) error
	// ClearParent makes this node's domain a root.
	ClearParent(ctx context.Context) error
}

// LinkAcceptor takes over a connection whose authorized peer asked for
// OpPeerLink; remote is the peer's node ID. The socket is its own from
// then on, deadlines cleared.
type LinkAcceptor interface {
	AcceptLink(ctx context.Context, conn net.Conn, buffered []byte, remote string)
}

// Deps are the server's collaborators. Links may be nil: the node then
// does not replicate, and refuses peer links. Cascade may be nil: the node
// then answers the cascade requests unavailable.
type Deps struct {
	KV         *kv.Service
	Admin      Admin
	Logger     *logging.Logger
	Links      LinkAcceptor
	Cascade    Cascade
	Registerer prometheus.Registerer
}

// protocolOverhead is what a body may carry beyond a key and a value: the
// causal context, the TTL, the request ID.
const protocolOverhead = 64 << 10

// Server serves the binary protocol over the data service.
type Server struct {
	cfg     Config
	kv      *kv.Service
	admin   Admin
	logger  *logging.Logger
	links   LinkAcceptor
	cascade Cascade
	loop    *connloop.Server
	maxBody uint32
	metrics metrics

	stopping     chan struct{} // closed when Shutdown begins: backups stop
	stoppingOnce sync.Once
}

type metrics struct {
	batch    prometheus.Histogram
	badFrame prometheus.Counter
}

// New makes a server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.KV == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("native: Deps.KV, Deps.Admin and Deps.Logger are required")
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg: cfg, kv: deps.KV, admin: deps.Admin, logger: deps.Logger, links: deps.Links, cascade: deps.Cascade,
		stopping: make(chan struct{}),
		maxBody:  uint32(deps.KV.MaxKeySize() + deps.KV.MaxValueSize() + protocolOverhead),
		metrics: metrics{
			batch: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "upu_batch_seconds",
				Help:    "Time from reading a batch of pipelined requests to having all their answers.",
				Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
			}),
			badFrame: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "upu_bad_frames_total",
				Help: "Connections closed for a framing error.",
			}),
		},
	}
	log := deps.Logger.Component("server")
	loop, err := connloop.New(connloop.Config{
		MaxConns: cfg.MaxConns, MaxConnsPerClient: cfg.MaxConnsPerClient, MaxPipeline: cfg.MaxPipeline, MaxReplyBuffer: cfg.MaxReplyBuffer,
		WriteTimeout: cfg.IdleTimeout,
	}, connloop.Deps{
		Log:      log,
		Protocol: "native",
		NewConn:  func(nc net.Conn) connloop.Conn { return newConn(s, log, nc) },
	})
	if err != nil {
		return nil, err
	}
	s.loop = loop
	if reg := deps.Registerer; reg != nil {
		conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "upu_connections", Help: "Open client connections, by protocol.", ConstLabels: prometheus.Labels{"protocol": "native"},
		}, func() float64 { return float64(loop.Open()) })
		if err := errors.Join(reg.Register(s.metrics.batch), reg.Register(s.metrics.badFrame), reg.Register(conns), reg.Register(loop.Collector())); err != nil {
			return nil, fmt.Errorf("native: metrics: %w", err)
		}
	}
	return s, nil
}

// Serve answers connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) { s.loop.Serve(ln) }

// Addr is the listener's address; the zero TCP address before Serve.
func (s *Server) Addr() net.Addr { return s.loop.Addr() }

// Open is the number of open connections.
func (s *Server) Open() int64 { return s.loop.Open() }

// Closing reports whether Shutdown has begun.
func (s *Server) Closing() bool { return s.loop.Closing() }

// Shutdown stops accepting, ends the backups being sent, answers what
// connections have sent, and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stoppingOnce.Do(func() { close(s.stopping) })
	return s.loop.Shutdown(ctx)
}
