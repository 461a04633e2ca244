package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/frontend/native"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/httpd"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// Config is everything a node needs to run. The zero value of any field means
// its default; DefaultConfig spells the defaults out. Each subsystem's own
// Config is embedded whole (as serf embeds memberlist's), so that every knob
// it has can be set here; the node fills in the fields that it owns, named in
// each field's comment.
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
	// Standalone runs the node without gossip and replication, a domain of
	// one that nobody can join (unit tests). `upu serve` always gossips.
	Standalone bool

	// The front ends' settings below are shared by the binary and the Redis
	// protocol servers (the heartbeat and handshake by the binary one
	// alone); the node passes them to each server's Config.

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
	// MaxConns caps concurrent client connections; more are refused with an
	// error frame.
	MaxConns int
	// MaxConnsPerClient, MaxPipeline and MaxReplyBuffer protect the node
	// from one client, on both protocols (connloop.Config): connections
	// per client IP, requests handled before their answers are written,
	// and bytes of answers a connection may hold.
	MaxConnsPerClient, MaxPipeline, MaxReplyBuffer int
	// ReadyLag is how many log entries the node may lag a member it has
	// heard from and still answer /readyz with 200.
	ReadyLag int64

	// Tokens separate roles (DESIGN.md section 9). An empty token lets any
	// connection take the role, except that the admin role is never open
	// when AdminToken is set and the peer role never when PeerToken is set.
	ClientToken string
	PeerToken   string
	AdminToken  string

	// Store tunes the Badger store: sync policy, key and value limits,
	// tombstone horizon, log length, caches. Its MaxKeySize and MaxValueSize
	// are the limits every front end enforces. The node sets Dir, InMemory
	// and NodeID from DataDir, InMemory and the node's ID.
	Store store.Config
	// Gossip tunes membership: BindAddr is the gossip listener (IP:port;
	// port 0 picks one), Join the members to join at start-up (retried with
	// backoff until one answers; empty starts a domain of its own),
	// KeyringFile a serf keyring that encrypts gossip, and the rest failure
	// detection. The node sets Domain, NodeID and ProtoAddr.
	Gossip gossip.Config
	// Peer tunes the links between nodes: dial and write timeouts,
	// keepalive and the silence after which a link is dead, redial backoff,
	// message and stream bounds. The node sets Self, and Token to PeerToken.
	Peer peer.Config
	// HTTP tunes the metrics and health endpoint served on HTTPAddr.
	HTTP httpd.Config
	// Replication tunes the ring: ticks, batches, queues, digest buckets.
	// The node sets Self, and ResyncAfter to the store's tombstone horizon.
	Replication replication.Config
	// Cascade tunes the domain hierarchy: refresh, timeouts, the lag
	// warning. The node sets Domain, Self and Addr.
	Cascade cascade.Config

	Log logging.Config

	// ConfigFile names the file these settings were read from, if any. The
	// node never reads it; it reports it in the start-up line.
	ConfigFile string
}

// Defaults of the node's own fields; those it passes to a subsystem take
// the subsystem's default, so each is written once.
const (
	DefaultAddr            = "127.0.0.1:7700"
	DefaultDataDir         = "./upu-data"
	DefaultDomain          = "default"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultReadyLag        = 1000
)

// DefaultConfig returns the configuration `upu serve` runs with when no flag
// is given.
func DefaultConfig() Config {
	nd := native.DefaultConfig()
	ld := connloop.DefaultConfig()
	return Config{
		DataDir:           DefaultDataDir,
		Addr:              DefaultAddr,
		Domain:            DefaultDomain,
		HeartbeatInterval: nd.HeartbeatInterval,
		IdleTimeout:       nd.IdleTimeout,
		HandshakeTimeout:  nd.HandshakeTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
		MaxConns:          nd.MaxConns,
		MaxConnsPerClient: ld.MaxConnsPerClient,
		MaxPipeline:       ld.MaxPipeline,
		MaxReplyBuffer:    ld.MaxReplyBuffer,
		ReadyLag:          DefaultReadyLag,
		Store:             store.DefaultConfig(),
		Gossip:            gossip.DefaultConfig(),
		Peer:              peer.DefaultConfig(),
		Replication:       replication.DefaultConfig(),
		Cascade:           cascade.DefaultConfig(),
		HTTP:              httpd.DefaultConfig(),
		Log:               logging.DefaultConfig(),
	}
}

