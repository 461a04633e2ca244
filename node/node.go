package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/ctxkey"
	"github.com/upu/upu/frontend/native"
	"github.com/upu/upu/frontend/redis"
	"github.com/upu/upu/httpd"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/store"
)

// Version is the node's software version, reported by status.
const Version = "0.1.0"

// Node is one running upu process.
type Node struct {
	cfg     Config
	clk     clock.Clock
	logger  *logging.Logger
	log     *logrus.Entry
	store   *store.Store
	kv      *kv.Service
	id      crdt.NodeID
	started time.Time
	reg     *prometheus.Registry // every metric of the node, served by http

	srv    *native.Server      // nil until Start
	http   *httpd.Server       // nil unless Config.HTTPAddr is set
	links  native.LinkAcceptor // nil while the node does not replicate
	resp   *redis.Server       // nil unless Config.RespAddr is set
	domain *domain             // nil when Config.Standalone
	// upstream answers kv's reads beyond this node: the cascade.
	upstream upstream

	closeOnce sync.Once
	closeErr  error
}

// New opens the node's store and prepares its listeners; Start begins serving.
func New(cfg Config, clk clock.Clock) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if clk == nil {
		clk = clock.Real()
	}
	id, err := store.LoadNodeID(cfg.DataDir, cfg.InMemory)
	if err != nil {
		return nil, err
	}
	logger, err := logging.New(cfg.Log, id.String(), cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("upu: logging: %w", err)
	}
	n := &Node{cfg: cfg, clk: clk, logger: logger, log: logger.Component("node"), id: id, started: clk.Now()}
	n.store, err = store.Open(cfg.storeConfig(id), clk, logger.Component("store"))
	if err != nil {
		logger.Close()
		return nil, err
	}
	n.reg = prometheus.NewRegistry()
	kcfg := cfg.kvConfig()
	kcfg.NodeID = id
	n.upstream.domain = cfg.Domain
	// The domain's context-token keys, created here when the store holds
	// none, so that a token made on one member is good on the others.
	tokens, err := ctxkey.Open(context.Background(), ctxkey.Config{Domain: cfg.Domain}, n.store)
	if err != nil {
		n.store.Close()
		logger.Close()
		return nil, err
	}
	n.kv, err = kv.New(kcfg, kv.Deps{Store: n.store, Clock: clk, Upstream: &n.upstream, Tokens: tokens, Registerer: n.reg})
	if err != nil {
		n.store.Close()
		logger.Close()
		return nil, err
	}
	registerMetrics(n)
	return n, nil
}

// Start listens on the configured address and serves until Close.
func (n *Node) Start() error {
	ln, err := listen("--addr", n.cfg.Addr)
	if err != nil {
		return err
	}
	// The domain first, so that every listener sees it set up; if a later
	// step fails, Close stops it.
	if err := n.startDomain(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	if err := n.startFrontends(ln); err != nil {
		return err
	}
	n.log.WithFields(n.effectiveConfig()).Info("node started")
	return nil
}

// Addr returns the binary protocol listener's address, once started.
func (n *Node) Addr() net.Addr {
	if n.srv == nil {
		return &net.TCPAddr{}
	}
	return n.srv.Addr()
}

// RespAddr returns the Redis protocol listener's address, or nil when it is
// off.
func (n *Node) RespAddr() net.Addr {
	if n.resp == nil {
		return nil
	}
	return n.resp.Addr()
}

// HTTPAddr returns the metrics and health listener's address, or nil.
func (n *Node) HTTPAddr() net.Addr {
	if n.http == nil {
		return nil
	}
	return n.http.Addr()
}

// ID returns the node's ID.
func (n *Node) ID() crdt.NodeID { return n.id }

// Logger returns the node's logger, for components wired beside it.
func (n *Node) Logger() *logging.Logger { return n.logger }

// Close shuts the node down: it stops accepting connections, answers what
// connections have already sent (for at most the shutdown timeout), closes
// them, and closes the store. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		n.log.Info("node stopping")
		serr := errors.Join(n.stopFrontends(ctx), n.stopDomain(ctx))
		stErr := n.store.Close()
		if stErr != nil {
			n.log.WithError(stErr).WithField(logging.FieldEvent, logging.EventStoreError).Error("store close failed")
		}
		n.log.Info("node stopped")
		n.closeErr = errors.Join(serr, stErr, n.logger.Close())
	})
	return n.closeErr
}

// effectiveConfig is the whole configuration in effect, for the start-up line.
// Tokens are reported as set or not, never printed.
func (n *Node) effectiveConfig() logrus.Fields {
	c := n.cfg
	set := func(s string) bool { return s != "" }
	return logrus.Fields{
		"version":              Version,
		"addr":                 n.Addr().String(),
		"http_addr":            addrString(n.HTTPAddr()),
		"pprof":                c.HTTP.Pprof,
		"resp_addr":            addrString(n.RespAddr()),
		"standalone":           c.Standalone,
		"gossip_addr":          n.gossipAddr(),
		"join":                 n.joinList(),
		"gossip_encrypted":     n.gossipEncrypted(),
		"data_dir":             c.DataDir,
		"in_memory":            c.InMemory,
		"heartbeat_interval":   c.HeartbeatInterval.String(),
		"idle_timeout":         c.IdleTimeout.String(),
		"handshake_timeout":    c.HandshakeTimeout.String(),
		"shutdown_timeout":     c.ShutdownTimeout.String(),
		"max_key_size":         c.Store.MaxKeySize,
		"max_value_size":       c.Store.MaxValueSize,
		"max_conns":            c.MaxConns,
		"max_conns_per_client": c.MaxConnsPerClient,
		"max_pipeline":         c.MaxPipeline,
		"max_reply_buffer":     c.MaxReplyBuffer,
		"sync_writes":          c.Store.SyncWrites,
		"sync_interval":        c.Store.SyncInterval.String(),
		"tombstone_horizon":    c.Store.TombstoneHorizon.String(),
		"cascade_lag_warn":     cmp.Or(c.Cascade.LagWarn, cascade.DefaultConfig().LagWarn).String(),
		"max_log_entries":      c.Store.MaxLogEntries,
		"client_token_set":     set(c.ClientToken),
		"peer_token_set":       set(c.PeerToken),
		"admin_token_set":      set(c.AdminToken),
		"log_level":            n.logger.Level(),
		"log_format":           c.Log.Format,
		"log_dir":              c.Log.Dir,
		"log_quiet":            c.Log.Quiet,
		"log_rotation":         n.logRotation(),
		"config_file":          c.ConfigFile,
		"gossip_key_file":      c.Gossip.KeyringFile,
		"slow_threshold":       n.logger.SlowThreshold().String(),
	}
}

// logRotation sums up the log files' rotation for the start-up line.
func (n *Node) logRotation() string {
	if n.cfg.Log.Dir == "" {
		return ""
	}
	d := logging.DefaultConfig()
	l := n.cfg.Log
	return fmt.Sprintf("%dMB/%s, kept %d days, %d files",
		cmp.Or(l.MaxSizeMB, d.MaxSizeMB), cmp.Or(l.RotateEvery, d.RotateEvery), cmp.Or(l.MaxAgeDays, d.MaxAgeDays), cmp.Or(l.MaxBackups, d.MaxBackups))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
