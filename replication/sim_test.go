package replication

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/replication/simkit"
	"github.com/upu/upu/store"
)

// The deterministic simulation. Each schedule builds a domain of Machines
// over simkit.Stores, joined by a simkit.Net, and drives it tick by tick
// from one seed: client writes on random nodes, a nemesis that partitions, cuts one
// way, loses, duplicates and delays messages, crashes and restarts nodes
// (the store survives, the Machine and its writes not yet made do not),
// trims logs (forcing digest syncs), makes store writes fail and holds
// some back for later ticks, as a slow commit would, and takes a node away for longer than
// the tombstone horizon while others delete; membership views that follow
// reachability with a lag, like gossip, the members out of view counting
// as down. What the Replicator does around its Machine the simulation does
// too: it gives the store the stable vector when it changes (so tombstones
// are collected), and follows contact to make a node resync. Then
// everything heals and the checkers run on the quiet domain.

var (
	flagSchedules = flag.Int("sim.schedules", 0, "schedules per TestSim test (0: each test's default)")
	flagSeed      = flag.Uint64("sim.seed", 0, "run only the schedule with this seed (replay)")
	flagTrace     = flag.Bool("sim.trace", false, "log every event of the schedules run")
)

const (
	simStartMS  = 1_700_000_000_000
	simTickMS   = 10   // wall time per tick
	maxSkewMS   = 20   // how far a node's wall clock may be off
	settleTicks = 4000 // the most a heal may take to converge
	traceLines  = 120  // events kept for a failure report
)

type nemesis int

const (
	nemPartition nemesis = iota
	nemOneWay
	nemIsolate
	nemHeal
	nemCrash
	nemRestart
	nemLossy
	nemTrim
	nemStoreFail
	nemSettle
	nemAbsence
	nemSyncWith
	numNemeses
)

var nemesisNames = [numNemeses]string{"partition", "one-way-cut", "isolate", "heal", "crash", "restart", "lossy", "trim", "store-fail", "settle", "absence", "sync-with"}

// scenario says what one TestSim test throws at the domain.
type scenario struct {
	schedules          int // default count
	minNodes, maxNodes int
	faultTicks         int     // length of the faulty phase
	opRate             float64 // chance per tick and up node of a write
	faultRate          float64 // chance per tick of a nemesis action
	nemeses            []nemesis
	maxDelay           int // ticks a message may take
	viewDelay          int // ticks a membership view may lag
	// horizonTicks, when set, is the stores' tombstone horizon and the
	// nodes' ResyncAfter, in ticks.
	horizonTicks int
}

type simNode struct {
	idx     int
	id      crdt.NodeID
	addr    string
	cfg     Config
	st      *simkit.Store
	m       *Machine // nil while down
	writes  []Write  // the machine's store writes not yet made, in order
	skew    int64
	view    []crdt.NodeID // sorted; the members this node's gossip sees
	viewDue uint64        // when the view next catches up; 0: not pending
	// heard holds the nodes a message has come from since this node
	// started: a link they opened, over which an answer with no address
	// (an off-ring reply) goes back.
	heard map[crdt.NodeID]bool

	// What the Replicator keeps around the Machine.
	contact   contact
	stable    crdt.VersionVector
	stableSet bool
	resyncing bool
}

// model is what clients were told: every acknowledged write.
type model struct {
	deltas  map[string][]simDelta   // every acknowledged delta, per key
	last    map[string]lastWrite    // single-writer keys: the last write
	incrs   map[string][]simIncr    // counter keys: every acknowledged increment
	folds   map[string][]simFold    // counter keys: increments that went on from their node's totals
	lost    map[string][]lostGroup  // counter keys: writes dropped at the horizon before every member had them
	ctrDels map[string]bool         // counter keys deleted at least once
	dead    map[string]bool         // shared keys deleted once every replica had seen their last write
	tokens  map[string]crdt.Context // shared keys: a context some client read
	ops     int
}

// simDelta is an acknowledged write: its log entry's dot and delta.
type simDelta struct {
	dot crdt.Dot
	rec crdt.Record
}

// simIncr is one acknowledged increment of a counter key: gone once a write
// that had seen it superseded it (a delete, or an increment that found no
// counter and so started afresh); goneBy holds those writes' dots. The
// counter must end as exactly the sum of those not gone.
type simIncr struct {
	dot    crdt.Dot
	delta  int64
	goneBy []crdt.Dot
}

// simFold is an increment that went on from its node's count entries (the
// counter was found), carrying their totals: its dot, the context its node
// had of the key, and the node's count entries it folded.
type simFold struct {
	dot     crdt.Dot
	ctx     crdt.Context
	entries []crdt.Dot
}

// lostWrite is an acknowledged write on a counter key (deltas[i]) whose
// record a replica dropped past the tombstone horizon while the members in
// missed had not applied it: the resets it carried may be gone for good.
type lostWrite struct {
	i      int
	missed []crdt.NodeID
}

// lostGroup is the writes one such drop covered: they go together, or
// survive together on a replica that still holds them.
type lostGroup []lostWrite

// flatten returns the writes of groups, each once, missed by the members
// any group says.
func flatten(groups []lostGroup) []lostWrite {
	var out []lostWrite
	for _, g := range groups {
		for _, l := range g {
			k := slices.IndexFunc(out, func(o lostWrite) bool { return o.i == l.i })
			if k < 0 {
				out = append(out, lostWrite{i: l.i, missed: slices.Clone(l.missed)})
				continue
			}
			for _, id := range l.missed {
				if !slices.Contains(out[k].missed, id) {
					out[k].missed = append(out[k].missed, id)
				}
			}
		}
	}
	return out
}

