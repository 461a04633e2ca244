package gossip

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
)

// Config says how a node takes part in its domain's gossip. The zero value
// of each field means its default (DefaultConfig); Domain, NodeID and
// ProtoAddr have none and must be set.
type Config struct {
	// BindAddr is the gossip listener, IP:port, for both UDP and TCP. Port 0
	// picks a free one; LocalMember().GossipAddr tells which. Default
	// 127.0.0.1:7946.
	BindAddr string
	// AdvertiseAddr is the IP peers should reach this node at, when it is
	// not BindAddr's (NAT, or a 0.0.0.0 bind). The port is always the bound
	// one. Empty: memberlist derives it from BindAddr.
	AdvertiseAddr string
	// Domain names the node's domain. Only members of the same domain can
	// join each other. At most 251 bytes (it is part of the memberlist
	// label).
	Domain string
	// NodeID is the node's ID from the store, 16 hex digits. It is the
	// member's serf name, so it must be unique across the fleet.
	NodeID string
	// ProtoAddr is the node's binary protocol address, host:port, which
	// peers dial for replication: the bound port, and not a wildcard host
	// like 0.0.0.0. It is published in the "addr" tag.
	ProtoAddr string
	// Role is published in the "role" tag. Default "node".
	Role string
	// KeyringFile, if set, names a file of base64 AES keys (16, 24 or 32
	// bytes each), one per line or as a JSON list (serf's keyring format).
	// The first key encrypts; all of them decrypt. It turns on gossip
	// encryption, and then only members holding one of the keys can join.
	KeyringFile string
	// Join lists gossip addresses (host:port) of members to join; Join with
	// no addresses uses it. Empty: the node waits to be joined.
	Join []string

	// The knobs below tune failure detection and dissemination. Their
	// defaults are memberlist's LAN preset and serf's defaults; tests lower
	// them so that an in-process domain converges in well under a second.

	// ProbeInterval is how often a member probes a random peer. Lower
	// detects failures sooner at the cost of bandwidth. Default 1s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before asking
	// others to probe indirectly: about the 99th-percentile round trip.
	// It must be less than ProbeInterval. Default 500ms.
	ProbeTimeout time.Duration
	// GossipInterval is how often queued messages (joins, leaves,
	// suspicions) are gossiped. Default 200ms.
	GossipInterval time.Duration
	// SuspicionMult scales how long a suspect member has to refute before
	// it is declared failed: SuspicionMult * log10(N) * ProbeInterval, at
	// least SuspicionMult * ProbeInterval. Default 4.
	SuspicionMult int
	// PushPullInterval is how often a member syncs its full state with a
	// random peer over TCP, which heals what gossip missed. Default 30s.
	PushPullInterval time.Duration
	// StreamTimeout bounds connecting to a peer and each read or write of
	// a join or push/pull; one Join attempt takes up to this per
	// unreachable address. Default 10s.
	StreamTimeout time.Duration
	// LeavePropagateDelay is how long Leave stays up after broadcasting,
	// answering probes while peers learn that it left. Default 1s.
	LeavePropagateDelay time.Duration
	// ReconnectTimeout is how long a failed member is kept (and reconnects
	// to it tried) before it is reaped and forgotten. Default 24h.
	ReconnectTimeout time.Duration
	// ReconnectInterval is how often a reconnect to one failed member is
	// tried. After a partition heals, the two sides find each other again
	// at the latest on the next try, so this bounds how long replication
	// waits to merge them. Default 5s (UPU's; serf's own is 30s, which
	// let a healed partition wait up to half a minute).
	ReconnectInterval time.Duration
	// TombstoneTimeout is how long a member that left is kept as left
	// before it is reaped. Default 24h.
	TombstoneTimeout time.Duration
}

// Defaults that are UPU's own rather than serf's or memberlist's.
const (
	DefaultBindAddr          = "127.0.0.1:7946"
	DefaultRole              = "node"
	DefaultReconnectInterval = 5 * time.Second
)

// labelPrefix starts the memberlist label, so that UPU's pools are also
// kept apart from other memberlist users on the same network.
const labelPrefix = "upu/"

// MaxDomainLen is the longest domain gossip accepts: the memberlist label
// holds at most 255 bytes.
const MaxDomainLen = memberlist.LabelMaxSize - len(labelPrefix)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("upu: invalid gossip config")