// withDefaults fills zero fields from DefaultConfig: the node's own, and
// those of the subsystems' that the node reads itself. The subsystems fill
// the rest when they start.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.DataDir = cmp.Or(c.DataDir, d.DataDir)
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.Domain = cmp.Or(c.Domain, d.Domain)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, d.HeartbeatInterval)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, d.HandshakeTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.MaxConnsPerClient = cmp.Or(c.MaxConnsPerClient, d.MaxConnsPerClient)
	c.MaxPipeline = cmp.Or(c.MaxPipeline, d.MaxPipeline)
	c.MaxReplyBuffer = cmp.Or(c.MaxReplyBuffer, d.MaxReplyBuffer)
	c.ReadyLag = cmp.Or(c.ReadyLag, d.ReadyLag)
	c.Store.MaxKeySize = cmp.Or(c.Store.MaxKeySize, d.Store.MaxKeySize)
	c.Store.MaxValueSize = cmp.Or(c.Store.MaxValueSize, d.Store.MaxValueSize)
	c.Store.SyncInterval = cmp.Or(c.Store.SyncInterval, d.Store.SyncInterval)
	c.Store.TombstoneHorizon = cmp.Or(c.Store.TombstoneHorizon, d.Store.TombstoneHorizon)
	c.Store.MaxLogEntries = cmp.Or(c.Store.MaxLogEntries, d.Store.MaxLogEntries)
	c.Store.MaxMemory = cmp.Or(c.Store.MaxMemory, d.Store.MaxMemory)
	c.Gossip.BindAddr = cmp.Or(c.Gossip.BindAddr, d.Gossip.BindAddr)
	return c
}

// storeConfig is the store's configuration: Store with the fields the node
// owns filled in.
func (c Config) storeConfig(id crdt.NodeID) store.Config {
	sc := c.Store
	sc.Dir, sc.InMemory = c.DataDir, c.InMemory
	if c.InMemory {
		sc.Dir, sc.NodeID = "", id
	}
	return sc
}

// kvConfig is the data service's configuration: the store's limits, and
// a batch may wait for its commit as long as a connection may idle.
func (c Config) kvConfig() kv.Config {
	return kv.Config{MaxKeySize: c.Store.MaxKeySize, MaxValueSize: c.Store.MaxValueSize, WriteTimeout: c.IdleTimeout}
}

// gossipConfig is gossip's configuration: Gossip with the fields the node
// owns filled in.
func (c Config) gossipConfig(id crdt.NodeID, protoAddr string) gossip.Config {
	gc := c.Gossip
	gc.Domain, gc.NodeID, gc.ProtoAddr = c.Domain, id.String(), protoAddr
	return gc
}

// peerConfig is the peer links' configuration: Peer with the fields the
// node owns filled in.
func (c Config) peerConfig(id crdt.NodeID) peer.Config {
	pc := c.Peer
	pc.Self, pc.Token = id.String(), c.PeerToken
	return pc
}

// replicationConfig is replication's configuration: Replication with the
// fields the node owns filled in.
func (c Config) replicationConfig(id crdt.NodeID) replication.Config {
	rc := c.Replication
	rc.Self, rc.ResyncAfter = id, c.Store.TombstoneHorizon
	return rc
}