// observe marks gone the increments of key that ctx covers, as the write by
// on a node whose context of key was ctx, superseding the counter, does. A
// node's count entry holds its running totals, so having seen one of its
// increments is having seen every earlier one.
func (m *model) observe(key string, ctx crdt.Context, by crdt.Dot) {
	incrs := m.incrs[key]
	for _, seen := range incrs {
		if !ctx.Covers(seen.dot) {
			continue
		}
		for i := range incrs {
			if c := &incrs[i]; c.dot.Node == seen.dot.Node && c.dot.Counter <= seen.dot.Counter && !slices.Contains(c.goneBy, by) {
				c.goneBy = append(c.goneBy, by)
			}
		}
	}
}

// counter returns the exact sum key must read, and whether any increment
// survives, when the resets of the writes in lost are gone (see
// lostWrite). That is the horizon's trade-off (README, Known limitations)
// as a counter meets it: a write W dropped at the horizon before member X
// had it leaves no trace of what W observed of X's counts but its resets,
// and those went with it. An increment X makes before it learns the key's
// state goes on from X's totals, which hold the increments W observed,
// above only the reset X knew: those increments come back with it, as a
// register write concurrent with a delete whose tombstone the horizon
// collected comes back. W's observation of X's increments is void for the
// ones such an increment (concurrent with W) folded, and only for them: an
// entry of X that W covered and no increment of X carried on is dropped
// when X syncs, so what it counted stays deleted.
func (m *model) counter(key string, lost []lostWrite) (sum int64, any bool) {
	for _, c := range m.incrs[key] {
		if !slices.ContainsFunc(c.goneBy, func(by crdt.Dot) bool { return !m.voided(key, lost, by, c.dot) }) {
			sum, any = sum+c.delta, true
		}
	}
	return sum, any
}

// voided reports whether write by, in lost, saw increment inc only in
// counts that an increment of inc's node, concurrent with by and made
// while that node had not applied it, carried on.
func (m *model) voided(key string, lost []lostWrite, by, inc crdt.Dot) bool {
	deltas := m.deltas[key]
	k := slices.IndexFunc(lost, func(l lostWrite) bool { return deltas[l.i].dot == by })
	if k < 0 || !slices.Contains(lost[k].missed, inc.Node) {
		return false
	}
	wctx := deltas[lost[k].i].rec.Context
	for _, f := range m.folds[key] {
		if f.dot.Node != inc.Node || f.ctx.Covers(by) || wctx.Covers(f.dot) {
			continue
		}
		for _, e := range f.entries {
			if wctx.Covers(e) && inc.Counter <= e.Counter {
				return true
			}
		}
	}
	return false
}

// withoutResets returns the merge of key's acknowledged deltas, the resets
// of the writes in lost left out: what other writes carried of them stays.
// A member that missed them goes on from the resets it knew, for its own
// counts and, should another node's record have gone with them, for that
// node's too, since its deltas carry them back.
func (m *model) withoutResets(key string, lost []lostWrite) crdt.Record {
	var r crdt.Record
	for i, d := range m.deltas[key] {
		rec := d.rec
		if slices.ContainsFunc(lost, func(l lostWrite) bool { return l.i == i }) {
			rec.Resets = nil
		}
		r = crdt.Merge(r, rec)
	}
	return r
}

type lastWrite struct {
	deleted bool
	value   string
	expiry  int64
}

type sim struct {
	sc     scenario
	seed   uint64
	rng    *rand.Rand
	net    *simkit.Net
	nodes  []*simNode
	byID   map[crdt.NodeID]*simNode
	tick   uint64
	wallMS int64
	model  model
	faults [numNemeses]int
	trace  []string
	tb     testing.TB
	err    error

	known  map[crdt.NodeID]bool // every member any view has held: gossip's
	absent *absence
}

// absence is a node taken away for longer than the tombstone horizon.
type absence struct {
	node    *simNode
	until   uint64
	crashed bool
}

type simTotals struct {
	schedules, ops, ticks, messages, dropped, duped int
	retransmits, goBacks                            uint64
	syncs, buckets, syncRecords, dropsMerged        uint64
	restarted, refused, fenced                      uint64
	resyncs, resyncsServed                          uint64
	collected, pastHorizon                          int
	faults                                          [numNemeses]int
}

func (t *simTotals) add(s *sim) {
	t.schedules++
	t.ops += s.model.ops
	t.ticks += int(s.tick)
	t.dropped += s.net.Dropped
	t.duped += s.net.Duped
	for i, f := range s.faults {
		t.faults[i] += f
	}
	for _, n := range s.nodes {
		t.collected += n.st.Collected
		t.pastHorizon += n.st.PastHorizon
		if n.m != nil {
			st := n.m.Stats()
			t.messages += int(st.MessagesSent)
			t.retransmits += st.Retransmits
			t.goBacks += st.GoBacks
			t.syncs += st.SyncsDone
			t.buckets += st.BucketsDiffering
			t.syncRecords += st.SyncRecordsSent
			t.dropsMerged += st.RecordsDropped
			t.restarted += st.SyncsRestarted
			t.refused += st.DigestRequestsRefused + st.SyncChunksRefused
			t.fenced += st.EntriesFenced
			t.resyncs += st.ResyncsDone
			t.resyncsServed += st.ResyncsServed
		}
	}
}

func (t *simTotals) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "schedules=%d ops=%d ticks=%d messages=%d lost=%d duplicated=%d retransmits=%d go-backs=%d", t.schedules, t.ops, t.ticks, t.messages, t.dropped, t.duped, t.retransmits, t.goBacks)
	fmt.Fprintf(&sb, " syncs=%d buckets-differing=%d records-sent=%d zero-records=%d syncs-restarted=%d refused=%d entries-fenced=%d resyncs=%d/%d-served gc-stable=%d gc-horizon=%d faults:",
		t.syncs, t.buckets, t.syncRecords, t.dropsMerged, t.restarted, t.refused, t.fenced, t.resyncs, t.resyncsServed, t.collected, t.pastHorizon)
	for i, f := range t.faults {
		if f > 0 {
			fmt.Fprintf(&sb, " %s=%d", nemesisNames[i], f)
		}
	}
	return sb.String()
}

