package cascade

import (
	"cmp"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// States of the status.
const (
	StateRoot        = "root"        // no parent
	StateRelaying    = "relaying"    // this node streams the domain's log up
	StateStandby     = "standby"     // another member relays; this one watches the parent
	StateConnecting  = "connecting"  // no parent member has answered yet
	StateUnreachable = "unreachable" // no parent member answers
	StateCycle       = "cycle"       // the parent's path passes through this domain
)

// relayCount adds up what the replicator pushed to each upstream in turn:
// its counters start over with every new one.
type relayCount struct {
	upstream   crdt.NodeID
	base, last replication.Counters // the upstreams' before this one, and this one's
}

func (r *relayCount) observe(up *replication.PeerStats) {
	if up == nil {
		return
	}
	if up.ID != r.upstream {
		r.base.EntriesSent += r.last.EntriesSent
		r.base.BytesSent += r.last.BytesSent
		r.upstream = up.ID
	}
	r.last = up.Sent
}

// totals returns the entries and bytes pushed to every upstream so far.
func (r *relayCount) totals() (entries, bytes uint64) {
	return r.base.EntriesSent + r.last.EntriesSent, r.base.BytesSent + r.last.BytesSent
}

// lagWatch follows the relay's lag, to warn once per episode.
type lagWatch struct {
	warned bool
	acked  crdt.VersionVector        // the last vector a parent member reported
	since  map[crdt.NodeID]time.Time // when each origin's lag was first seen, for entries no longer readable
}

// publish makes the status of this refresh visible to Status and the
// metrics; rs is nil at a root.
func (c *Cascade) publish(rs *replication.Stats) {
	defer c.announce()
	ctl := c.ctl
	st := &protocol.CascadeStatus{Domain: c.cfg.Domain, Path: ctl.path, Relay: ctl.relay}
	if c.lastErr != "" {
		st.LastError, st.LastErrorMS = c.lastErr, c.lastErrAt.UnixMilli()
	}
	st.State, st.Reason = ctl.state(c.lastErr)
	reads := ctl.readTargets()
	c.reads.Store(&reads)
	if ctl.parent == nil {
		c.status.Store(st)
		return
	}
	st.Parent, st.Seeds = ctl.parent.Domain, ctl.parent.Seeds
	st.Upstream, st.UpstreamAddr = ctl.up.ID, ctl.up.Addr
	for _, m := range ctl.known() {
		st.ParentMembers = append(st.ParentMembers, m.ID+"@"+m.Addr)
	}
	if rs != nil {
		if up := rs.Upstream; up != nil {
			c.relayed.observe(up)
			if up.Heard {
				c.lag.acked = slices.Clone(up.Acked)
			}
		}
		// Against the last vector a parent member reported: while the
		// upstream is silent, or a new one has not answered yet, the lag
		// goes on growing from what the parent was known to have.
		if c.lag.acked != nil {
			c.addLag(st, rs.Applied, c.lag.acked)
		}
	}
	st.EntriesRelayed, st.BytesRelayed = c.relayed.totals()
	c.status.Store(st)
	if ctl.isRelay() {
		c.watchLag(st)
	}
}

// addLag fills the lag towards the parent: per origin, the entries this
// node holds (applied) that the parent has not reported having (acked),
// and the age of the oldest of them.
func (c *Cascade) addLag(st *protocol.CascadeStatus, applied, acked crdt.VersionVector) {
	now := c.clk.Now()
	lag := crdt.Lag(applied, acked)
	if c.lag.since == nil {
		c.lag.since = map[crdt.NodeID]time.Time{}
	}
	for o := range c.lag.since {
		if lag.Get(o) == 0 {
			delete(c.lag.since, o)
		}
	}
	for _, e := range lag {
		first, ok := c.lag.since[e.Node]
		if !ok {
			first = now
			c.lag.since[e.Node] = now
		}
		age := now.Sub(first)
		if at, ok := store.WrittenAfter(c.deps.Store, e.Node, acked.Get(e.Node)); ok {
			age = max(0, now.Sub(at))
		}
		st.Origins = append(st.Origins, protocol.CascadeOriginLag{Origin: e.Node.String(), Entries: e.Counter, Seconds: age.Seconds()})
		st.LagEntries += e.Counter
		st.LagSeconds = max(st.LagSeconds, age.Seconds())
	}
	slices.SortFunc(st.Origins, func(a, b protocol.CascadeOriginLag) int { return cmp.Compare(b.Entries, a.Entries) })
}

// watchLag warns when the relay's lag passes LagWarn, once per episode,
// and says when it is back under.
func (c *Cascade) watchLag(st *protocol.CascadeStatus) {
	over := st.LagSeconds > c.cfg.LagWarn.Seconds()
	if over == c.lag.warned {
		return
	}
	c.lag.warned = over
	entry := c.log.WithFields(logrus.Fields{
		"lag_entries": st.LagEntries, "lag_s": st.LagSeconds, "parent": st.Parent,
		logging.FieldThreshold: logging.Millis(c.cfg.LagWarn), logging.FieldPeer: st.Upstream,
	})
	if over {
		entry.WithField(logging.FieldEvent, logging.EventRelayLag).Warn("cascade relay lagging: the parent domain is behind this one")
	} else {
		entry.Info("cascade relay caught up")
	}
}

// announce wakes those waiting for a status (await).
func (c *Cascade) announce() {
	c.pmu.Lock()
	close(c.published)
	c.published = make(chan struct{})
	c.pmu.Unlock()
}
