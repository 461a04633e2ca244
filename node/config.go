package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
)

// Config is everything a node needs to run. The zero value of any field means
// its default; DefaultConfig spells the defaults out.
type Config struct {
	// DataDir holds the Badger store and the node ID.
	DataDir string
	// InMemory keeps the store in memory (tests only): nothing survives Close.
	InMemory bool
	// Addr is the binary protocol listener, host:port; port 0 picks one.
	Addr string
	// Domain names the data center or machine room this node belongs to.
	Domain string
	// HTTPAddr, when set, serves /metrics (Prometheus), /healthz and
	// /debug/pprof.
	HTTPAddr string
	// RespAddr, when set, serves the Redis protocol (RESP2 and RESP3).
	RespAddr string

	// GossipAddr is the gossip listener (UDP and TCP), IP:port; port 0
	// picks one.
	GossipAddr string
	// Join lists gossip addresses (host:port) of members to join at
	// start-up, retried with backoff until one answers. Empty: the node
	// starts a domain of its own, which others may join.
	Join []string
	// GossipKeyFile names a serf keyring file (base64 AES keys); when set,
	// gossip is encrypted and only members holding a key can join.
	GossipKeyFile string
	// Standalone runs the node without gossip and replication, a domain of
	// one that nobody can join (unit tests). `upu serve` always gossips.
	Standalone bool

	// HeartbeatInterval is announced in the handshake: clients send a frame
	// at least this often on an otherwise idle connection.
	HeartbeatInterval time.Duration
	// IdleTimeout is announced in the handshake: a connection on which
	// nothing arrives for this long is closed. It must exceed two heartbeat
	// intervals so that one late heartbeat is not fatal.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for a new connection's Hello.
	HandshakeTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration

	// MaxKeySize and MaxValueSize bound keys and values in bytes.
	MaxKeySize   int
	MaxValueSize int
	// MaxConns caps concurrent client connections; more are refused with an
	// error frame.
	MaxConns int

	// SyncWrites fsyncs every commit (commits are grouped). Off, the store
	// fsyncs every SyncInterval; either way an acknowledged write survives a
	// crash of the process.
	SyncWrites   bool
	SyncInterval time.Duration

	// TombstoneHorizon is how long a deleted or expired key keeps its
	// causal context when the domain cannot tell that every member has seen
	// the delete (a member is down). A member away longer than this resyncs
	// from its peers when it comes back.
	TombstoneHorizon time.Duration
	// MaxLogEntries bounds the replication log kept per origin; a member
	// further behind than this is repaired by a digest sync instead.
	MaxLogEntries int64

	// Tokens separate roles (DESIGN.md section 9). An empty token lets any
	// connection take the role, except that the admin role is never open
	// when AdminToken is set and the peer role never when PeerToken is set.
	ClientToken string
	PeerToken   string
	AdminToken  string

	Log logging.Config
}

// Defaults.
const (
	DefaultAddr              = "127.0.0.1:7700"
	DefaultDataDir           = "./upu-data"
	DefaultDomain            = "default"
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultMaxKeySize        = kv.DefaultMaxKeySize
	DefaultMaxValueSize      = kv.DefaultMaxValueSize
	DefaultMaxConns          = 10000
	DefaultSyncInterval      = time.Second
	DefaultTombstoneHorizon  = 24 * time.Hour
	DefaultMaxLogEntries     = 1_000_000
)

// DefaultConfig returns the configuration `upu serve` runs with when no flag
// is given.
func DefaultConfig() Config {
	return Config{
		DataDir:           DefaultDataDir,
		Addr:              DefaultAddr,
		Domain:            DefaultDomain,
		GossipAddr:        DefaultGossipAddr,
		HeartbeatInterval: DefaultHeartbeatInterval,
		IdleTimeout:       DefaultIdleTimeout,
		HandshakeTimeout:  DefaultHandshakeTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
		MaxKeySize:        DefaultMaxKeySize,
		MaxValueSize:      DefaultMaxValueSize,
		MaxConns:          DefaultMaxConns,
		SyncInterval:      DefaultSyncInterval,
		TombstoneHorizon:  DefaultTombstoneHorizon,
		MaxLogEntries:     DefaultMaxLogEntries,
		Log:               logging.DefaultConfig(),
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.DataDir = cmp.Or(c.DataDir, d.DataDir)
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.Domain = cmp.Or(c.Domain, d.Domain)
	c.GossipAddr = cmp.Or(c.GossipAddr, d.GossipAddr)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, d.HeartbeatInterval)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, d.HandshakeTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.MaxKeySize = cmp.Or(c.MaxKeySize, d.MaxKeySize)
	c.MaxValueSize = cmp.Or(c.MaxValueSize, d.MaxValueSize)
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.SyncInterval = cmp.Or(c.SyncInterval, d.SyncInterval)
	c.TombstoneHorizon = cmp.Or(c.TombstoneHorizon, d.TombstoneHorizon)
	c.MaxLogEntries = cmp.Or(c.MaxLogEntries, d.MaxLogEntries)
	return c
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("upu: invalid config")

// Validate reports every problem in the configuration at once, after
// defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, fmt.Errorf("%w: %s=%v: %s", ErrConfig, field, v, why))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", c.Addr, "want host:port")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("http-addr", c.HTTPAddr, "want host:port")
		}
	}
	if c.RespAddr != "" {
		if _, _, err := net.SplitHostPort(c.RespAddr); err != nil {
			bad("resp-addr", c.RespAddr, "want host:port")
		}
	}
	if c.HeartbeatInterval < 0 {
		bad("heartbeat-interval", c.HeartbeatInterval, "must be positive")
	}
	if c.IdleTimeout < 2*c.HeartbeatInterval {
		bad("idle-timeout", c.IdleTimeout, fmt.Sprintf("must be at least twice the heartbeat interval (%s)", c.HeartbeatInterval))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"handshake-timeout", c.HandshakeTimeout}, {"shutdown-timeout", c.ShutdownTimeout}, {"sync-interval", c.SyncInterval}, {"tombstone-horizon", c.TombstoneHorizon}} {
		if d.v < 0 {
			bad(d.name, d.v, "must be positive")
		}
	}
	if c.MaxKeySize < 0 || c.MaxKeySize > kv.MaxKeySizeLimit {
		bad("max-key-size", c.MaxKeySize, fmt.Sprintf("must be between 1 and %d", kv.MaxKeySizeLimit))
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > kv.MaxValueSizeLimit {
		bad("max-value-size", c.MaxValueSize, fmt.Sprintf("must be between 1 and %d", kv.MaxValueSizeLimit))
	}
	if c.MaxConns < 0 {
		bad("max-conns", c.MaxConns, "must be positive")
	}
	if c.MaxLogEntries < 0 {
		bad("max-log-entries", c.MaxLogEntries, "must be positive")
	}
	if c.Domain == "" || len(c.Domain) > 128 {
		bad("domain", c.Domain, "must be 1 to 128 characters")
	}
	errs = append(errs, c.validateDomain()...)
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: log: %w", ErrConfig, err))
	}
	return errors.Join(errs...)
}