// runSim runs a scenario's schedules, or the one -sim.seed names, and
// returns their totals, and whether they are the scenario's default set
// (so that a test may require them to have covered what it is for).
func runSim(t *testing.T, sc scenario) (simTotals, bool) {
	t.Parallel()
	seeds, full := simkit.Schedules(t.Name(), sc.schedules, *flagSchedules, *flagSeed, testing.Short() || raceEnabled)
	var tot simTotals
	for _, seed := range seeds {
		s := newSim(t, sc, seed)
		if err := s.run(); err != nil {
			t.Fatalf("schedule seed=%d failed: %v\n%s\nreplay: go test ./replication -run '^%s$' -sim.seed=%d -sim.trace -v",
				seed, err, s.report(), t.Name(), seed)
		}
		tot.add(s)
	}
	t.Logf("%s", &tot)
	return tot, full
}

// covered fails t when the totals show that a path the test is for was not
// taken.
func covered(t *testing.T, tot simTotals, full bool, what map[string]uint64) {
	t.Helper()
	if !full {
		return
	}
	for name, n := range what {
		if n == 0 {
			t.Errorf("no %s in %d schedules", name, tot.schedules)
		}
	}
}

func newSim(tb testing.TB, sc scenario, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0xda3e39cb94b95bdb))
	s := &sim{
		sc:     sc,
		seed:   seed,
		rng:    rng,
		net:    simkit.NewNet(rng),
		byID:   map[crdt.NodeID]*simNode{},
		known:  map[crdt.NodeID]bool{},
		wallMS: simStartMS,
		tb:     tb,
		model: model{
			deltas:  map[string][]simDelta{},
			last:    map[string]lastWrite{},
			incrs:   map[string][]simIncr{},
			folds:   map[string][]simFold{},
			lost:    map[string][]lostGroup{},
			ctrDels: map[string]bool{},
			dead:    map[string]bool{},
			tokens:  map[string]crdt.Context{},
		},
	}
	s.net.MaxDelay = max(1, sc.maxDelay)
	n := sc.minNodes + rng.IntN(sc.maxNodes-sc.minNodes+1)
	retransmit := 2*s.net.MaxDelay + 1 + rng.IntN(10)
	probe := 3 + rng.IntN(20)
	batch := 1 + rng.IntN(24)
	batchBytes := []int{0, 200, 1500}[rng.IntN(3)]
	inflight := 1 + rng.IntN(4)
	bits := []int{0, 2, 6}[rng.IntN(3)]
	var horizon time.Duration
	if sc.horizonTicks > 0 {
		horizon = time.Duration(sc.horizonTicks*simTickMS) * time.Millisecond
	}
	for i := range n {
		var id crdt.NodeID
		for id == 0 || s.byID[id] != nil {
			id = crdt.NodeID(rng.Uint64())
		}
		node := &simNode{idx: i, id: id, addr: "sim-" + id.String(), skew: int64(rng.IntN(2*maxSkewMS+1)) - maxSkewMS}
		node.cfg = Config{
			Self:            id,
			RetransmitTicks: retransmit,
			ProbeTicks:      probe,
			MaxBatchEntries: batch,
			MaxBatchBytes:   batchBytes,
			MaxInflight:     inflight,
			DigestBits:      bits,
			ResyncAfter:     horizon,
			Seed:            rng.Uint64() | 1,
		}
		node.st = simkit.NewStore(id, func() int64 { return s.wallMS + node.skew })
		node.st.HorizonMS = horizon.Milliseconds()
		node.st.DroppedPastHorizon = s.droppedPastHorizon
		s.nodes = append(s.nodes, node)
		s.byID[id] = node
	}
	// Where nodes restart, one may join late, its store empty: it must be
	// brought up to date.
	late := -1
	if n > 1 && slices.Contains(sc.nemeses, nemRestart) && rng.IntN(3) == 0 {
		late = rng.IntN(n)
	}
	var formed []crdt.NodeID // a domain that formed before the run began
	for _, node := range s.nodes {
		if node.idx != late {
			formed = append(formed, node.id)
		}
	}
	slices.Sort(formed)
	for _, node := range s.nodes {
		if node.idx == late {
			continue
		}
		s.start(node)
		s.setView(node, formed)
	}
	s.logf("seed=%d nodes=%d late=%d retransmit=%d probe=%d batch=%d/%dB inflight=%d delay=%d bits=%d", seed, n, late, retransmit, probe, batch, batchBytes, inflight, s.net.MaxDelay, bits)
	return s
}

func (s *sim) allIDs() []crdt.NodeID {
	ids := make([]crdt.NodeID, 0, len(s.nodes))
	for _, n := range s.nodes {
		ids = append(ids, n.id)
	}
	slices.Sort(ids)
	return ids
}

func (s *sim) logf(format string, args ...any) {
	line := fmt.Sprintf("t=%d ", s.tick) + fmt.Sprintf(format, args...)
	if *flagTrace {
		s.tb.Logf("%s", line)
	}
	if len(s.trace) == traceLines {
		s.trace = s.trace[1:]
	}
	s.trace = append(s.trace, line)
}

func (s *sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("t=%d: %s", s.tick, fmt.Sprintf(format, args...))
	}
}

