package cascade

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/replication/simkit"
	"github.com/upu/upu/store"
)

// The cascade's deterministic simulation. Each schedule builds a fleet of
// three levels (a root domain, two middle domains, two or three leaves
// under each, one to three nodes per domain), each node a
// replication.Machine over a simkit.Store and a Cascade, and drives it
// tick by tick from one seed. The Cascade is the real one without its
// loop goroutine: the simulation calls its refresh where the loop's ticker
// would, so the setting, the relay, the info exchange with the parent and
// the upstream's failover are cascade.go's own; its peer calls (info) are
// answered at once by the target's Cascade.serve, over links the
// simulation may cut or make lossy, and the Machines' envelopes travel a
// simkit.Net, encoded as on the wire. Gossip is the simulation's view of
// each domain, lagging reachability.
//
// Faults: relay deaths and other crashes (the store survives), outages of
// a whole parent domain, partitions inside a domain and cuts between
// levels (both ways or one way), loss, duplication and reordering, log
// trims that force digest syncs, leaves re-parented to the other middle
// domain, parents cleared and set again at run time, a middle domain set
// under one of its leaves (refused, or a cycle found at run time), and
// clocks up to ten minutes apart. Clients set, delete, increment and set with a TTL, on
// random nodes, on keys of their own node, of a domain, of a middle
// domain's subtree and of the whole fleet. Then everything heals, every
// parent is set again, the fleet runs until quiet, and the checkers run on
// the tree as the settings then stand.

var (
	flagSchedules = flag.Int("sim.schedules", 0, "schedules per TestSimCascade test (0: each test's default)")
	flagSeed      = flag.Uint64("sim.seed", 0, "run only the schedule with this seed (replay)")
	flagTrace     = flag.Bool("sim.trace", false, "log every event of the schedules run")
)

const (
	simStartMS  = 1_700_000_000_000
	simTickMS   = 10
	maxSkewMS   = 10 * 60 * 1000 // how far a node's clock may be off, either way
	settleTicks = 3000           // the most a heal may take to converge
	traceLines  = 150            // events kept for a failure report
	rootDomain  = "root"
)

type nemesis int

const (
	nemRelayCrash nemesis = iota
	nemCrash
	nemRestart
	nemOutage
	nemSplit
	nemCutLevels
	nemHeal
	nemLossy
	nemTrim
	nemReparent
	nemClear
	nemSetAgain
	nemCycle
	nemSettle
	numNemeses
)

var nemesisNames = [numNemeses]string{"relay-crash", "crash", "restart", "parent-outage", "split-domain", "cut-levels", "heal", "lossy", "trim", "re-parent", "clear-parent", "set-parent", "cycle", "settle"}

// scenario says what one TestSimCascade test throws at the fleet.
type scenario struct {
	schedules  int     // default count
	faultTicks int     // length of the faulty phase
	opRate     float64 // chance per tick and up node of a client write
	faultRate  float64 // chance per tick of a nemesis action
	nemeses    []nemesis
	maxDelay   int // ticks a message may take
	viewDelay  int // ticks a gossip view may lag
}

type simDomain struct {
	name   string
	level  int // 0: the root
	nodes  []*simNode
	parent string               // the parent the simulation last set; "": none
	known  map[crdt.NodeID]bool // every member a view has held: gossip's
}

type simNode struct {
	idx     int
	id      crdt.NodeID
	addr    string
	dom     *simDomain
	cfg     replication.Config
	st      *simkit.Store
	m       *replication.Machine // nil while down
	cas     *Cascade             // nil while down
	writes  []replication.Write  // the machine's store writes not yet made
	skew    int64
	view    []crdt.NodeID // sorted; the members of its domain its gossip sees
	viewDue uint64
	heard   map[crdt.NodeID]bool // nodes a message came from since it started
	collect crdt.VersionVector   // what the store was last given to collect under
	given   bool
}

type sim struct {
	sc      scenario
	seed    uint64
	rng     *rand.Rand
	net     *simkit.Net
	doms    []*simDomain
	byName  map[string]*simDomain
	nodes   []*simNode
	byID    map[crdt.NodeID]*simNode
	refresh int // ticks between two refreshes of a Cascade (its ticker)
	tick    uint64
	wallMS  int64
	model   model
	outages map[*simDomain]uint64 // domains down, until when
	faults  [numNemeses]int
	changes int // parent settings changed at run time
	refused int // parent changes refused
	cycling int // refreshes that found the tree a cycle
	trace   []string
	tb      testing.TB
	err     error
}

// model is what clients were told: every acknowledged write.
type model struct {
	deltas  map[string][]simDelta // every acknowledged delta, per key
	last    map[string]lastWrite  // single-writer keys: the last write
	incrs   map[string][]simIncr  // counter keys: every acknowledged increment
	ctrDels map[string]bool       // counter keys deleted at least once
	dead    map[string]string     // keys deleted for good, by the middle domain that did
	ops     int
}

type simDelta struct {
	dot crdt.Dot
	rec crdt.Record
}

// simIncr is one acknowledged increment of a counter key, gone once a
// write that had seen it superseded it; goneBy holds those writes' dots.
type simIncr struct {
	dot    crdt.Dot
	delta  int64
	goneBy []crdt.Dot
}

type lastWrite struct {
	deleted bool
	value   string
	expiry  int64
}

// observe marks gone the increments of key that ctx covers, as the write
// by, made on a node whose context of key was ctx, superseding the counter,
// does (the ring simulation's model, without the horizon: this one
// collects nothing past a horizon). A node's count entry holds its running
// totals, so having seen one of its increments is having seen every
// earlier one.
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
// survives.
func (m *model) counter(key string) (sum int64, any bool) {
	for _, c := range m.incrs[key] {
		if len(c.goneBy) == 0 {
			sum, any = sum+c.delta, true
		}
	}
	return sum, any
}

type simTotals struct {
	schedules, nodes, ops, ticks, dropped, duped int
	changes, refused, cycling                    int
	messages, retransmits, relayed, syncs        uint64
	collected                                    int
	faults                                       [numNemeses]int
}