// DefaultConfig returns the configuration used for zero fields: UPU's
// addresses and role, and the timings of serf.DefaultConfig with
// memberlist.DefaultLANConfig.
func DefaultConfig() Config {
	s := serf.DefaultConfig()
	m := s.MemberlistConfig
	return Config{
		BindAddr:            DefaultBindAddr,
		Role:                DefaultRole,
		ProbeInterval:       m.ProbeInterval,
		ProbeTimeout:        m.ProbeTimeout,
		GossipInterval:      m.GossipInterval,
		SuspicionMult:       m.SuspicionMult,
		PushPullInterval:    m.PushPullInterval,
		StreamTimeout:       m.TCPTimeout,
		LeavePropagateDelay: s.LeavePropagateDelay,
		ReconnectTimeout:    s.ReconnectTimeout,
		ReconnectInterval:   DefaultReconnectInterval,
		TombstoneTimeout:    s.TombstoneTimeout,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.BindAddr = cmp.Or(c.BindAddr, d.BindAddr)
	c.Role = cmp.Or(c.Role, d.Role)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, d.ProbeInterval)
	c.ProbeTimeout = cmp.Or(c.ProbeTimeout, d.ProbeTimeout)
	c.GossipInterval = cmp.Or(c.GossipInterval, d.GossipInterval)
	c.SuspicionMult = cmp.Or(c.SuspicionMult, d.SuspicionMult)
	c.PushPullInterval = cmp.Or(c.PushPullInterval, d.PushPullInterval)
	c.StreamTimeout = cmp.Or(c.StreamTimeout, d.StreamTimeout)
	c.LeavePropagateDelay = cmp.Or(c.LeavePropagateDelay, d.LeavePropagateDelay)
	c.ReconnectTimeout = cmp.Or(c.ReconnectTimeout, d.ReconnectTimeout)
	c.ReconnectInterval = cmp.Or(c.ReconnectInterval, d.ReconnectInterval)
	c.TombstoneTimeout = cmp.Or(c.TombstoneTimeout, d.TombstoneTimeout)
	return c
}

// Validate reports every problem with c in one error wrapping
// ErrInvalidConfig. Zero fields are valid, except Domain, NodeID and
// ProtoAddr, which are required.
func (c Config) Validate() error {
	c = c.withDefaults()
	var l confcheck.List
	bad := l.Add
	if _, _, err := splitIPPort(c.BindAddr); err != nil {
		bad("BindAddr", c.BindAddr, err.Error())
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr", c.AdvertiseAddr, "want an IP address")
	}
	if c.Domain == "" || len(c.Domain) > MaxDomainLen {
		bad("Domain", c.Domain, fmt.Sprintf("want 1 to %d bytes", MaxDomainLen))
	}
	if _, err := crdt.ParseNodeID(c.NodeID); err != nil {
		bad("NodeID", c.NodeID, "want 16 hex digits")
	}
	if err := checkDialable(c.ProtoAddr); err != nil {
		bad("ProtoAddr", c.ProtoAddr, err.Error())
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
		{"StreamTimeout", c.StreamTimeout},
		{"LeavePropagateDelay", c.LeavePropagateDelay},
		{"ReconnectTimeout", c.ReconnectTimeout},
		{"ReconnectInterval", c.ReconnectInterval},
		{"TombstoneTimeout", c.TombstoneTimeout},
	} {
		if d.v < 0 {
			bad(d.name, d.v, "is negative")
		}
	}
	if c.SuspicionMult < 0 {
		bad("SuspicionMult", c.SuspicionMult, "is negative")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout", c.ProbeTimeout, fmt.Sprintf("must be less than ProbeInterval (%v)", c.ProbeInterval))
	}
	return l.Err(ErrInvalidConfig)
}

// checkDialable accepts a host:port that a peer can dial: a host that is
// not 0.0.0.0 or ::, and a port that is not 0.
func checkDialable(addr string) error {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return errors.New("want host:port")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return errors.New("want an address peers can dial, not a wildcard")
	}
	if port, err := strconv.ParseUint(portText, 10, 16); err != nil || port == 0 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}

// splitIPPort reads an IP:port address, as memberlist binds only to IPs.
func splitIPPort(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("want IP:port")
	}
	if net.ParseIP(host) == nil {
		return "", 0, errors.New("want an IP address, not a host name")
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, errors.New("want a port from 0 to 65535")
	}
	return host, int(port), nil
}