func (s *sim) report() string {
	var sb strings.Builder
	sb.WriteString("last events:\n")
	for _, l := range s.trace {
		sb.WriteString("  " + l + "\n")
	}
	for _, n := range s.nodes {
		fmt.Fprintf(&sb, "node %d %s up=%v view=%v\n  %s\n", n.idx, n.id, n.m != nil, n.view, n.st)
		if n.m != nil {
			st := n.m.Stats()
			for _, p := range st.Peers {
				fmt.Fprintf(&sb, "  peer %s succ=%v heard=%v acked=%s inflight=%d sync=%v unresponsive=%v\n",
					p.ID, p.Successor, p.Heard, p.Acked, p.Inflight, p.Snapshot, p.Unresponsive)
			}
		}
	}
	return sb.String()
}

// ring orders a view as gossip does, with each member's address.
func (s *sim) ring(view []crdt.NodeID) []Peer {
	members := make([]gossip.Member, 0, len(view))
	for _, id := range view {
		members = append(members, gossip.Member{ID: id.String(), State: gossip.StateAlive})
	}
	var ring []Peer
	for _, m := range gossip.BuildRing(members) {
		id, err := crdt.ParseNodeID(m.ID)
		if err != nil {
			s.fail("ring: %v", err)
			continue
		}
		ring = append(ring, Peer{ID: id, Addr: s.byID[id].addr})
	}
	return ring
}

// targetView is what gossip would converge to for n: the up members it can
// talk to both ways, and itself.
func (s *sim) targetView(n *simNode) []crdt.NodeID {
	view := []crdt.NodeID{n.id}
	for _, o := range s.nodes {
		if o != n && o.m != nil && s.net.Open(n.id, o.id) && s.net.Open(o.id, n.id) {
			view = append(view, o.id)
		}
	}
	slices.Sort(view)
	return view
}

func (s *sim) start(n *simNode) {
	m, err := NewMachine(n.cfg, n.st)
	if err != nil {
		s.fail("new machine: %v", err)
		return
	}
	n.m, n.writes, n.heard = m, nil, nil // a restart has no links yet
	s.setView(n, []crdt.NodeID{n.id})
	// Gossip knows a node that joins at once, down until views catch up:
	// a node no member heard of could write concurrently with deletes
	// whose tombstones the stable vector, not counting it, collected.
	for _, o := range s.nodes {
		if o != n && o.m != nil {
			s.setView(o, o.view)
		}
	}
	n.viewDue = s.tick + 1 + uint64(s.rng.IntN(max(1, s.sc.viewDelay)))
	s.net.SentSince[n.id] = 0
	// As Replicator.New does.
	n.contact = contact{after: n.cfg.withDefaults().ResyncAfter}
	n.stableSet, n.resyncing = false, false
	if n.contact.start(n.st.LastContact(), n.now()) {
		n.m.Resync()
		s.logf("node %d resyncs: last contact %s", n.idx, n.st.LastContact().Format("15:04:05.000"))
	}
}

func (n *simNode) now() time.Time { return time.UnixMilli(n.st.Wall()) }

// setView gives n's machine the members its gossip sees, and the members
// known but not seen as down.
func (s *sim) setView(n *simNode, view []crdt.NodeID) {
	n.view = view
	for _, id := range view {
		s.known[id] = true
	}
	var down []crdt.NodeID
	for id := range s.known {
		if !slices.Contains(view, id) {
			down = append(down, id)
		}
	}
	n.m.SetMembers(s.ring(view))
	n.m.SetDown(down)
}

// answered is what the Replicator does when an ack reaches n: note the
// contact, and resync after too long a silence.
func (s *sim) answered(n *simNode) {
	if n.contact.answered(n.now()) && !n.m.Resyncing() {
		n.m.Resync()
		s.logf("node %d resyncs: answered again after a silence past the horizon", n.idx)
	}
}

// publish is what the Replicator does after each tick: give the store the
// stable vector when it changed, and persist the last contact when no
// resync is under way (at once when one just ended).
func (s *sim) publish(n *simNode) {
	if v := n.m.CollectVector(); !n.stableSet || (v == nil) != (n.stable == nil) || !v.Equal(n.stable) {
		n.st.SetStable(v)
		n.stable, n.stableSet = v, true
	}
	resyncing := n.m.Resyncing()
	ended := n.resyncing && !resyncing
	if ended {
		n.contact.answered(n.now())
		s.logf("node %d resync done", n.idx)
	}
	n.resyncing = resyncing
	if now := n.now(); !resyncing && n.contact.due(now, ended) {
		n.st.SetLastContact(context.Background(), n.contact.last)
		n.contact.markSaved(now)
	}
}

func (s *sim) run() error {
	for range s.sc.faultTicks {
		if s.rng.Float64() < s.sc.faultRate && len(s.sc.nemeses) > 0 {
			s.nemesis(s.sc.nemeses[s.rng.IntN(len(s.sc.nemeses))])
		}
		s.step(true)
		if s.err != nil {
			return s.err
		}
	}
	s.healAll()
	if !s.settle() {
		return s.err
	}
	s.check()
	return s.err
}

