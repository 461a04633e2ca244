package cascade

import (
	"fmt"
	"slices"
)

// controller is the cascade's decisions as a pure state machine, in the
// manner of replication's Machine: what the node knows comes in (the
// parent setting, the domain's live members, the parent's answers, the
// upstream falling silent), and what it should do goes out (the upstream
// to give the replicator and whether to relay, whom to ask for the
// parent's members). It does no I/O and reads no clock; Cascade drives it
// with the network and a ticker, the simulation with its own.
type controller struct {
	domain, self string

	parent  *Parent
	members []memberInfo // the parent's, as it last said; none until then
	up      memberInfo   // the upstream; zero: none chosen
	relay   string       // the domain's relay
	path    []string     // this domain's path to the root, this domain first
	cycle   bool         // the path passes through this domain again
	infoOK  bool         // the last info request was answered
	ticks   int
}

func newController(domain, self string) *controller {
	return &controller{domain: domain, self: self, path: []string{domain}}
}

// setParent takes the parent setting read now; on a change it starts
// over, forgetting the old parent's members and path, and reports true.
func (c *controller) setParent(p *Parent) bool {
	if p.equal(c.parent) {
		return false
	}
	*c = controller{domain: c.domain, self: c.self, parent: p, relay: c.relay, path: []string{c.domain}, ticks: c.ticks}
	return true
}

// setLive takes the IDs of the domain's live members, this node among
// them, and chooses the relay.
func (c *controller) setLive(ids []string) { c.relay = chooseRelay(c.domain, ids) }

// isRelay reports whether this node relays the domain's log.
func (c *controller) isRelay() bool { return c.relay == c.self }

// tick advances the controller by one refresh and reports whether to ask
// the parent for its members and path now: when nothing is known of them,
// after a failure, and every infoEvery refreshes.
func (c *controller) tick() bool {
	c.ticks++
	return c.parent != nil && (c.up.ID == "" || !c.infoOK || c.ticks%infoEvery == 0)
}

// unresponsive says the upstream stopped answering (the replicator's
// probes ran out): the next parent member in this node's order takes its
// place. It returns the one given up on.
func (c *controller) unresponsive() memberInfo {
	prev := c.up
	order := preference(c.self, c.known())
	i := slices.IndexFunc(order, func(m memberInfo) bool { return m.ID == prev.ID })
	if len(order) > 1 {
		c.up = order[(i+1)%len(order)]
	}
	// With no other member known the upstream stays: it is the only one
	// to wait for, and the replicator keeps its vector, whose lag the
	// status shows.
	c.infoOK = false
	return prev
}

// known returns the parent's members with an ID.
func (c *controller) known() []memberInfo {
	return slices.DeleteFunc(slices.Clone(c.members), func(m memberInfo) bool { return m.ID == "" })
}

// infoTargets are the nodes to ask for the parent's members, in order: the
// upstream, the other members known in this node's order, then the seeds
// (by address).
func (c *controller) infoTargets() []memberInfo {
	if c.parent == nil {
		return nil
	}
	var out []memberInfo
	if c.up.ID != "" {
		out = append(out, c.up)
	}
	for _, m := range preference(c.self, c.known()) {
		if m.ID != c.up.ID {
			out = append(out, m)
		}
	}
	for _, s := range c.parent.Seeds {
		out = append(out, memberInfo{Addr: s})
	}
	return out
}

// infoResult is what taking an answer changed, for the logs.
type infoResult struct {
	cycleChanged bool
	newUpstream  bool
}

// takeInfo adopts a parent member's answer: its domain's members become
// the ones to fail over across, its path this domain's path. An answer of
// another domain is refused.
func (c *controller) takeInfo(from memberInfo, resp *infoResponse) (infoResult, error) {
	var res infoResult
	if c.parent == nil {
		return res, ErrNoParent
	}
	if resp.Domain != c.parent.Domain {
		return res, fmt.Errorf("%w: %s is a member of %s, not of %s", ErrBadParent, from.Addr, resp.Domain, c.parent.Domain)
	}
	c.infoOK = true
	path := append([]string{c.domain}, resp.Path...)
	if len(path) > maxHops {
		path = path[:maxHops]
	}
	cycle := slices.Contains(resp.Path, c.domain)
	res.cycleChanged = cycle != c.cycle
	c.path, c.cycle = path, cycle
	if len(resp.Members) > 0 {
		c.members = slices.Clone(resp.Members)
	}
	if c.up.ID == "" || !slices.ContainsFunc(c.members, func(m memberInfo) bool { return m.ID == c.up.ID }) {
		if order := preference(c.self, c.known()); len(order) > 0 {
			c.up, res.newUpstream = order[0], true
		}
	}
	return res, nil
}

// infoFailed says no parent member answered the info request.
func (c *controller) infoFailed() { c.infoOK = false }

// upstream is what the replicator should have: the parent member to
// report to (zero: none), and whether to push it the log: only the relay,
// and not while the tree is a cycle.
func (c *controller) upstream() (memberInfo, bool) {
	return c.up, c.isRelay() && !c.cycle
}

// state names the controller's state for the status, with the reason when
// it does not relay although it should; lastErr is the last failure.
func (c *controller) state(lastErr string) (state, reason string) {
	switch {
	case c.parent == nil:
		return StateRoot, ""
	case c.cycle:
		return StateCycle, "the parent's path to the root passes through this domain"
	case c.up.ID == "" && lastErr == "":
		return StateConnecting, ""
	case c.up.ID == "" || !c.infoOK:
		return StateUnreachable, lastErr
	case c.isRelay():
		return StateRelaying, ""
	}
	return StateStandby, ""
}