// cascadeConfig is the cascade's configuration: Cascade with the fields
// the node owns filled in.
func (c Config) cascadeConfig(id crdt.NodeID, addr string) cascade.Config {
	cc := c.Cascade
	cc.Domain, cc.Self, cc.Addr = c.Domain, id, addr
	return cc
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("upu: invalid config")

// Validate reports every problem in the configuration at once, after
// defaults are applied: one error per problem, each wrapping ErrConfig and
// naming the field by its `upu serve` flag, or by its path in Config
// (store.MemTableSize) for a field that has no flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var l confcheck.List
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		l.Add("addr", c.Addr, "want host:port")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			l.Add("http-addr", c.HTTPAddr, "want host:port")
		}
	}
	if c.RespAddr != "" {
		if _, _, err := net.SplitHostPort(c.RespAddr); err != nil {
			l.Add("resp-addr", c.RespAddr, "want host:port")
		}
	}
	if c.HeartbeatInterval < 0 {
		l.Add("heartbeat-interval", c.HeartbeatInterval, "must be positive")
	}
	if c.IdleTimeout < 2*c.HeartbeatInterval {
		l.Add("idle-timeout", c.IdleTimeout, fmt.Sprintf("must be at least twice the heartbeat interval (%s)", c.HeartbeatInterval))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"handshake-timeout", c.HandshakeTimeout}, {"shutdown-timeout", c.ShutdownTimeout}} {
		if d.v < 0 {
			l.Add(d.name, d.v, "must be positive")
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max-conns", c.MaxConns}, {"max-conns-per-client", c.MaxConnsPerClient}, {"max-pipeline", c.MaxPipeline}, {"max-reply-buffer", c.MaxReplyBuffer}} {
		if f.v < 0 {
			l.Add(f.name, f.v, "must be positive")
		}
	}
	if c.ReadyLag < 0 {
		l.Add("ready-lag", c.ReadyLag, "must be positive")
	}
	if c.Domain == "" || len(c.Domain) > 128 {
		l.Add("domain", c.Domain, "must be 1 to 128 characters")
	}
	c.validateDomain(&l)
	// The subsystems check their own fields; a stand-in ID and address take
	// the place of what the node fills in at start.
	const standInID = crdt.NodeID(1)
	type subsystem struct {
		name string
		err  error
	}
	subs := []subsystem{
		{"store", c.storeConfig(standInID).Validate()},
		{"kv", c.kvConfig().Validate()},
		{"log", c.Log.Validate()},
		{"http", c.HTTP.Validate()},
	}
	if !c.Standalone {
		subs = append(subs,
			subsystem{"gossip", c.gossipConfig(standInID, "127.0.0.1:1").Validate()},
			subsystem{"peer", c.peerConfig(standInID).Validate()},
			subsystem{"replication", c.replicationConfig(standInID).Validate()},
			subsystem{"cascade", c.cascadeConfig(standInID, "127.0.0.1:1").Validate()})
	}
	var errs []error
	for _, sub := range subs {
		fields := confcheck.Fields(sub.err)
		if sub.err != nil && len(fields) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrConfig, sub.name, sub.err))
		}
		for _, fe := range fields {
			// A field the node fills from another is named once, by the
			// one the operator set.
			if name := flagName(sub.name, fe.Field); !l.Has(name) {
				l.Add(name, fe.Value, fe.Reason)
			}
		}
	}
	return errors.Join(append([]error{l.Err(ErrConfig)}, errs...)...)
}

// flagName names a subsystem's field the way an operator sets it: by its
// `upu serve` flag, or else by its path in Config.
func flagName(sub, field string) string {
	switch sub + "." + field {
	case "store.Dir":
		return "data-dir"
	case "store.SyncInterval":
		return "sync-interval"
	case "store.MaxKeySize", "kv.MaxKeySize":
		return "max-key-size"
	case "store.MaxValueSize", "kv.MaxValueSize":
		return "max-value-size"
	case "kv.WriteTimeout":
		return "idle-timeout"
	case "store.TombstoneHorizon", "replication.ResyncAfter":
		return "tombstone-horizon"
	case "store.MaxLogEntries":
		return "max-log-entries"
	case "store.MaxMemory":
		return "max-memory"
	case "cascade.LagWarn":
		return "cascade-lag-warn"
	case "cascade.Domain":
		return "domain"
	case "gossip.BindAddr":
		return "gossip-addr"
	case "gossip.Join":
		return "join"
	case "gossip.KeyringFile":
		return "gossip-key-file"
	case "gossip.Domain":
		return "domain"
	case "log.Level":
		return "log-level"
	case "log.Format":
		return "log-format"
	case "log.Dir":
		return "log-dir"
	case "log.SlowThreshold":
		return "slow-threshold"
	case "log.Quiet":
		return "quiet"
	case "log.MaxSizeMB":
		return "log-max-size-mb"
	case "log.RotateEvery":
		return "log-rotate-every"
	case "log.MaxAgeDays":
		return "log-max-age-days"
	case "log.MaxBackups":
		return "log-max-backups"
	}
	return sub + "." + field
}