// step runs one tick: deliveries, writes, ticks, sends, view changes.
func (s *sim) step(writes bool) {
	s.tick++
	s.wallMS += simTickMS
	if a := s.absent; a != nil && s.tick >= a.until {
		s.endAbsence()
	}
	ctx := context.Background()
	for {
		p, ok := s.net.Due(s.tick)
		if !ok {
			break
		}
		to := s.byID[p.To]
		if to.m == nil || !s.net.Open(p.From, p.To) {
			continue
		}
		msg, err := UnmarshalMessage(p.Data)
		if err != nil {
			s.fail("decode a message from %s: %v", p.From, err)
			return
		}
		if to.heard == nil {
			to.heard = make(map[crdt.NodeID]bool)
		}
		to.heard[p.From] = true
		if err := to.m.Step(ctx, p.From, msg); err != nil {
			s.fail("node %d step %s from %s: %v", to.idx, msg.Type, p.From, err)
			return
		}
		if msg.Type == MsgAck {
			s.answered(to)
		}
		if s.rng.IntN(2) == 0 {
			s.flush(to)
		}
	}
	for _, n := range s.nodes {
		if n.m == nil {
			continue
		}
		if writes && s.rng.Float64() < s.sc.opRate && (s.absent == nil || s.absent.node != n) {
			s.write(n) // an absent node is away from clients too
		}
		if s.rng.IntN(50) == 0 {
			n.st.Purge(n.st.Wall())
		}
		n.m.Tick()
		s.publish(n)
		s.flush(n)
		if n.viewDue == 0 && !slices.Equal(n.view, s.targetView(n)) {
			n.viewDue = s.tick + 1 + uint64(s.rng.IntN(max(1, s.sc.viewDelay)))
		}
		if n.viewDue != 0 && s.tick >= n.viewDue {
			n.viewDue = 0
			s.setView(n, s.targetView(n))
			s.logf("node %d view %v", n.idx, n.view)
		}
	}
}

// flush does what the Replicator does with what n's machine has ready: it
// sends the messages and makes the store writes, in order, reporting each
// (a store failure is the machine's to handle). Now and then it makes only
// some, as a slow commit would: the rest wait for a later flush.
func (s *sim) flush(n *simNode) {
	s.send(n, n.m.Ready())
	if len(n.writes) == 0 {
		return
	}
	k := len(n.writes)
	if s.rng.IntN(4) == 0 {
		k = s.rng.IntN(k + 1)
	}
	for i := range n.writes[:k] {
		w := &n.writes[i]
		err := w.Apply(context.Background(), n.st)
		if err != nil && !errors.Is(err, simkit.ErrInjected) {
			s.fail("node %d write %s from %s: %v", n.idx, w.Type(), w.From, err)
			return
		}
		n.m.Persisted(w, err)
	}
	n.writes = slices.Delete(n.writes, 0, k)
	s.send(n, n.m.Ready()) // the acks of what was written
}

// send takes rd's writes and sends its messages.
func (s *sim) send(n *simNode, rd Ready) {
	n.writes = append(n.writes, rd.Writes...)
	for _, env := range rd.Messages {
		to := s.byID[env.To.ID]
		switch {
		case to != nil && env.To.Addr == "" && n.heard[env.To.ID] && (env.Msg.Type == MsgAck || env.Msg.Type == MsgDigest):
			// An answer off the ring, back over the link its question came on.
		case to == nil || env.To.Addr != to.addr:
			s.fail("node %d addressed %s at %q", n.idx, env.To.ID, env.To.Addr)
			return
		case !slices.Contains(n.view, env.To.ID):
			s.fail("node %d sent to %s, not a member it knows", n.idx, env.To.ID)
			return
		}
		s.net.Send(s.tick, n.id, env.To.ID, AppendMessage(nil, &env.Msg))
	}
}

// write makes one client write on n and records it in the model.
func (s *sim) write(n *simNode) {
	now := n.st.Wall()
	w := store.Write{ReqID: fmt.Sprintf("r%d", s.model.ops)}
	value := fmt.Sprintf("v%d.%d", n.idx, s.model.ops)
	ttl := func() int64 {
		if s.rng.IntN(4) == 0 {
			return now + 20 + int64(s.rng.IntN(3000))
		}
		return 0
	}
	var (
		key     string
		old     crdt.Record // a counter key's record before the write
		counted bool        // whether it held a counter
	)
	switch r := s.rng.Float64(); {
	case r < 0.35: // single writer: the last acknowledged write must win
		key = fmt.Sprintf("w/%d/%d", n.idx, s.rng.IntN(4))
		switch s.rng.IntN(6) {
		case 0:
			w.Op = store.OpDel
		case 1:
			ctx := n.st.Recs[key].Context
			w.Op, w.Value, w.Expiry, w.Context = store.OpSet, []byte(value), ttl(), &ctx
		default:
			w.Op, w.Value, w.Expiry = store.OpSet, []byte(value), ttl()
		}
	case r < 0.65: // shared: concurrent writers, contexts fresh or stale
		key = fmt.Sprintf("s/%d", s.rng.IntN(3))
		if s.model.dead[key] {
			return
		}
		w.Op, w.Value, w.Expiry = store.OpSet, []byte(value), ttl()
		if s.rng.IntN(5) == 0 {
			w.Op, w.Value, w.Expiry = store.OpDel, nil, 0
		}
		switch s.rng.IntN(3) {
		case 1:
			ctx := n.st.Recs[key].Context
			w.Context = &ctx
		case 2:
			if tok, ok := s.model.tokens[key]; ok {
				w.Context = &tok
			}
		}
	default: // counters: increments, and deletes racing them; the exact sum of what no delete saw
		key = fmt.Sprintf("c/%d", s.rng.IntN(3))
		w.Op, w.Delta = store.OpIncr, int64(s.rng.IntN(16))-5
		if s.rng.IntN(10) == 0 {
			w.Op, w.Delta = store.OpDel, 0
		}
		old = n.st.Recs[key]
		counted = old.Read(now).Found
	}
	w.Key = []byte(key)
	res, e := n.st.Write(w)
	if res.Err != nil {
		s.fail("node %d write %s: %v", n.idx, key, res.Err)
		return
	}
	n.m.LocalWrite()
	s.model.ops++
	dot := crdt.Dot{Node: e.Origin, Counter: e.Seq}
	s.model.deltas[key] = append(s.model.deltas[key], simDelta{dot: dot, rec: deltaOf(e)})
	switch key[0] {
	case 'w':
		s.model.last[key] = lastWrite{deleted: w.Op == store.OpDel, value: value, expiry: w.Expiry}
	case 's':
		// A client read of this key somewhere: its context may come back
		// later, stale, with a write on another node.
		if o := s.nodes[s.rng.IntN(len(s.nodes))]; s.rng.IntN(2) == 0 {
			s.model.tokens[key] = o.st.Recs[key].Context
		}
	case 'c':
		if w.Op == store.OpDel || !counted {
			s.model.observe(key, old.Context, dot)
		}
		if w.Op == store.OpDel {
			s.model.ctrDels[key] = true
			break
		}
		s.model.incrs[key] = append(s.model.incrs[key], simIncr{dot: dot, delta: w.Delta})
		if counted {
			f := simFold{dot: dot, ctx: old.Context}
			for _, o := range old.Entries {
				if o.Dot.Node == n.id && o.Kind == crdt.KindCount {
					f.entries = append(f.entries, o.Dot)
				}
			}
			s.model.folds[key] = append(s.model.folds[key], f)
		}
	}
}