func (t *simTotals) add(s *sim) {
	t.schedules++
	t.nodes += len(s.nodes)
	t.ops += s.model.ops
	t.ticks += int(s.tick)
	t.dropped += s.net.Dropped
	t.duped += s.net.Duped
	t.changes += s.changes
	t.refused += s.refused
	t.cycling += s.cycling
	for i, f := range s.faults {
		t.faults[i] += f
	}
	for _, n := range s.nodes {
		t.collected += n.st.Collected
		if n.m != nil {
			st := n.m.Stats()
			t.messages += st.MessagesSent
			t.retransmits += st.Retransmits
			t.syncs += st.SyncsDone
		}
		if n.cas != nil {
			entries, _ := n.cas.relayed.totals()
			t.relayed += entries
		}
	}
}

func (t *simTotals) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "schedules=%d nodes=%d ops=%d ticks=%d messages=%d lost=%d duplicated=%d retransmits=%d entries-relayed=%d syncs=%d gc-stable=%d parent-changes=%d refused=%d cycle-refreshes=%d faults:",
		t.schedules, t.nodes, t.ops, t.ticks, t.messages, t.dropped, t.duped, t.retransmits, t.relayed, t.syncs, t.collected, t.changes, t.refused, t.cycling)
	for i, f := range t.faults {
		if f > 0 {
			fmt.Fprintf(&sb, " %s=%d", nemesisNames[i], f)
		}
	}
	return sb.String()
}

// knownFailures are default schedules that find a limit of the design,
// not a bug: the default run skips them, -sim.seed replays them. A leaf
// collects a tombstone once its parent has it; moved under another parent,
// it no longer holds the delete, so the new parent never gets it, and an
// older write of the same key from the new parent's other subtrees, which
// the delete beat by its timestamp, stays visible there (README, Known
// limitations: re-parenting).
var knownFailures = map[uint64]string{
	14649344899690084347: "a re-parented leaf's collected tombstone never reaches the new parent",
}

// runSim runs a scenario's schedules, or the one -sim.seed names, and
// returns their totals, and whether they are the scenario's default set.
func runSim(t *testing.T, sc scenario) (simTotals, bool) {
	t.Parallel()
	seeds, full := simkit.Schedules(t.Name(), sc.schedules, *flagSchedules, *flagSeed, testing.Short() || raceEnabled)
	var tot simTotals
	for _, seed := range seeds {
		if why, known := knownFailures[seed]; known && *flagSeed == 0 {
			t.Logf("skipped schedule seed=%d, a known failure: %s", seed, why)
			continue
		}
		s := newSim(t, sc, seed)
		if err := s.run(); err != nil {
			t.Fatalf("schedule seed=%d failed: %v\n%s\nreplay: go test ./cascade -run '^%s$' -sim.seed=%d -sim.trace -v",
				seed, err, s.report(), t.Name(), seed)
		}
		tot.add(s)
	}
	t.Logf("%s", &tot)
	return tot, full
}

// covered fails t when the totals show that a path the test is for was not
// taken.
func covered(t *testing.T, full bool, what map[string]int) {
	t.Helper()
	if !full {
		return
	}
	for name, n := range what {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
}

func newSim(tb testing.TB, sc scenario, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0xda3e39cb94b95bdb))
	s := &sim{
		sc:      sc,
		seed:    seed,
		rng:     rng,
		net:     simkit.NewNet(rng),
		byName:  map[string]*simDomain{},
		byID:    map[crdt.NodeID]*simNode{},
		refresh: 2 + rng.IntN(8),
		wallMS:  simStartMS,
		outages: map[*simDomain]uint64{},
		tb:      tb,
		model: model{
			deltas:  map[string][]simDelta{},
			last:    map[string]lastWrite{},
			incrs:   map[string][]simIncr{},
			ctrDels: map[string]bool{},
			dead:    map[string]string{},
		},
	}
	s.net.MaxDelay = max(1, sc.maxDelay)
	retransmit := 2*s.net.MaxDelay + 1 + rng.IntN(10)
	probe := 3 + rng.IntN(15)
	batch := 1 + rng.IntN(24)
	inflight := 1 + rng.IntN(4)
	bits := []int{0, 2, 6}[rng.IntN(3)]
	s.addDomain(rootDomain, 0, "")
	leaves := 0
	for i := range 2 {
		mid := fmt.Sprintf("mid%d", i)
		s.addDomain(mid, 1, rootDomain)
		for range 2 + rng.IntN(2) {
			s.addDomain(fmt.Sprintf("leaf%d", leaves), 2, mid)
			leaves++
		}
	}
	perDomain := 1 + rng.IntN(3) // the most nodes of a domain
	for _, d := range s.doms {
		for range 1 + rng.IntN(perDomain) {
			var id crdt.NodeID
			for id == 0 || s.byID[id] != nil {
				id = crdt.NodeID(rng.Uint64())
			}
			n := &simNode{idx: len(s.nodes), id: id, dom: d, skew: int64(rng.IntN(2*maxSkewMS+1)) - maxSkewMS}
			n.addr = fmt.Sprintf("10.0.%d.%d:7000", n.idx/200, n.idx%200+1)
			n.cfg = replication.Config{
				Self: id, RetransmitTicks: retransmit, ProbeTicks: probe, MaxBatchEntries: batch,
				MaxInflight: inflight, DigestBits: bits, Seed: rng.Uint64() | 1,
			}
			n.st = simkit.NewStore(id, func() int64 { return s.wallMS + n.skew })
			d.nodes = append(d.nodes, n)
			s.nodes = append(s.nodes, n)
			s.byID[id] = n
		}
	}
	// The fleet formed before the run: every domain's members see each
	// other, and every parent is set.
	for _, d := range s.doms {
		ids := d.ids()
		for _, n := range d.nodes {
			s.start(n)
			s.setView(n, ids)
		}
	}
	for _, d := range s.doms {
		if d.parent != "" {
			s.writeSetting(d, d.parent)
		}
	}
	s.logf("seed=%d domains=%d nodes=%d refresh=%d retransmit=%d probe=%d batch=%d inflight=%d delay=%d bits=%d",
		seed, len(s.doms), len(s.nodes), s.refresh, retransmit, probe, batch, inflight, s.net.MaxDelay, bits)
	// Clients come once every member follows its parent and knows its
	// children: until then a parent's members differ in whether they hold
	// tombstone collection (Machine.HoldCollection).
	s.settle()
	return s
}

