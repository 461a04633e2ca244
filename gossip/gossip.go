package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
)

// ErrClosed is returned by Join and Leave after Close, and by Join after
// Leave: serf does not rejoin a pool it left.
var ErrClosed = errors.New("upu: gossip closed")

// Join retries back off from joinBackoffMin, doubling up to joinBackoffMax.
const (
	joinBackoffMin = 250 * time.Millisecond
	joinBackoffMax = 10 * time.Second
)

// Gossip is this node's membership in its domain's serf pool. It is safe
// for concurrent use.
type Gossip struct {
	cfg  Config // with defaults
	serf *serf.Serf
	log  *logrus.Entry
	clk  clock.Clock

	events   chan serf.Event
	stop     chan struct{} // closed by Close once serf is down: ends run
	loopDone chan struct{} // closed by run
	subs     subscribers

	mu      sync.Mutex
	closed  bool
	closing chan struct{}  // closed by Close: ends Join's retries
	leaves  sync.WaitGroup // calls to serf.Leave, which must end before serf.Shutdown

	closeOnce sync.Once
	closeErr  error
}

// New starts this node's gossip: it binds Config.BindAddr and runs a serf
// pool holding only this member, whose events it logs through logger. Serf's
// and memberlist's own logs go through logger.StdLogger("gossip"). New does
// not join anyone: call Join. Close it when done.
func New(cfg Config, logger *logging.Logger) (*Gossip, error) {
	return newGossip(cfg, logger, clock.Real())
}

func newGossip(cfg Config, logger *logging.Logger, clk clock.Clock) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Gossip{
		cfg:      cfg,
		log:      logger.Component("gossip"),
		clk:      clk,
		events:   make(chan serf.Event, eventBuffer),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		closing:  make(chan struct{}),
	}
	sc, err := serfConfig(cfg, logger)
	if err != nil {
		return nil, err
	}
	sc.EventCh = g.events
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start: %w", err)
	}
	g.serf = s
	go g.run()

	g.log.WithFields(logrus.Fields{
		logging.FieldRemote: g.LocalMember().GossipAddr,
		"encrypted":         s.EncryptionEnabled(),
	}).Info("gossip started")
	return g, nil
}

// serfConfig translates cfg (with defaults) into serf's configuration.
func serfConfig(cfg Config, logger *logging.Logger) (*serf.Config, error) {
	host, port, _ := splitIPPort(cfg.BindAddr) // validated
	std := logger.StdLogger("gossip")

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeID
	sc.Tags = map[string]string{
		TagID:     cfg.NodeID,
		TagDomain: cfg.Domain,
		TagAddr:   cfg.ProtoAddr,
		TagRole:   cfg.Role,
	}
	sc.Logger = log.New(memberEventsAtDebug{std.Writer()}, "", 0)
	sc.LogOutput = nil
	sc.Merge = domainFilter{domain: cfg.Domain}
	sc.LeavePropagateDelay = cfg.LeavePropagateDelay
	sc.ReconnectTimeout = cfg.ReconnectTimeout
	sc.ReconnectInterval = cfg.ReconnectInterval
	sc.TombstoneTimeout = cfg.TombstoneTimeout
	sc.DisableCoordinates = true // UPU does not use network coordinates

	mc := sc.MemberlistConfig
	mc.Logger = std
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = port // memberlist sets it to the chosen one when port is 0
	mc.Label = labelPrefix + cfg.Domain
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.GossipInterval = cfg.GossipInterval
	mc.SuspicionMult = cfg.SuspicionMult
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = cfg.StreamTimeout
	// A node keeps its ID across restarts but may come back at another
	// address; without this, peers refuse it until the old entry is reaped.
	mc.DeadNodeReclaimTime = mc.GossipToTheDeadTime
	if cfg.KeyringFile != "" {
		ring, err := loadKeyring(cfg.KeyringFile)
		if err != nil {
			return nil, err
		}
		mc.Keyring = ring
	}
	return sc, nil
}

// memberEventsAtDebug lowers to debug serf lines that UPU says better
// itself: the event loop logs each member event at info with UPU's fields,
// and the node decides whether a shutdown leaves the domain first (a node
// alone in its domain does not, and that is no warning).
type memberEventsAtDebug struct{ w io.Writer }

var lowered = [...]struct{ from, to []byte }{
	{[]byte("[INFO] serf: EventMember"), []byte("[DEBUG] serf: EventMember")},
	{[]byte("[WARN] serf: Shutdown without a Leave"), []byte("[DEBUG] serf: Shutdown without a Leave")},
}