func (s *sim) nemesis(k nemesis) {
	s.faults[k]++
	ids := s.allIDs()
	pick := func() *simNode { return s.nodes[s.rng.IntN(len(s.nodes))] }
	switch k {
	case nemPartition:
		groups := make([][]crdt.NodeID, 2+s.rng.IntN(2))
		for _, id := range ids {
			g := s.rng.IntN(len(groups))
			groups[g] = append(groups[g], id)
		}
		s.net.Heal()
		s.net.Partition(groups)
		s.logf("partition %v", groups)
	case nemOneWay:
		a, b := pick(), pick()
		if a != b {
			s.net.Cut(a.id, b.id)
			s.logf("cut %d->%d", a.idx, b.idx)
		}
	case nemIsolate:
		a := pick()
		rest := slices.DeleteFunc(slices.Clone(ids), func(id crdt.NodeID) bool { return id == a.id })
		s.net.Partition([][]crdt.NodeID{{a.id}, rest})
		s.logf("isolate %d", a.idx)
	case nemHeal:
		s.net.Heal()
		s.logf("heal")
	case nemCrash:
		if a := pick(); a.m != nil {
			a.m, a.writes, a.viewDue = nil, nil, 0
			s.logf("crash %d", a.idx)
		}
	case nemRestart:
		for _, a := range s.nodes {
			if a.m == nil {
				s.start(a)
				s.logf("restart %d", a.idx)
				break
			}
		}
	case nemLossy:
		s.net.Loss = []float64{0, 0.05, 0.2, 0.4}[s.rng.IntN(4)]
		s.net.Dup = []float64{0, 0.05, 0.2}[s.rng.IntN(3)]
		s.logf("loss=%.2f dup=%.2f", s.net.Loss, s.net.Dup)
	case nemTrim:
		a := pick()
		if applied := a.st.Applied(); len(applied) > 0 {
			o := applied[s.rng.IntN(len(applied))].Node
			keep := s.rng.IntN(4)
			a.st.Trim(o, keep)
			s.logf("trim node %d origin %s keep %d", a.idx, o, keep)
		}
	case nemSyncWith:
		// A digest sync between two members, neighbours or not, as
		// SyncWith begins one by peer ID.
		if a, b := pick(), pick(); a != b && a.m != nil && slices.Contains(a.view, b.id) && a.m.SyncWith(b.id) {
			s.logf("node %d syncs with %d", a.idx, b.idx)
		}
	case nemStoreFail:
		a := pick()
		if a.st.FailApply != nil {
			a.st.FailApply = nil
			s.logf("node %d store ok", a.idx)
			break
		}
		a.st.FailApply = func() (bool, int) { return s.rng.IntN(5) == 0, s.rng.IntN(3) }
		s.logf("node %d store failing", a.idx)
	case nemSettle:
		// Converge, then delete shared keys: every replica has seen their
		// last write, so they must never come back.
		s.healAll()
		if !s.settle() {
			return
		}
		s.deleteForGood(pick())
	case nemAbsence:
		if s.absent != nil || len(s.nodes) < 2 {
			break
		}
		// Converge, take a node away, and delete shared keys elsewhere
		// before it hears of it: the others collect the tombstones past
		// the horizon, trim their logs, and when it comes back the keys
		// must stay deleted, on it too.
		s.healAll()
		if !s.settle() {
			return
		}
		x := pick()
		rest := slices.DeleteFunc(slices.Clone(ids), func(id crdt.NodeID) bool { return id == x.id })
		s.net.Partition([][]crdt.NodeID{{x.id}, rest})
		a := &absence{node: x, until: s.tick + uint64(s.sc.horizonTicks*(12+s.rng.IntN(14))/10), crashed: s.rng.IntN(3) == 0}
		if a.crashed {
			x.m, x.writes, x.viewDue = nil, nil, 0
		}
		s.absent = a
		s.logf("node %d away until t=%d crashed=%v", x.idx, a.until, a.crashed)
		y := pick()
		for y == x {
			y = pick()
		}
		s.deleteForGood(y)
	}
}

// deleteForGood deletes, on n, some shared keys whose every write every
// replica has seen but a node taken away: they must never come back.
func (s *sim) deleteForGood(n *simNode) {
	for i := range 3 {
		key := fmt.Sprintf("s/%d", i)
		if s.model.dead[key] || s.rng.IntN(2) == 0 {
			continue
		}
		res, e := n.st.Write(store.Write{Op: store.OpDel, Key: []byte(key)})
		if res.Err != nil {
			s.fail("delete %s: %v", key, res.Err)
			return
		}
		n.m.LocalWrite()
		s.model.ops++
		s.model.deltas[key] = append(s.model.deltas[key], simDelta{dot: crdt.Dot{Node: e.Origin, Counter: e.Seq}, rec: deltaOf(e)})
		s.model.dead[key] = true
		s.logf("node %d deletes %s for good", n.idx, key)
	}
}