func (s *sim) addDomain(name string, level int, parent string) {
	d := &simDomain{name: name, level: level, parent: parent, known: map[crdt.NodeID]bool{}}
	s.doms = append(s.doms, d)
	s.byName[name] = d
}

func (d *simDomain) ids() []crdt.NodeID {
	ids := make([]crdt.NodeID, 0, len(d.nodes))
	for _, n := range d.nodes {
		ids = append(ids, n.id)
	}
	slices.Sort(ids)
	return ids
}

// writeSetting makes parent the parent of d, on d's node with the fastest
// clock (so that it wins over every earlier change), as `upu cascade
// set-parent` does: Cascade.SetParent, which asks a seed first.
func (s *sim) writeSetting(d *simDomain, parent string) {
	n := slices.MaxFunc(d.nodes, func(a, b *simNode) int { return int(a.skew - b.skew) })
	if err := n.cas.SetParent(context.Background(), parent, s.byName[parent].addrs()); err != nil {
		s.fail("set the parent of %s to %s on node %d: %v", d.name, parent, n.idx, err)
		return
	}
	d.parent = parent
	s.logf("node %d sets the parent of %s: %s", n.idx, d.name, parent)
}

func (d *simDomain) addrs() []string {
	out := make([]string, 0, len(d.nodes))
	for _, n := range d.nodes {
		out = append(out, n.addr)
	}
	return out
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
	for _, d := range s.doms {
		fmt.Fprintf(&sb, "domain %s parent=%q\n", d.name, d.parent)
		for _, n := range d.nodes {
			fmt.Fprintf(&sb, "  node %d %s up=%v skew=%dms view=%v\n    %s\n", n.idx, n.id, n.m != nil, n.skew, n.view, n.st)
			if n.cas != nil {
				st := n.cas.Status()
				fmt.Fprintf(&sb, "    cascade state=%s parent=%s path=%v relay=%s upstream=%s err=%q\n", st.State, st.Parent, st.Path, st.Relay, st.Upstream, st.LastError)
			}
		}
	}
	return sb.String()
}

// start starts n's Machine and Cascade over its store, as a process start
// does; gossip knows it at once, down until views catch up.
func (s *sim) start(n *simNode) {
	m, err := replication.NewMachine(n.cfg, n.st)
	if err != nil {
		s.fail("new machine: %v", err)
		return
	}
	n.m, n.writes, n.heard, n.given = m, nil, nil, false
	n.cas = s.newCascade(n)
	s.setView(n, []crdt.NodeID{n.id})
	for _, o := range n.dom.nodes {
		if o != n && o.m != nil {
			s.setView(o, o.view)
		}
	}
	n.viewDue = s.tick + 1 + uint64(s.rng.IntN(max(1, s.sc.viewDelay)))
	n.cas.refresh(context.Background()) // the loop's first, at once
}

func (s *sim) crash(n *simNode) {
	n.m, n.cas, n.writes, n.viewDue = nil, nil, nil, 0
}

// newCascade starts n's Cascade without its loop goroutine, whose
// refreshes the simulation makes.
func (s *sim) newCascade(n *simNode) *Cascade {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetFormatter(traceHook{})
	l.AddHook(traceHook{s: s, n: n})
	c, err := newCascade(Config{Domain: n.dom.name, Self: n.id, Addr: n.addr}, Deps{
		Store: simStore{n.st, n}, Members: simMembers{n}, Replication: n.m, Links: simLinks{s, n},
		Reader: simReader{n}, Clock: simClock{n: n}, Log: logrus.NewEntry(l),
	})
	if err != nil {
		s.fail("node %d: new cascade: %v", n.idx, err)
	}
	return c
}

// simReader answers a child's scoped read from the node's store (the
// simulation makes none: reads are the checkers').
type simReader struct{ n *simNode }

func (r simReader) ReadUp(_ context.Context, key []byte, _ bool, _ reqid.ID) (crdt.Record, string, error) {
	return r.n.st.Recs[string(key)], r.n.dom.name, nil
}

// simStore is the node's store as its Cascade sees it: a write wakes the
// Machine, as the store's feed wakes the replicator.
type simStore struct {
	*simkit.Store
	n *simNode
}

func (s simStore) ApplyBatch(_ context.Context, ws []store.Write, out []store.Result) {
	for i, w := range ws {
		out[i], _ = s.Write(w)
	}
	if s.n.m != nil {
		s.n.m.LocalWrite()
	}
}

// simMembers is the node's gossip: its view of its domain.
type simMembers struct{ n *simNode }

func (m simMembers) Members() []gossip.Member {
	out := make([]gossip.Member, 0, len(m.n.view))
	for _, id := range m.n.view {
		o := m.n.dom.nodeByID(id)
		out = append(out, gossip.Member{ID: id.String(), Domain: o.dom.name, Addr: o.addr, State: gossip.StateAlive, Self: o == m.n})
	}
	return out
}

func (m simMembers) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

