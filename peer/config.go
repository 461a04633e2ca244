package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/confcheck"
)

// Config configures a Pool. Zero fields take their defaults, except Self.
type Config struct {
	// Self is this node's ID, stated in the hello of every link it dials.
	Self string
	// Token is the peer token the nodes it dials expect; empty when they
	// require none.
	Token string
	// DialTimeout bounds connecting and the handshake of one link.
	DialTimeout time.Duration
	// KeepAlive is how often yamux pings an idle link and how often the
	// link's liveness is checked.
	KeepAlive time.Duration
	// DeadAfter closes a link on which nothing was received for this long.
	// It must exceed KeepAlive, whose pings keep a healthy link talking.
	DeadAfter time.Duration
	// WriteTimeout bounds one write to the socket (yamux closes a link
	// whose writes stall), one Send waiting for a receiver that does not
	// take its messages, and reading a request once its stream is open.
	WriteTimeout time.Duration
	// RedialMin is how long Calls to a node fail at once after a dial to
	// it failed; each further failure doubles it, up to RedialMax.
	RedialMin time.Duration
	RedialMax time.Duration
	// MaxMessage bounds a request or response body in bytes.
	MaxMessage int
	// MaxStreams bounds the requests one link serves at once; more wait
	// in yamux's backlog, which then holds back the sender.
	MaxStreams int
}

// DefaultConfig returns timeouts for a LAN domain: a link is declared dead
// within about ten seconds of silence, well after gossip's own failure
// detection, so that a link does not flap while gossip still sees the
// node alive.
func DefaultConfig() Config {
	return Config{
		DialTimeout:  2 * time.Second,
		KeepAlive:    2 * time.Second,
		DeadAfter:    10 * time.Second,
		WriteTimeout: 10 * time.Second,
		RedialMin:    100 * time.Millisecond,
		RedialMax:    5 * time.Second,
		MaxMessage:   64 << 20,
		MaxStreams:   256,
	}
}

// maxMessageLimit bounds Config.MaxMessage: a body is held whole in memory.
const maxMessageLimit = 1 << 30

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.DialTimeout = cmp.Or(c.DialTimeout, d.DialTimeout)
	c.KeepAlive = cmp.Or(c.KeepAlive, d.KeepAlive)
	c.DeadAfter = cmp.Or(c.DeadAfter, d.DeadAfter)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.RedialMin = cmp.Or(c.RedialMin, d.RedialMin)
	c.RedialMax = cmp.Or(c.RedialMax, d.RedialMax)
	c.MaxMessage = cmp.Or(c.MaxMessage, d.MaxMessage)
	c.MaxStreams = cmp.Or(c.MaxStreams, d.MaxStreams)
	return c
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("upu: invalid peer config")

// Validate reports every invalid field, each wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	var l confcheck.List
	bad := l.Add
	if c.Self == "" {
		bad("Self", c.Self, "a link states this node's ID")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"DialTimeout", c.DialTimeout}, {"KeepAlive", c.KeepAlive}, {"DeadAfter", c.DeadAfter},
		{"WriteTimeout", c.WriteTimeout}, {"RedialMin", c.RedialMin}, {"RedialMax", c.RedialMax},
	} {
		if d.v < 0 {
			bad(d.field, d.v, "must not be negative")
		}
	}
	if w := c.withDefaults(); w.DeadAfter <= w.KeepAlive && c.DeadAfter >= 0 && c.KeepAlive >= 0 {
		bad("DeadAfter", w.DeadAfter, fmt.Sprintf("must exceed KeepAlive (%v), or every quiet link dies", w.KeepAlive))
	}
	if w := c.withDefaults(); w.RedialMax < w.RedialMin && c.RedialMin >= 0 && c.RedialMax >= 0 {
		bad("RedialMax", w.RedialMax, fmt.Sprintf("must not be under RedialMin (%v)", w.RedialMin))
	}
	if c.MaxMessage < 0 || c.MaxMessage > maxMessageLimit {
		bad("MaxMessage", c.MaxMessage, fmt.Sprintf("must be between 1 and %d", maxMessageLimit))
	}
	if c.MaxStreams < 0 {
		bad("MaxStreams", c.MaxStreams, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}

// Deps are what a Pool uses from outside.
type Deps struct {
	// Clock paces liveness checks and redial backoff; nil: the real clock.
	Clock clock.Clock
	// Log takes the pool's entries; nil: nothing is logged.
	Log *logrus.Entry
	// Dial opens the TCP connection of a link; nil: a net.Dialer's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}