// endAbsence brings the absent node back, after the others trimmed their
// logs, so that it catches up by digest syncs.
func (s *sim) endAbsence() {
	a := s.absent
	s.absent = nil
	for _, n := range s.nodes {
		if n == a.node {
			continue
		}
		for _, e := range n.st.Applied() {
			n.st.Trim(e.Node, s.rng.IntN(3))
		}
	}
	s.net.Heal()
	if a.crashed && a.node.m == nil {
		s.start(a.node)
	}
	s.logf("node %d back, logs trimmed", a.node.idx)
}

// healAll ends every fault: links, losses, store failures, crashes, an
// absence.
func (s *sim) healAll() {
	s.absent = nil
	s.net.Heal()
	s.net.Loss, s.net.Dup = 0, 0
	for _, n := range s.nodes {
		n.st.FailApply = nil
		if n.m == nil {
			s.start(n)
		}
	}
	s.logf("heal all")
}

// settle runs without writes or faults until every node has applied every
// write and sees every member; false if that takes too long.
func (s *sim) settle() bool {
	for range settleTicks {
		if s.converged() {
			s.logf("converged")
			return true
		}
		s.step(false)
		if s.err != nil {
			return false
		}
	}
	s.fail("no convergence %d ticks after the heal", settleTicks)
	return false
}

func (s *sim) converged() bool {
	var want crdt.VersionVector
	for _, n := range s.nodes {
		if c := n.st.Applied().Get(n.id); c != 0 {
			want = want.With(n.id, c)
		}
	}
	all := s.allIDs()
	for _, n := range s.nodes {
		if n.m == nil || !slices.Equal(n.view, all) || !n.st.Applied().Equal(want) || n.m.Resyncing() {
			return false
		}
	}
	return true
}

// check runs the checkers on a converged domain. It reads as of the
// latest clock of any node: what a node with a fast clock purged or
// collected as expired is expired for every reader then.
func (s *sim) check() {
	now := s.wallMS + maxSkewMS
	digest := s.nodes[0].st.Digest(now)
	for _, n := range s.nodes[1:] {
		if d := n.st.Digest(now); d != digest {
			s.fail("node %d digest %s, node 0 %s", n.idx, d, digest)
		}
	}
	for _, n := range s.nodes {
		// The machine counted exactly the bytes it handed over.
		if got, want := n.m.Stats().BytesSent, s.net.SentSince[n.id]; got != want {
			s.fail("node %d counted %d bytes sent, the network saw %d", n.idx, got, want)
		}
		for key, r := range n.st.Recs {
			if v := r.Read(now); v.Found && v.Expiry != 0 && v.Expiry <= now {
				s.fail("node %d shows %s, expired at %d (now %d)", n.idx, key, v.Expiry, now)
			}
		}
	}
	for key, deltas := range s.model.deltas {
		if key[0] == 'c' {
			s.checkCounter(key, now)
			continue
		}
		var want crdt.Record
		for _, d := range deltas {
			want = crdt.Merge(want, d.rec)
		}
		wv := want.Read(now)
		for _, n := range s.nodes {
			if v := n.st.View(key, now); !sameView(v, wv) {
				s.fail("node %d reads %s as %+v; the merge of every acknowledged write reads %+v", n.idx, key, v, wv)
			}
		}
		for _, n := range s.nodes {
			v := n.st.View(key, now)
			switch key[0] {
			case 'w':
				lw := s.model.last[key]
				found := !lw.deleted && (lw.expiry == 0 || lw.expiry > now)
				if v.Found != found || (found && (string(v.Value) != lw.value || v.Expiry != lw.expiry)) {
					s.fail("node %d reads %s as %+v; the last acknowledged write was %+v (now %d)", n.idx, key, v, lw, now)
				}
			case 's':
				if s.model.dead[key] && v.Found {
					s.fail("node %d reads deleted key %s as %q: it came back", n.idx, key, v.Value)
				}
			}
		}
	}
}

// maxLostGroups bounds the sets of lost writes checkCounter tries.
const maxLostGroups = 10

// checkCounter checks a counter key: every node reads the merge of every
// acknowledged delta, and exactly the sum of the increments no superseding
// write observed. Whether what survives shows depends on whether a delete
// is later by the clock; what shows is exact. Writes a replica dropped at
// the horizon before every member had them may have taken their resets
// with them (see model.counter): the check takes some set of those drops
// as having lost them, in the merge and in the sum alike, and passes when
// one such set, the empty set first, explains what every node reads.
func (s *sim) checkCounter(key string, now int64) {
	groups := s.model.lost[key]
	if len(groups) > maxLostGroups {
		s.fail("counter %s: %d drops at the horizon before every member had the writes, too many to check", key, len(groups))
		return
	}
	var plain string
	for set := range 1 << len(groups) {
		var chosen []lostGroup
		for i, g := range groups {
			if set&(1<<i) != 0 {
				chosen = append(chosen, g)
			}
		}
		lost := flatten(chosen)
		wv := s.model.withoutResets(key, lost).Read(now)
		sum, any := s.model.counter(key, lost)
		problem := ""
		for _, n := range s.nodes {
			v := n.st.View(key, now)
			if !sameView(v, wv) {
				problem = fmt.Sprintf("node %d reads %s as %+v; the merge of every acknowledged write reads %+v", n.idx, key, v, wv)
				break
			}
			if v.Found && (v.Kind != crdt.KindCount || v.Counter != sum) || v.Found && !any || !v.Found && any && !s.model.ctrDels[key] {
				problem = fmt.Sprintf("node %d reads counter %s as %+v, want %d (deleted: %v)", n.idx, key, v, sum, s.model.ctrDels[key])
				break
			}
		}
		if problem == "" {
			return
		}
		if set == 0 {
			plain = problem
		}
	}
	if len(groups) > 0 {
		plain += fmt.Sprintf("; nor does losing the resets of any of the %d drops at the horizon explain it", len(groups))
	}
	s.fail("%s", plain)
}