func (d *simDomain) nodeByID(id crdt.NodeID) *simNode {
	for _, n := range d.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// errSimUnreachable is a simulated call that got no answer.
var errSimUnreachable = errors.New("upu: sim: no answer")

// simLinks are the node's peer links: a Call is answered at once by the
// target's Cascade, if it is up, both ways reachable, and the request and
// its answer are not lost.
type simLinks struct {
	s *sim
	n *simNode
}

func (l simLinks) reach(to *simNode) error {
	s := l.s
	switch {
	case to == nil || to.cas == nil || !s.net.Open(l.n.id, to.id) || !s.net.Open(to.id, l.n.id):
		return errSimUnreachable
	case s.net.Loss > 0 && s.rng.Float64() < 2*s.net.Loss:
		s.net.Dropped++
		return errSimUnreachable
	}
	return nil
}

func (l simLinks) Call(ctx context.Context, to peer.Node, kind peer.Kind, req []byte) ([]byte, error) {
	id, err := crdt.ParseNodeID(to.ID)
	if err != nil {
		return nil, err
	}
	o := l.s.byID[id]
	if o != nil && o.addr != to.Addr {
		l.s.fail("node %d called %s at %q, its address is %q", l.n.idx, to.ID, to.Addr, o.addr)
	}
	if err := l.reach(o); err != nil {
		return nil, err
	}
	if kind != peer.KindCascade {
		return nil, fmt.Errorf("upu: sim: call of kind %d", kind)
	}
	return o.cas.serve(ctx, l.n.id.String(), req)
}

func (l simLinks) Identify(_ context.Context, addr string) (string, error) {
	i := slices.IndexFunc(l.s.nodes, func(o *simNode) bool { return o.addr == addr })
	if i < 0 {
		return "", errSimUnreachable
	}
	o := l.s.nodes[i]
	if err := l.reach(o); err != nil {
		return "", err
	}
	return o.id.String(), nil
}

func (simLinks) Register(peer.Kind, peer.Handler) {}

// simClock is the node's clock. Its timers fire at once: the simulation's
// time does not pass during a call, so a change's wait for the loop
// (Cascade.await) ends at once.
type simClock struct {
	clock.Clock
	n *simNode
}

func (c simClock) Now() time.Time { return time.UnixMilli(c.n.st.Wall()) }

func (c simClock) NewTimer(time.Duration) clock.Timer {
	t := firedTimer(make(chan time.Time, 1))
	t <- c.Now()
	return t
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time    { return t }
func (firedTimer) Stop() bool               { return false }
func (firedTimer) Reset(time.Duration) bool { return false }

// traceHook puts the cascade's log lines in the trace, and is the
// logger's formatter, which the trace makes unneeded.
type traceHook struct {
	s *sim
	n *simNode
}

func (traceHook) Levels() []logrus.Level { return logrus.AllLevels }

// Format writes nothing: the hook has the line.
func (traceHook) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

func (h traceHook) Fire(e *logrus.Entry) error {
	h.s.logf("node %d %s: %s %v", h.n.idx, e.Level, e.Message, e.Data)
	return nil
}

// ring orders a view as gossip does, with each member's address.
func (s *sim) ring(view []crdt.NodeID) []replication.Peer {
	members := make([]gossip.Member, 0, len(view))
	for _, id := range view {
		members = append(members, gossip.Member{ID: id.String(), State: gossip.StateAlive})
	}
	var ring []replication.Peer
	for _, m := range gossip.BuildRing(members) {
		id, err := crdt.ParseNodeID(m.ID)
		if err != nil {
			s.fail("ring: %v", err)
			continue
		}
		ring = append(ring, replication.Peer{ID: id, Addr: s.byID[id].addr})
	}
	return ring
}

// targetView is what gossip would converge to for n: the up members of
// its domain it can talk to both ways, and itself.
func (s *sim) targetView(n *simNode) []crdt.NodeID {
	view := []crdt.NodeID{n.id}
	for _, o := range n.dom.nodes {
		if o != n && o.m != nil && s.net.Open(n.id, o.id) && s.net.Open(o.id, n.id) {
			view = append(view, o.id)
		}
	}
	slices.Sort(view)
	return view
}

// setView gives n's machine the members its gossip sees, and those known
// but not seen as down.
func (s *sim) setView(n *simNode, view []crdt.NodeID) {
	n.view = view
	for _, id := range view {
		n.dom.known[id] = true
	}
	var down []crdt.NodeID
	for id := range n.dom.known {
		if !slices.Contains(view, id) {
			down = append(down, id)
		}
	}
	n.m.SetMembers(s.ring(view))
	n.m.SetDown(down)
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

// step runs one tick: deliveries, writes, ticks, refreshes, sends, view
// changes.
func (s *sim) step(writes bool) {
	s.tick++
	s.wallMS += simTickMS
	for _, d := range s.doms { // in order: a restart draws from the PRNG
		if until, out := s.outages[d]; out && s.tick >= until {
			delete(s.outages, d)
			for _, n := range d.nodes {
				if n.m == nil {
					s.start(n)
				}
			}
			s.logf("domain %s back", d.name)
		}
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
		msg, err := replication.UnmarshalMessage(p.Data)
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
		if s.rng.IntN(2) == 0 {
			s.flush(to)
		}
	}
	for _, n := range s.nodes {
		if n.m == nil {
			continue
		}
		if writes && s.rng.Float64() < s.sc.opRate {
			s.write(n)
		}
		if s.rng.IntN(50) == 0 {
			n.st.Purge(n.st.Wall())
		}
		n.m.Tick()
		s.publish(n)
		if (s.tick+uint64(n.idx))%uint64(s.refresh) == 0 {
			n.cas.refresh(ctx)
			if n.cas.ctl.cycle {
				s.cycling++
			}
		}
		s.flush(n)
		if n.viewDue == 0 && !slices.Equal(n.view, s.targetView(n)) {
			n.viewDue = s.tick + 1 + uint64(s.rng.IntN(max(1, s.sc.viewDelay)))
		}
		if n.viewDue != 0 && s.tick >= n.viewDue {
			n.viewDue = 0
			s.setView(n, s.targetView(n))
			s.logf("node %d view %v", n.idx, n.view)
			n.cas.refresh(ctx) // as the loop does on a gossip change
		}
	}
}

// publish is what the Replicator does after each tick: give the store the
// vector to collect dead records under when it changed.
func (s *sim) publish(n *simNode) {
	if v := n.m.CollectVector(); !n.given || (v == nil) != (n.collect == nil) || !v.Equal(n.collect) {
		n.st.SetStable(v)
		n.collect, n.given = v, true
	}
}

// flush does what the Replicator does with what n's machine has ready: it
// sends the messages and makes the store writes, in order, reporting
// each. Now and then it makes only some, as a slow commit would.
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
		if err != nil {
			s.fail("node %d write %s from %s: %v", n.idx, w.Type(), w.From, err)
			return
		}
		n.m.Persisted(w, nil)
	}
	n.writes = slices.Delete(n.writes, 0, k)
	s.send(n, n.m.Ready())
}

// send takes rd's writes and sends its messages: to members of the node's
// view, to members of other domains (its upstream), and answers back over
// the link a message came on.
func (s *sim) send(n *simNode, rd replication.Ready) {
	n.writes = append(n.writes, rd.Writes...)
	for _, env := range rd.Messages {
		to := s.byID[env.To.ID]
		switch {
		case to != nil && env.To.Addr == "" && n.heard[env.To.ID] && (env.Msg.Type == replication.MsgAck || env.Msg.Type == replication.MsgDigest):
		case to == nil || env.To.Addr != to.addr:
			s.fail("node %d addressed %s at %q", n.idx, env.To.ID, env.To.Addr)
			return
		case to.dom == n.dom && !slices.Contains(n.view, env.To.ID):
			s.fail("node %d sent to %s, not a member it knows", n.idx, env.To.ID)
			return
		}
		s.net.Send(s.tick, n.id, env.To.ID, replication.AppendMessage(nil, &env.Msg))
	}
}

// scopes are the domains whose keys a client of n writes: n's own, and
// its ancestors as the simulation last set them.
func (s *sim) scopes(n *simNode) []string {
	out := []string{n.dom.name}
	for d := n.dom; d.parent != "" && len(out) < 3; {
		d = s.byName[d.parent]
		out = append(out, d.name)
	}
	return out
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
	scopes := s.scopes(n)
	var (
		key     string
		old     crdt.Record
		counted bool
	)
	switch r := s.rng.Float64(); {
	case r < 0.3: // single writer: the last acknowledged write must win at every level
		key = fmt.Sprintf("w/%d/%d", n.idx, s.rng.IntN(3))
		switch s.rng.IntN(6) {
		case 0:
			w.Op = store.OpDel
		case 1:
			ctx := n.st.Recs[key].Context
			w.Op, w.Value, w.Expiry, w.Context = store.OpSet, []byte(value), ttl(), &ctx
		default:
			w.Op, w.Value, w.Expiry = store.OpSet, []byte(value), ttl()
		}
	case r < 0.55: // shared by a domain's subtree: concurrent writers, merged at ancestors
		key = fmt.Sprintf("s/%s/%d", scopes[s.rng.IntN(len(scopes))], s.rng.IntN(2))
		w.Op, w.Value, w.Expiry = store.OpSet, []byte(value), ttl()
		if s.rng.IntN(5) == 0 {
			w.Op, w.Value, w.Expiry = store.OpDel, nil, 0
		}
		if s.rng.IntN(2) == 0 {
			ctx := n.st.Recs[key].Context
			w.Context = &ctx
		}
	case r < 0.8: // counters: increments in sibling domains add up at ancestors
		key = fmt.Sprintf("c/%s/%d", scopes[s.rng.IntN(len(scopes))], s.rng.IntN(2))
		w.Op, w.Delta = store.OpIncr, int64(s.rng.IntN(16))-5
		if s.rng.IntN(12) == 0 {
			w.Op, w.Delta = store.OpDel, 0
		}
		old = n.st.Recs[key]
		counted = old.Read(now).Found
	default: // deleted for good by their middle domain at the next settle
		if len(scopes) < 2 || n.dom.level == 0 {
			return
		}
		key = fmt.Sprintf("d/%s/%d", scopes[len(scopes)-2], s.rng.IntN(2))
		if n.dom.level == 1 {
			key = fmt.Sprintf("d/%s/%d", n.dom.name, s.rng.IntN(2))
		}
		if s.model.dead[key] != "" {
			return
		}
		w.Op, w.Value, w.Expiry = store.OpSet, []byte(value), ttl()
	}
	w.Key = []byte(key)
	res, e := n.st.Write(w)
	if res.Err != nil {
		s.fail("node %d write %s: %v", n.idx, key, res.Err)
		return
	}
	n.m.LocalWrite()
	s.record(key, e)
	switch key[0] {
	case 'w':
		s.model.last[key] = lastWrite{deleted: w.Op == store.OpDel, value: value, expiry: w.Expiry}
	case 'c':
		dot := crdt.Dot{Node: e.Origin, Counter: e.Seq}
		if w.Op == store.OpDel || !counted {
			s.model.observe(key, old.Context, dot)
		}
		if w.Op == store.OpDel {
			s.model.ctrDels[key] = true
			break
		}
		s.model.incrs[key] = append(s.model.incrs[key], simIncr{dot: dot, delta: w.Delta})
	}
}

// record notes an acknowledged write's delta.
func (s *sim) record(key string, e store.LogEntry) {
	rec, err := e.Record()
	if err != nil {
		s.fail("delta of %s: %v", key, err)
		return
	}
	s.model.ops++
	s.model.deltas[key] = append(s.model.deltas[key], simDelta{dot: crdt.Dot{Node: e.Origin, Counter: e.Seq}, rec: rec})
}

func (s *sim) upNodes(d *simDomain) []*simNode {
	var out []*simNode
	for _, n := range d.nodes {
		if n.m != nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *sim) pickDomain(levels ...int) *simDomain {
	var ds []*simDomain
	for _, d := range s.doms {
		if slices.Contains(levels, d.level) {
			ds = append(ds, d)
		}
	}
	return ds[s.rng.IntN(len(ds))]
}

func (s *sim) nemesis(k nemesis) {
	s.faults[k]++
	ctx := context.Background()
	switch k {
	case nemRelayCrash:
		d := s.pickDomain(1, 2)
		for _, n := range s.upNodes(d) {
			if n.cas.ctl.isRelay() {
				s.crash(n)
				s.logf("relay %d of %s crashes", n.idx, d.name)
				return
			}
		}
	case nemCrash:
		if n := s.nodes[s.rng.IntN(len(s.nodes))]; n.m != nil {
			s.crash(n)
			s.logf("node %d crashes", n.idx)
		}
	case nemRestart:
		for _, n := range s.nodes {
			if _, out := s.outages[n.dom]; n.m == nil && !out {
				s.start(n)
				s.logf("node %d restarts", n.idx)
				return
			}
		}
	case nemOutage:
		d := s.pickDomain(0, 1)
		if _, out := s.outages[d]; out {
			return
		}
		for _, n := range s.upNodes(d) {
			s.crash(n)
		}
		s.outages[d] = s.tick + 20 + uint64(s.rng.IntN(120))
		s.logf("domain %s down until t=%d", d.name, s.outages[d])
	case nemSplit:
		d := s.pickDomain(0, 1, 2)
		if len(d.nodes) < 2 {
			return
		}
		groups := make([][]crdt.NodeID, 2)
		for _, n := range d.nodes {
			g := s.rng.IntN(2)
			groups[g] = append(groups[g], n.id)
		}
		s.net.Partition(groups)
		s.logf("domain %s split %v", d.name, groups)
	case nemCutLevels:
		d := s.pickDomain(1, 2)
		if d.parent == "" {
			return
		}
		p := s.byName[d.parent]
		way := s.rng.IntN(3) // 0: both ways, 1: up only, 2: down only
		for _, a := range d.nodes {
			for _, b := range p.nodes {
				if way != 2 {
					s.net.Cut(a.id, b.id)
				}
				if way != 1 {
					s.net.Cut(b.id, a.id)
				}
			}
		}
		s.logf("cut %s-%s way=%d", d.name, p.name, way)
	case nemHeal:
		s.net.Heal()
		s.logf("heal links")
	case nemLossy:
		s.net.Loss = []float64{0, 0.05, 0.2, 0.4}[s.rng.IntN(4)]
		s.net.Dup = []float64{0, 0.05, 0.2}[s.rng.IntN(3)]
		s.logf("loss=%.2f dup=%.2f", s.net.Loss, s.net.Dup)
	case nemTrim:
		n := s.nodes[s.rng.IntN(len(s.nodes))]
		if applied := n.st.Applied(); len(applied) > 0 {
			o := applied[s.rng.IntN(len(applied))].Node
			keep := s.rng.IntN(4)
			n.st.Trim(o, keep)
			s.logf("trim node %d origin %s keep %d", n.idx, o, keep)
		}
	case nemReparent:
		d := s.pickDomain(2)
		to := "mid0"
		if d.parent == to {
			to = "mid1"
		}
		s.change(ctx, d, to)
	case nemClear:
		d := s.pickDomain(1, 2)
		s.change(ctx, d, "")
	case nemSetAgain:
		for _, d := range s.doms {
			if d.level > 0 && d.parent == "" {
				s.change(ctx, d, s.pickDomain(d.level-1).name)
				return
			}
		}
	case nemCycle:
		// A middle domain under one of its leaves: refused when the leaf
		// knows its path, else a cycle, found at run time.
		m := s.pickDomain(1)
		for _, d := range s.doms {
			if d.parent == m.name {
				s.change(ctx, m, d.name)
				return
			}
		}
	case nemSettle:
		// Converge, then delete keys for good in a middle domain: it has
		// seen every write of its subtree, so they must not come back in
		// it or above it.
		s.healAll()
		if !s.settle() {
			return
		}
		s.deleteForGood(s.pickDomain(1))
	}
}

// change sets or (to "") clears d's parent from a random up member, as the
// CLI does at run time; a change the parent refuses or cannot be asked
// about changes nothing.
func (s *sim) change(ctx context.Context, d *simDomain, to string) {
	up := s.upNodes(d)
	if len(up) == 0 {
		return
	}
	n := up[s.rng.IntN(len(up))]
	var err error
	if to == "" {
		err = n.cas.ClearParent(ctx)
	} else {
		p := s.byName[to]
		seeds := p.addrs()
		s.rng.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
		err = n.cas.SetParent(ctx, to, seeds[:1+s.rng.IntN(len(seeds))])
	}
	if err != nil {
		if !errors.Is(err, ErrParentUnreachable) && !errors.Is(err, ErrCycle) {
			s.fail("node %d: parent of %s to %q: %v", n.idx, d.name, to, err)
		}
		s.refused++
		s.logf("node %d: parent of %s to %q refused: %v", n.idx, d.name, to, err)
		return
	}
	s.changes++
	d.parent = to
	s.logf("node %d sets the parent of %s to %q", n.idx, d.name, to)
}

// deleteForGood deletes, on a member of the middle domain d, the keys kept
// for it whose every write d holds: no write is concurrent with the
// delete, which every level from d up must so show.
func (s *sim) deleteForGood(d *simDomain) {
	n := d.nodes[s.rng.IntN(len(d.nodes))]
	for i := range 2 {
		key := fmt.Sprintf("d/%s/%d", d.name, i)
		deltas := s.model.deltas[key]
		if s.model.dead[key] != "" || len(deltas) == 0 || s.rng.IntN(3) == 0 {
			continue
		}
		if slices.ContainsFunc(deltas, func(dl simDelta) bool { return !n.st.Applied().Covers(dl.dot) }) {
			// A domain re-parented away wrote it, and took the write
			// elsewhere: this delete would be concurrent with it.
			continue
		}
		res, e := n.st.Write(store.Write{Op: store.OpDel, Key: []byte(key)})
		if res.Err != nil {
			s.fail("delete %s: %v", key, res.Err)
			return
		}
		n.m.LocalWrite()
		s.record(key, e)
		s.model.dead[key] = d.name
		s.logf("node %d deletes %s for good", n.idx, key)
	}
}

// healAll ends every fault: links, losses, crashes, outages; and every
// domain but the root gets a parent again, set on its fastest clock.
func (s *sim) healAll() {
	clear(s.outages)
	s.net.Heal()
	s.net.Loss, s.net.Dup = 0, 0
	for _, n := range s.nodes {
		if n.m == nil {
			s.start(n)
		}
	}
	// The middle domains first, and once they know their paths again (a
	// cycle may have run through a leaf), the leaves.
	for level := 1; level <= 2 && s.err == nil; level++ {
		for _, d := range s.doms {
			if d.level != level {
				continue
			}
			p := d.parent
			if p == "" || s.byName[p].level != level-1 {
				p = s.pickDomain(level - 1).name
			}
			s.writeSetting(d, p)
		}
		for i := 0; level == 1 && !s.middlesKnowPaths(); i++ {
			if i == settleTicks {
				s.fail("the middle domains do not learn their paths: %s", s.why())
				return
			}
			if i%100 == 99 {
				// A concurrent clear made earlier on a node whose clock
				// (its HLC) ran ahead won: set again, over it.
				for _, d := range s.doms {
					if p := d.nodes[0].cas.ctl.parent; d.level == 1 && (p == nil || p.Domain != rootDomain) {
						s.writeSetting(d, rootDomain)
					}
				}
			}
			s.step(false)
		}
	}
	s.logf("heal all")
}

// middlesKnowPaths reports whether every member of a middle domain knows
// its path to the root as the middle's parent setting is now.
func (s *sim) middlesKnowPaths() bool {
	for _, d := range s.doms {
		for _, n := range d.nodes {
			if d.level == 1 && (n.cas == nil || !slices.Equal(n.cas.ctl.path, []string{d.name, rootDomain})) {
				return false
			}
		}
	}
	return true
}

// settle runs without writes or faults until the fleet is quiet; false if
// that takes too long.
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
	s.fail("no convergence %d ticks after the heal: %s", settleTicks, s.why())
	return false
}

// tree returns each domain's parent as the settings stand on its first
// node (nil: unreadable).
func (s *sim) tree() map[string]string {
	out := map[string]string{}
	for _, d := range s.doms {
		v, _, err := d.nodes[0].st.ReadSystem(settingKey(d.name))
		if errors.Is(err, store.ErrNotFound) {
			out[d.name] = ""
			continue
		}
		p, err := decodeParent(v.Value)
		if err != nil {
			s.fail("setting of %s: %v", d.name, err)
			return nil
		}
		out[d.name] = p.Domain
	}
	return out
}

// pathOf returns d's path to the root in tree, d first.
func pathOf(tree map[string]string, d string) []string {
	path := []string{d}
	for p := tree[d]; p != "" && len(path) <= maxHops; p = tree[p] {
		path = append(path, p)
	}
	return path
}

// subtree returns the nodes of d and of every domain below it in tree.
func (s *sim) subtree(tree map[string]string, d string) []*simNode {
	var out []*simNode
	for _, o := range s.doms {
		if slices.Contains(pathOf(tree, o.name), d) {
			out = append(out, o.nodes...)
		}
	}
	return out
}

func (s *sim) converged() bool { return s.why() == "" }

// why says what keeps the fleet from being quiet ("": nothing): a node
// down or not seeing its whole domain; members that disagree on the
// setting, the relay or the path, or do not follow them; a domain that
// lacks an entry of its subtree, or whose members' vectors differ.
func (s *sim) why() string {
	tree := s.tree()
	if tree == nil {
		return "tree unreadable"
	}
	for _, d := range s.doms {
		ids := d.ids()
		setting, _, _ := d.nodes[0].st.ReadSystem(settingKey(d.name))
		path := pathOf(tree, d.name)
		relay := chooseRelay(d.name, idStrings(ids))
		for _, n := range d.nodes {
			switch {
			case n.m == nil:
				return fmt.Sprintf("node %d down", n.idx)
			case !slices.Equal(n.view, ids):
				return fmt.Sprintf("node %d view %v", n.idx, n.view)
			case n.m.Resyncing():
				return fmt.Sprintf("node %d resyncing", n.idx)
			}
			v, _, _ := n.st.ReadSystem(settingKey(d.name))
			if !slices.Equal(v.Value, setting.Value) {
				return fmt.Sprintf("node %d setting differs", n.idx)
			}
			ctl := n.cas.ctl
			if (ctl.parent == nil) != (tree[d.name] == "") || ctl.parent != nil && ctl.parent.Domain != tree[d.name] {
				return fmt.Sprintf("node %d follows parent %s", n.idx, ctl.parent)
			}
			if ctl.relay != relay || !slices.Equal(ctl.path, path) {
				return fmt.Sprintf("node %d relay %s path %v", n.idx, ctl.relay, ctl.path)
			}
			if ctl.parent != nil {
				up := s.byID[parseID(ctl.up.ID)]
				if up == nil || up.dom.name != ctl.parent.Domain || !ctl.infoOK {
					return fmt.Sprintf("node %d upstream %q info=%v", n.idx, ctl.up.ID, ctl.infoOK)
				}
			}
		}
		applied := d.nodes[0].st.Applied()
		for _, n := range d.nodes[1:] {
			if !n.st.Applied().Equal(applied) {
				return fmt.Sprintf("domain %s: node %d applied %s, node %d %s", d.name, n.idx, n.st.Applied(), d.nodes[0].idx, applied)
			}
		}
		for _, o := range s.subtree(tree, d.name) {
			if want := o.st.Applied().Get(o.id); applied.Get(o.id) != want {
				return fmt.Sprintf("domain %s has %d of %s (node %d of %s), which is at %d", d.name, applied.Get(o.id), o.id, o.idx, o.dom.name, want)
			}
		}
	}
	return ""
}

func idStrings(ids []crdt.NodeID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func parseID(s string) crdt.NodeID {
	id, _ := crdt.ParseNodeID(s)
	return id
}

// check runs the checkers on the quiet fleet, at the latest clock of any
// node: what a node with a fast clock purged or collected as expired is
// expired for every reader then.
//
//   - Every domain's members hold the same data (their digests).
//   - Each node's status shows the tree: its path, relaying or standby.
//   - For every key whose every writer is in a domain's subtree, each of
//     the domain's members reads the merge of every acknowledged write of
//     it: an ancestor holds every change of its descendants; a counter is
//     exactly the sum of the increments no superseding write observed.
//   - A single writer's key reads, at its node's domain and every domain
//     above, as its last acknowledged write left it: a delete or an
//     expiry hides it at every level.
//   - A key a middle domain deleted for good, after every write of its
//     subtree had reached it, is found neither there nor above.
func (s *sim) check() {
	now := s.wallMS + maxSkewMS
	tree := s.tree()
	for _, d := range s.doms {
		digest := d.nodes[0].st.Digest(now)
		for _, n := range d.nodes[1:] {
			if dg := n.st.Digest(now); dg != digest {
				s.fail("domain %s: node %d digest %s, node %d %s%s", d.name, n.idx, dg, d.nodes[0].idx, digest, diffRecords(d.nodes[0], n, now))
			}
		}
		path := pathOf(tree, d.name)
		for _, n := range d.nodes {
			st := n.cas.Status()
			want := StateStandby
			switch {
			case tree[d.name] == "":
				want = StateRoot
			case n.cas.ctl.isRelay():
				want = StateRelaying
			}
			if st.State != want || !slices.Equal(st.Path, path) {
				s.fail("node %d of %s: status %s path %v, want %s path %v", n.idx, d.name, st.State, st.Path, want, path)
			}
		}
	}
	subtrees := map[string][]crdt.NodeID{}
	for _, d := range s.doms {
		for _, n := range s.subtree(tree, d.name) {
			subtrees[d.name] = append(subtrees[d.name], n.id)
		}
	}
	for key, deltas := range s.model.deltas {
		var want crdt.Record
		for _, dl := range deltas {
			want = crdt.Merge(want, dl.rec)
		}
		wv := want.Read(now)
		for _, d := range s.doms {
			if slices.ContainsFunc(deltas, func(dl simDelta) bool { return !slices.Contains(subtrees[d.name], dl.dot.Node) }) {
				continue // written outside d's subtree too, which d never sees
			}
			for _, n := range d.nodes {
				v := n.st.View(key, now)
				if !sameView(v, wv) {
					s.fail("node %d of %s reads %s as %+v; the merge of every acknowledged write reads %+v\n  record %+v\n  merge  %+v", n.idx, d.name, key, v, wv, n.st.Recs[key], want)
				}
				s.checkKey(n, key, v, now)
			}
		}
		if m := s.model.dead[key]; m != "" {
			for _, d := range s.doms {
				if !slices.Contains(pathOf(tree, m), d.name) {
					continue // not m nor above it
				}
				for _, n := range d.nodes {
					if v := n.st.View(key, now); v.Found {
						s.fail("node %d of %s reads %s, which %s deleted for good, as %q: it came back", n.idx, d.name, key, m, v.Value)
					}
				}
			}
		}
	}
}

// checkKey checks what node n reads of key against what its kind says.
func (s *sim) checkKey(n *simNode, key string, v crdt.View, now int64) {
	switch key[0] {
	case 'w':
		lw := s.model.last[key]
		found := !lw.deleted && (lw.expiry == 0 || lw.expiry > now)
		if v.Found != found || (found && (string(v.Value) != lw.value || v.Expiry != lw.expiry)) {
			s.fail("node %d of %s reads %s as %+v; the last acknowledged write was %+v (now %d)", n.idx, n.dom.name, key, v, lw, now)
		}
	case 'c':
		sum, any := s.model.counter(key)
		if v.Found && (v.Kind != crdt.KindCount || v.Counter != sum) || v.Found && !any || !v.Found && any && !s.model.ctrDels[key] {
			s.fail("node %d of %s reads counter %s as %+v, want %d (deleted: %v)", n.idx, n.dom.name, key, v, sum, s.model.ctrDels[key])
		}
	}
}

// diffRecords describes the keys two nodes read differently at now.
func diffRecords(a, b *simNode, now int64) string {
	var sb strings.Builder
	keys := append(a.st.Keys(nil), b.st.Keys(nil)...)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if !sameView(a.st.View(k, now), b.st.View(k, now)) {
			fmt.Fprintf(&sb, "\n  %s: node %d %+v\n  %s: node %d %+v", k, a.idx, a.st.Recs[k], k, b.idx, b.st.Recs[k])
		}
	}
	return sb.String()
}

func sameView(a, b crdt.View) bool {
	return a.Found == b.Found && a.Kind == b.Kind && string(a.Value) == string(b.Value) &&
		a.Counter == b.Counter && a.Expiry == b.Expiry && a.TS == b.TS && a.Node == b.Node
}

func TestSimCascadeTree(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 250, faultTicks: 100, opRate: 0.06, maxDelay: 3, viewDelay: 5,
	})
	covered(t, full, map[string]int{"entries relayed": int(tot.relayed), "dead records collected": tot.collected})
}