func (d memberEventsAtDebug) Write(p []byte) (int, error) {
	for _, l := range lowered {
		if rest, ok := bytes.CutPrefix(p, l.from); ok {
			if _, err := d.w.Write(append(append([]byte(nil), l.to...), rest...)); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return d.w.Write(p)
}

// Join joins the domain through any of addrs (gossip host:port), or
// Config.Join when addrs is empty, and returns how many it reached. Until
// one answers, it retries with backoff, logging each failure, until ctx
// ends (the error then wraps ctx's and the last attempt's) or Close. An
// attempt under way is not interrupted: it takes up to
// Config.StreamTimeout per unreachable address. With no address at all it
// returns 0 and nil: the node waits to be joined.
func (g *Gossip) Join(ctx context.Context, addrs []string) (int, error) {
	if len(addrs) == 0 {
		addrs = g.cfg.Join
	}
	if len(addrs) == 0 {
		return 0, nil
	}
	entry := g.log.WithField(logging.FieldRemote, strings.Join(addrs, ","))
	backoff := joinBackoffMin
	for attempt := 1; ; attempt++ {
		if err := g.joinable(ctx); err != nil {
			return 0, err
		}
		n, err := g.serf.Join(addrs, true) // true: UPU has no user events to replay
		if n > 0 {
			entry.WithField("reached", n).Info("joined domain")
			if err != nil { // serf could not queue its join broadcast
				return n, fmt.Errorf("gossip: join: %w", err)
			}
			return n, nil
		}
		err = joinError(err)
		entry.WithError(err).WithFields(logrus.Fields{
			"attempt":     attempt,
			"retry_in_ms": logging.Millis(backoff),
		}).WithField(logging.FieldEvent, logging.EventPeerUnreachable).Warn("join failed; retrying")

		timer := g.clk.NewTimer(backoff)
		select {
		case <-timer.C():
		case <-ctx.Done():
			timer.Stop()
			return 0, fmt.Errorf("gossip: join: %w: %w", ctx.Err(), err)
		case <-g.closing:
			timer.Stop()
			return 0, ErrClosed
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// joinError turns serf's multi-line join error into one line, and says what
// a bare EOF usually means: the peer hung up on a foreign label or key.
func joinError(err error) error {
	if err == nil {
		return errors.New("no address resolved")
	}
	errs := []error{err}
	if multi, ok := err.(interface{ WrappedErrors() []error }); ok {
		errs = multi.WrappedErrors()
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
		if strings.HasSuffix(msgs[i], ": EOF") {
			msgs[i] += " (the peer hung up: another domain, or another keyring?)"
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// joinable reports why Join must stop now, if it must.
func (g *Gossip) joinable(ctx context.Context) error {
	if g.isClosed() || g.serf.State() != serf.SerfAlive {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gossip: join: %w", err)
	}
	return nil
}

func (g *Gossip) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Leave leaves the domain gracefully: it broadcasts the leave, waits for it
// to go out and stays up Config.LeavePropagateDelay more, so that peers see
// this member as left rather than failed. If ctx ends first, Leave returns
// its error while the leave goes on; Close waits for it. Call Close after.
func (g *Gossip) Leave(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.leaves.Add(1)
	g.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		defer g.leaves.Done()
		done <- g.serf.Leave()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("gossip: leave: %w", err)
		}
		g.log.Info("left domain")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gossip: leave: %w", ctx.Err())
	}
}

// Close shuts gossip down: it ends Join's retries, waits for a Leave under
// way, stops serf and memberlist, waits for the event loop and closes every
// Subscribe channel. Without a Leave first, peers see a crash and mark this
// member failed. Close is idempotent.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		close(g.closing)
		g.mu.Unlock()

		g.leaves.Wait() // memberlist panics on a leave after shutdown
		if err := g.serf.Shutdown(); err != nil {
			g.closeErr = fmt.Errorf("gossip: shutdown: %w", err)
		}
		close(g.stop)
		<-g.loopDone
		g.subs.close()
		g.log.Info("gossip stopped")
	})
	return g.closeErr
}

// Members returns every member this node knows, itself included, in any
// state, sorted by ID.
func (g *Gossip) Members() []Member {
	sm := g.serf.Members()
	members := make([]Member, len(sm))
	for i, m := range sm {
		members[i] = toMember(m, g.cfg.NodeID)
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return members
}

// Ring returns the alive members in ring order (see BuildRing).
func (g *Gossip) Ring() []Member { return BuildRing(g.Members()) }

// LocalMember returns this node as a member; GossipAddr holds the port
// actually bound.
func (g *Gossip) LocalMember() Member { return toMember(g.serf.LocalMember(), g.cfg.NodeID) }

// NumMembers returns the number of alive members, this node included: the
// size of the ring.
func (g *Gossip) NumMembers() int {
	n := 0
	for _, m := range g.serf.Members() {
		if m.Status == serf.StatusAlive {
			n++
		}
	}
	return n
}

// Subscribe returns a channel that is signalled whenever a member joins,
// leaves, fails, changes its tags or is reaped; the consumer then reads
// Members or Ring. It holds one signal, which stands for every change since
// the last read, and starts with one, for the current view. Close closes
// it, and so does cancel, which the consumer calls when it stops listening.
func (g *Gossip) Subscribe() (<-chan struct{}, func()) { return g.subs.add() }

// Stats counts members by state, for `upu status` and metrics.
type Stats struct {
	Alive   int `json:"alive"`
	Leaving int `json:"leaving"`
	Left    int `json:"left"`
	Failed  int `json:"failed"`
	// Encrypted is whether gossip is encrypted (Config.KeyringFile).
	Encrypted bool `json:"encrypted"`
	// HealthScore is memberlist's awareness score: 0 when this node keeps
	// up with probing; higher when it is slow to answer, for instance
	// overloaded, and should be believed less about others' failures.
	HealthScore int `json:"health_score"`
}

// Stats returns the current member counts and health.
func (g *Gossip) Stats() Stats {
	st := Stats{
		Encrypted:   g.serf.EncryptionEnabled(),
		HealthScore: g.serf.Memberlist().GetHealthScore(),
	}
	for _, m := range g.serf.Members() {
		switch stateOf(m.Status) {
		case StateAlive:
			st.Alive++
		case StateLeaving:
			st.Leaving++
		case StateLeft:
			st.Left++
		case StateFailed:
			st.Failed++
		}
	}
	return st
}