// droppedPastHorizon notes a counter key's record that a replica drops past
// the horizon, with the acknowledged writes it covers that some member has
// not applied yet.
func (s *sim) droppedPastHorizon(key string, r crdt.Record) {
	if key[0] != 'c' {
		return
	}
	var g lostGroup
	for i, d := range s.model.deltas[key] {
		if !r.Context.Covers(d.dot) {
			continue
		}
		var missed []crdt.NodeID
		for _, n := range s.nodes {
			if !n.st.Applied().Covers(d.dot) {
				missed = append(missed, n.id)
			}
		}
		if len(missed) > 0 {
			g = append(g, lostWrite{i: i, missed: missed})
		}
	}
	if len(g) == 0 {
		return
	}
	for k, o := range s.model.lost[key] {
		if slices.EqualFunc(o, g, func(a, b lostWrite) bool { return a.i == b.i }) {
			s.model.lost[key][k] = flatten([]lostGroup{o, g})
			return
		}
	}
	s.model.lost[key] = append(s.model.lost[key], g)
	s.logf("counter %s: a replica drops %d writes at the horizon before every member has them", key, len(g))
}

func sameView(a, b crdt.View) bool {
	return a.Found == b.Found && a.Kind == b.Kind && string(a.Value) == string(b.Value) &&
		a.Counter == b.Counter && a.Expiry == b.Expiry && a.TS == b.TS && a.Node == b.Node
}

func TestSimRing(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 170, minNodes: 1, maxNodes: 7, faultTicks: 150, opRate: 0.3,
		maxDelay: 3, viewDelay: 5,
	})
	covered(t, tot, full, map[string]uint64{"dead records collected": uint64(tot.collected)})
}

func TestSimPartitions(t *testing.T) {
	runSim(t, scenario{
		schedules: 170, minNodes: 3, maxNodes: 6, faultTicks: 300, opRate: 0.2, faultRate: 0.05,
		nemeses:  []nemesis{nemPartition, nemOneWay, nemIsolate, nemHeal, nemHeal, nemSettle},
		maxDelay: 3, viewDelay: 10,
	})
}

func TestSimCrashRestart(t *testing.T) {
	runSim(t, scenario{
		schedules: 170, minNodes: 2, maxNodes: 6, faultTicks: 300, opRate: 0.2, faultRate: 0.05,
		nemeses:  []nemesis{nemCrash, nemRestart, nemRestart, nemLossy, nemSettle},
		maxDelay: 3, viewDelay: 10,
	})
}

func TestSimLossyNetwork(t *testing.T) {
	runSim(t, scenario{
		schedules: 170, minNodes: 2, maxNodes: 6, faultTicks: 300, opRate: 0.2, faultRate: 0.04,
		nemeses:  []nemesis{nemLossy, nemLossy, nemStoreFail, nemOneWay, nemHeal},
		maxDelay: 6, viewDelay: 5,
	})
}

func TestSimTrimSnapshot(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 170, minNodes: 2, maxNodes: 6, faultTicks: 300, opRate: 0.25, faultRate: 0.06,
		nemeses:  []nemesis{nemTrim, nemTrim, nemCrash, nemRestart, nemPartition, nemHeal, nemLossy, nemSyncWith},
		maxDelay: 3, viewDelay: 10,
	})
	covered(t, tot, full, map[string]uint64{
		"digest syncs": tot.syncs, "differing buckets": tot.buckets, "records sent": tot.syncRecords,
		"zero records merged": tot.dropsMerged, "fenced entries": tot.fenced, "refused syncs": tot.refused,
		"dead records collected": uint64(tot.collected), "syncs begun by peer id": uint64(tot.faults[nemSyncWith]),
	})
}

// TestSimAbsence takes nodes away for longer than the tombstone horizon
// (isolated, or crashed; away from clients too) while the others delete,
// collect tombstones past the horizon and trim their logs; back, a node
// resyncs and catches up by digest syncs, and no deleted key returns.
//
// No other fault keeps a node away that long: one that had taken writes no
// other member saw would bring them back against a concurrent delete whose
// tombstone the horizon collected meanwhile. That is the horizon's
// trade-off, not something replication can repair. Counter keys meet it
// anyway, since a node back takes increments before it has caught up: the
// counter checker allows exactly what a dropped delete's lost resets let
// such an increment bring back (model.counter).
func TestSimAbsence(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 170, minNodes: 2, maxNodes: 5, faultTicks: 600, opRate: 0.2, faultRate: 0.03,
		nemeses:  []nemesis{nemAbsence, nemAbsence, nemTrim, nemTrim, nemLossy},
		maxDelay: 3, viewDelay: 10, horizonTicks: 100,
	})
	covered(t, tot, full, map[string]uint64{
		"resyncs": tot.resyncs, "resyncs served": tot.resyncsServed, "digest syncs": tot.syncs,
		"zero records merged": tot.dropsMerged, "tombstones collected past the horizon": uint64(tot.pastHorizon),
		"dead records collected": uint64(tot.collected),
	})
}

func TestSimChaos(t *testing.T) {
	runSim(t, scenario{
		schedules: 170, minNodes: 2, maxNodes: 7, faultTicks: 400, opRate: 0.2, faultRate: 0.08,
		nemeses:  []nemesis{nemPartition, nemOneWay, nemIsolate, nemHeal, nemCrash, nemRestart, nemLossy, nemTrim, nemStoreFail, nemSettle, nemSyncWith},
		maxDelay: 5, viewDelay: 15,
	})
}
