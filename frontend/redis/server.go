package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/resp"
)

// Config configures the Redis-protocol server. Zero fields take their
// defaults.
type Config struct {
	// MaxConns caps open connections; more get redis' "max number of
	// clients reached".
	MaxConns int
	// Limits on one client: see connloop.Config. Zero means its default.
	MaxConnsPerClient, MaxPipeline, MaxReplyBuffer int
	// IdleTimeout closes a connection on which nothing arrives for this
	// long; it also bounds the write of an answer.
	IdleTimeout time.Duration
	// ClientToken is the password of the user "default"; empty: no
	// password.
	ClientToken string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxConns: 10000, IdleTimeout: 30 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	return c
}

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid redis server config")

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
	if c.IdleTimeout < 0 {
		l.Add("IdleTimeout", c.IdleTimeout, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}

// Info is what INFO and CONFIG GET report of the node beyond this server.
type Info struct {
	NodeID, Domain, Version string
	Started                 time.Time
	Addr                    string // the binary protocol's listener
	NativeClients           int64
	DataDir                 string
	SyncWrites              bool
	Members                 int64 // 0 when the node has no domain
	Successor               string
	EntriesSent             uint64
	EntriesApplied          uint64
	LogEntries              int64
	Applied                 string
	// Cascade says where the domain stands in the tree: its parent and
	// the state of the relay, or that it has none.
	Cascade string
}

// NodeInfo reports on the node.
type NodeInfo interface {
	Info() Info
}

// Deps are the server's collaborators. Registerer, when set, exports the
// command counters.
type Deps struct {
	KV         *kv.Service
	Node       NodeInfo
	Logger     *logging.Logger
	Registerer prometheus.Registerer
}

// protocolOverhead is what a request may carry beyond a key and a value.
const protocolOverhead = 64 << 10

// Server serves the Redis protocol over the data service: one goroutine
// per connection, writes of a pipeline applied as one batch, answers
// written with one system call.
type Server struct {
	cfg     Config
	kv      *kv.Service
	node    NodeInfo
	logger  *logging.Logger
	loop    *connloop.Server
	readCfg resp.Config
	cmds    *commands
	cursors scanCursors
	metrics metrics

	// For INFO.
	lastID    atomic.Int64 // CLIENT ID of the newest connection
	processed atomic.Int64
}

type metrics struct {
	calls  *prometheus.CounterVec
	errors prometheus.Counter
}

// New makes a server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.KV == nil || deps.Node == nil || deps.Logger == nil {
		return nil, errors.New("redis: Deps.KV, Deps.Node and Deps.Logger are required")
	}
	cfg = cfg.withDefaults()
	m := metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upu_resp_commands_total",
			Help: "Redis-protocol commands received, by command (unknown: not a command UPU serves).",
		}, []string{"cmd"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upu_resp_errors_total",
			Help: "Redis-protocol error replies.",
		}),
	}
	s := &Server{
		cfg:     cfg,
		kv:      deps.KV,
		node:    deps.Node,
		logger:  deps.Logger,
		cmds:    newCommands(m.calls),
		cursors: newScanCursors(deps.KV.MaxKeySize()),
		metrics: m,
		// A bulk string over the value limit (plus room for a key) is
		// refused by the reader, which closes the connection: it cannot
		// be skipped without reading it. Smaller oversized values get an
		// error reply and the connection stays.
		readCfg: resp.Config{MaxBulkLen: max(deps.KV.MaxValueSize(), deps.KV.MaxKeySize()) + protocolOverhead},
	}
	log := deps.Logger.Component("resp")
	loop, err := connloop.New(connloop.Config{
		MaxConns: cfg.MaxConns, MaxConnsPerClient: cfg.MaxConnsPerClient, MaxPipeline: cfg.MaxPipeline, MaxReplyBuffer: cfg.MaxReplyBuffer,
		WriteTimeout: cfg.IdleTimeout,
	}, connloop.Deps{
		Log:      log,
		Protocol: "resp",
		NewConn:  func(nc net.Conn) connloop.Conn { return newConn(s, log, nc, s.lastID.Add(1)) },
	})
	if err != nil {
		return nil, err
	}
	s.loop = loop
	if reg := deps.Registerer; reg != nil {
		conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "upu_connections", Help: "Open client connections, by protocol.", ConstLabels: prometheus.Labels{"protocol": "resp"},
		}, func() float64 { return float64(loop.Open()) })
		if err := errors.Join(reg.Register(m.calls), reg.Register(m.errors), reg.Register(conns), reg.Register(loop.Collector())); err != nil {
			return nil, fmt.Errorf("redis: metrics: %w", err)
		}
	}
	return s, nil
}

// Serve answers connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) { s.loop.Serve(ln) }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.loop.Addr() }

// Open is the number of open connections.
func (s *Server) Open() int64 { return s.loop.Open() }

// Shutdown stops accepting, answers what connections have sent, and waits
// for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.loop.Shutdown(ctx) }
