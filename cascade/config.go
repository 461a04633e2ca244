package cascade

import (
	"cmp"
	"errors"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
)

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid cascade config")

// Config configures a Cascade. Zero fields take their defaults.
type Config struct {
	// Domain is this node's domain; Self its node ID; Addr the binary
	// protocol address its peers dial.
	Domain string
	Self   crdt.NodeID
	Addr   string
	// Refresh is how often the cascade looks at its setting, the gossip
	// view and the replicator, and how often (times infoEvery) it asks the
	// parent for its members and path.
	Refresh time.Duration
	// CallTimeout bounds one request to a parent member.
	CallTimeout time.Duration
	// LagWarn is the relay lag past which the relay warns, once per
	// episode.
	LagWarn time.Duration
	// ChildTTL is how long a child domain is listed after its relay was
	// last heard from.
	ChildTTL time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Refresh: time.Second, CallTimeout: 2 * time.Second, LagWarn: 30 * time.Second, ChildTTL: 30 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Refresh = cmp.Or(c.Refresh, d.Refresh)
	c.CallTimeout = cmp.Or(c.CallTimeout, d.CallTimeout)
	c.LagWarn = cmp.Or(c.LagWarn, d.LagWarn)
	c.ChildTTL = cmp.Or(c.ChildTTL, d.ChildTTL)
	return c
}

// Validate reports every invalid field. Zero durations are valid
// (defaults); Domain and Self are required.
func (c Config) Validate() error {
	var l confcheck.List
	if c.Domain == "" {
		l.Add("Domain", c.Domain, "required")
	}
	if c.Self == 0 {
		l.Add("Self", c.Self, "required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Refresh", c.Refresh}, {"CallTimeout", c.CallTimeout}, {"LagWarn", c.LagWarn}, {"ChildTTL", c.ChildTTL}} {
		if d.v < 0 {
			l.Add(d.name, d.v, "must not be negative")
		}
	}
	return l.Err(ErrInvalidConfig)
}
