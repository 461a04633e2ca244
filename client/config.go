package client

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/upu/upu/protocol"
)

// Config says which nodes a Client uses and how patiently. A zero field
// takes its default (see DefaultConfig).
type Config struct {
	// Nodes are the HOST:PORT addresses of the nodes, in order of
	// preference. Default 127.0.0.1:7700.
	Nodes []string
	// DialTimeout bounds connecting to a node, handshake included.
	// Default 1s.
	DialTimeout time.Duration
	// RequestTimeout bounds a call, waits for a connection and failovers
	// included, unless the call's context ends sooner. Default 2s.
	RequestTimeout time.Duration
	// ConnsPerNode is how many connections are kept to each node; calls are
	// pipelined on each and spread over them. Default 2.
	ConnsPerNode int
	// MinBackoff and MaxBackoff bound the wait before a node that failed is
	// dialled again: the ceiling doubles with each failure from MinBackoff up
	// to MaxBackoff, the wait is drawn uniformly between MinBackoff and the
	// ceiling, and a working connection resets it. Defaults 50ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Role is the role asked for in the handshake; Token is its secret.
	Role  protocol.Role
	Token string
	// Name identifies the client in the node's logs. Default "upu-go".
	Name string
	// MaxInFlight bounds the calls awaiting a reply on one connection;
	// further callers wait for one to finish. Default 4096.
	MaxInFlight int
}

// DefaultConfig returns the configuration a zero Config stands for.
func DefaultConfig() Config {
	return Config{
		Nodes:          []string{"127.0.0.1:7700"},
		DialTimeout:    time.Second,
		RequestTimeout: 2 * time.Second,
		ConnsPerNode:   2,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
		Role:           protocol.RoleClient,
		Name:           "upu-go",
		MaxInFlight:    4096,
	}
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = d.Nodes
	}
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, d.DialTimeout)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, d.RequestTimeout)
	cfg.ConnsPerNode = cmp.Or(cfg.ConnsPerNode, d.ConnsPerNode)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, d.MinBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, d.MaxBackoff)
	cfg.Name = cmp.Or(cfg.Name, d.Name)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, d.MaxInFlight)
	return cfg
}

// Validate reports every invalid field in one error. Zero fields are valid:
// they take their defaults.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("upu: client config %s=%v: %s", field, value, why))
	}
	seen := make(map[string]bool, len(cfg.Nodes))
	for _, addr := range cfg.Nodes {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("nodes", addr, "not HOST:PORT")
		}
		if seen[addr] {
			bad("nodes", addr, "listed twice")
		}
		seen[addr] = true
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"dial-timeout", cfg.DialTimeout},
		{"request-timeout", cfg.RequestTimeout},
		{"min-backoff", cfg.MinBackoff},
		{"max-backoff", cfg.MaxBackoff},
	} {
		if d.value < 0 {
			bad(d.name, d.value, "must not be negative")
		}
	}
	if cfg.ConnsPerNode < 0 {
		bad("conns-per-node", cfg.ConnsPerNode, "must not be negative")
	}
	if cfg.MaxInFlight < 0 {
		bad("max-in-flight", cfg.MaxInFlight, "must not be negative")
	}
	if cfg.Role > protocol.RoleAdmin {
		bad("role", cfg.Role, "unknown role")
	}
	if eff := cfg.withDefaults(); cfg.MinBackoff >= 0 && cfg.MaxBackoff >= 0 && eff.MinBackoff > eff.MaxBackoff {
		bad("min-backoff", eff.MinBackoff, fmt.Sprintf("must not exceed max-backoff (%s)", eff.MaxBackoff))
	}
	return errors.Join(errs...)
}