func TestSimCascadeFailover(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 250, faultTicks: 160, opRate: 0.05, faultRate: 0.07,
		nemeses:  []nemesis{nemRelayCrash, nemRelayCrash, nemCrash, nemRestart, nemRestart, nemOutage, nemLossy, nemSettle},
		maxDelay: 3, viewDelay: 8,
	})
	covered(t, full, map[string]int{"relay deaths": tot.faults[nemRelayCrash], "parent outages": tot.faults[nemOutage]})
}

func TestSimCascadePartitions(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 250, faultTicks: 160, opRate: 0.05, faultRate: 0.08,
		nemeses:  []nemesis{nemSplit, nemCutLevels, nemCutLevels, nemHeal, nemLossy, nemTrim, nemTrim, nemSettle},
		maxDelay: 4, viewDelay: 8,
	})
	covered(t, full, map[string]int{"digest syncs": int(tot.syncs), "cuts between levels": tot.faults[nemCutLevels]})
}

func TestSimCascadeReparent(t *testing.T) {
	tot, full := runSim(t, scenario{
		schedules: 260, faultTicks: 160, opRate: 0.05, faultRate: 0.08,
		nemeses:  []nemesis{nemReparent, nemReparent, nemClear, nemSetAgain, nemSetAgain, nemCycle, nemCrash, nemRestart, nemTrim, nemCutLevels, nemHeal, nemLossy, nemSettle},
		maxDelay: 3, viewDelay: 8,
	})
	covered(t, full, map[string]int{"parent changes": tot.changes, "refused changes": tot.refused, "cycles found at run time": tot.cycling})
}
