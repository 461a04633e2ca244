package crdt

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// The simulation: 2–5 replicas apply random local operations to a few keys
// and exchange deltas (out of order, duplicated, or never) and full states.
// Every operation runs in two worlds that differ only in that the first one
// purges expired entries now and then; the worlds must always read the same.
// A model beside each world logs every delta, which tells which dots the
// end state must hold.

const (
	regKeys  = 2       // keys 0 and 1: registers (Set, Delete, Incr on numeric values)
	ctrKey   = regKeys // counter only: Incr and Delete
	numKeys  = ctrKey + 1
	maxSkew  = 20 // ms of wall-clock disagreement between replicas
	poolSize = 48 // reachable records kept per key for the merge laws
	startMS  = 1_700_000_000_000
	realW    = 0 // the world that purges
	shadowW  = 1 // the world that never purges
	numWorld = 2
)

type delta struct {
	key int
	rec Record
}

// opLog is what the model keeps of one local operation: the dots its delta
// holds and the context it carries (which supersedes every other dot it
// covers).
type opLog struct {
	dots []Dot
	ctx  Context
}

type world struct {
	recs    [][]Record // node, key
	pending [][]delta  // deltas not yet delivered, per destination node
	reads   [numKeys][]Context
	log     [numKeys][]opLog
	expiry  [numKeys]map[Dot]int64 // every dot ever written, with its expiry
}

type simNode struct {
	id    NodeID
	clock *HLC
	skew  int64
}

// ctrIncr is one acknowledged increment of ctrKey, in the model: gone once
// a write that had seen it (a delete, or an Incr that found no counter and
// so started afresh) superseded it.
type ctrIncr struct {
	dot    Dot
	amount int64
	gone   bool
}

type sim struct {
	nodes      []simNode
	w          [numWorld]*world
	now        int64
	ctrIncrs   []ctrIncr
	ctrDeleted bool // whether ctrKey was ever deleted
	pool       [numKeys][]Record
	steps      int
}

// ctrObserve marks gone the increments of ctrKey that node n has seen, when
// n makes a write that supersedes them. A node's count entry holds its
// running totals, so having seen one of its increments is having seen
// every earlier one.
func (s *sim) ctrObserve(n int) {
	ctx := s.w[realW].recs[n][ctrKey].Context
	for _, seen := range s.ctrIncrs {
		if !ctx.Covers(seen.dot) {
			continue
		}
		for i := range s.ctrIncrs {
			if c := &s.ctrIncrs[i]; c.dot.Node == seen.dot.Node && c.dot.Counter <= seen.dot.Counter {
				c.gone = true
			}
		}
	}
}

// ctrWant returns what the model says ctrKey sums to, and whether any
// increment survives.
func (s *sim) ctrWant() (sum int64, any bool) {
	for _, c := range s.ctrIncrs {
		if !c.gone {
			sum, any = sum+c.amount, true
		}
	}
	return sum, any
}

func newSim(t *rapid.T) *sim {
	n := rapid.IntRange(2, 5).Draw(t, "nodes")
	s := &sim{now: startMS}
	// IDs that are not in creation order, so ties by node are exercised
	// against ties by counter.
	ids := rapid.Permutation([]NodeID{0x10, 0x20, 0x30, 0x40, 0x50}).Draw(t, "ids")
	for i := range n {
		s.nodes = append(s.nodes, simNode{
			id:    ids[i],
			clock: &HLC{},
			skew:  rapid.Int64Range(-maxSkew, maxSkew).Draw(t, "skew"),
		})
	}
	for wi := range s.w {
		w := &world{recs: make([][]Record, n), pending: make([][]delta, n)}
		for i := range n {
			w.recs[i] = make([]Record, numKeys)
		}
		for k := range numKeys {
			w.expiry[k] = map[Dot]int64{}
		}
		s.w[wi] = w
	}
	return s
}

// wall is node n's clock, which feeds its HLC and turns TTLs into expiries.
// Visibility (reads, Incr, Purge) is judged at the common s.now instead: a
// replica whose clock lags sees an entry for a few ms after a faster one has
// purged it, which is accepted behaviour but would make the purging and the
// non-purging world read differently.
func (s *sim) wall(n int) int64 { return s.now + s.nodes[n].skew }

func (s *sim) addPool(k int, r Record) {
	if len(s.pool[k]) < poolSize {
		s.pool[k] = append(s.pool[k], r)
	}
}

// apply merges a local operation's delta into its node, logs it, and queues
// it for every other node.
func (s *sim) apply(t *rapid.T, wi, n, k int, d Record) {
	if err := checkRecord(d); err != nil {
		t.Fatalf("delta breaks invariants: %v: %s", err, fmtRecord(d))
	}
	w := s.w[wi]
	w.recs[n][k] = Merge(w.recs[n][k], d)
	lg := opLog{ctx: d.Context}
	for _, e := range d.Entries {
		lg.dots = append(lg.dots, e.Dot)
		if _, ok := w.expiry[k][e.Dot]; !ok {
			w.expiry[k][e.Dot] = e.Expiry
		}
	}
	w.log[k] = append(w.log[k], lg)
	for m := range s.nodes {
		if m != n {
			w.pending[m] = append(w.pending[m], delta{k, d})
		}
	}
	if wi == realW {
		s.addPool(k, d)
		s.addPool(k, w.recs[n][k])
	}
}

// clientContext draws either no context or one a client read earlier on any
// node (clients fail over between nodes).
func (s *sim) clientContext(t *rapid.T, k int) int {
	if len(s.w[realW].reads[k]) == 0 || rapid.Bool().Draw(t, "no context") {
		return -1
	}
	return rapid.IntRange(0, len(s.w[realW].reads[k])-1).Draw(t, "read")
}

func (w *world) op(n int, id NodeID, ts Timestamp, k, read int) Op {
	op := Op{Node: id, TS: ts}
	if read >= 0 {
		c := w.reads[k][read]
		op.Context = &c
	}
	return op
}

func (s *sim) drawExpiry(t *rapid.T, n int) int64 {
	if rapid.Bool().Draw(t, "ttl") {
		// Occasionally already expired when written.
		return s.wall(n) + rapid.Int64Range(-5, 60).Draw(t, "ttl ms")
	}
	return 0
}

func (s *sim) set(t *rapid.T, n, k, read int, value []byte, expiry int64) {
	ts := s.nodes[n].clock.Now(s.wall(n))
	for wi, w := range s.w {
		op := w.op(n, s.nodes[n].id, ts, k, read)
		d := w.recs[n][k].Set(op, value, expiry)
		checkWrite(t, w.recs[n][k], op, d, Entry{TS: ts, Expiry: expiry, Kind: KindValue, Value: value})
		s.apply(t, wi, n, k, d)
	}
}

func (s *sim) del(t *rapid.T, n, k, read int) {
	ts := s.nodes[n].clock.Now(s.wall(n))
	for wi, w := range s.w {
		op := w.op(n, s.nodes[n].id, ts, k, read)
		d := w.recs[n][k].Delete(op)
		checkWrite(t, w.recs[n][k], op, d, Entry{TS: ts, Kind: KindTomb})
		s.apply(t, wi, n, k, d)
	}
}

// checkWrite checks a Set or Delete delta against its specification: one
// entry under the node's next dot, and a context of exactly what the client
// read (or, without one, all the replica has seen) plus that dot.
func checkWrite(t *rapid.T, r Record, op Op, d Record, want Entry) {
	want.Dot = Dot{Node: op.Node, Counter: r.Context.Max(op.Node) + 1}
	ctx := r.Context
	if op.Context != nil {
		ctx = *op.Context
	}
	ctx = Context{VV: ctx.VV, Cloud: append(slices.Clone(ctx.Cloud), want.Dot)}
	if len(d.Entries) != 1 || !entriesEqual(d.Entries[0], want) || !contextsEqual(d.Context, ctx) {
		t.Fatalf("write delta %s, want entry %+v and context %v %v", fmtRecord(d), want, ctx.VV, ctx.Cloud)
	}
}

func (s *sim) incr(t *rapid.T, n, k int, amount int64) {
	ts := s.nodes[n].clock.Now(s.wall(n))
	var (
		totals [numWorld]int64
		errs   [numWorld]error
	)
	if k == ctrKey && !s.w[realW].recs[n][k].Read(s.now).Found {
		s.ctrObserve(n)
	}
	for wi, w := range s.w {
		d, total, err := w.recs[n][k].Incr(Op{Node: s.nodes[n].id, TS: ts}, amount, s.now)
		totals[wi], errs[wi] = total, err
		if err != nil {
			continue
		}
		if wi == realW && k == ctrKey {
			s.ctrIncrs = append(s.ctrIncrs, ctrIncr{dot: ownCount(d, s.nodes[n].id), amount: amount})
		}
		s.apply(t, wi, n, k, d)
		// Incr reports the value after it on this replica.
		if v := w.recs[n][k].Read(s.now); !v.Found || v.Kind != KindCount || v.Counter != total {
			t.Fatalf("Incr(%d) returned %d but the replica reads %+v", amount, total, v)
		}
	}
	if totals[realW] != totals[shadowW] || !errors.Is(errs[shadowW], errs[realW]) {
		t.Fatalf("purging changed Incr: %d/%v vs %d/%v", totals[realW], errs[realW], totals[shadowW], errs[shadowW])
	}
	switch err := errs[realW]; {
	case err != nil && (k == ctrKey || !errors.Is(err, ErrWrongType)):
		t.Fatalf("Incr on key %d: %v", k, err)
	}
}

// ownCount returns the dot of the count entry an Incr delta made for node.
func ownCount(d Record, node NodeID) Dot {
	var dot Dot
	for _, e := range d.Entries {
		if e.Kind == KindCount && e.Dot.Node == node && e.Dot.Counter > dot.Counter {
			dot = e.Dot
		}
	}
	return dot
}

// delCounter deletes ctrKey on node n.
func (s *sim) delCounter(t *rapid.T, n int) {
	s.ctrObserve(n)
	s.ctrDeleted = true
	s.del(t, n, ctrKey, -1)
}

func (s *sim) read(t *rapid.T, n, k int) {
	for _, w := range s.w {
		r := w.recs[n][k]
		checkVisible(t, r, s.now)
		w.reads[k] = append(w.reads[k], r.Context)
	}
}

// deliver hands node n one pending delta, chosen at random so that deltas
// arrive out of order; mode 0 delivers it, 1 delivers it and keeps it for a
// duplicate delivery, 2 drops it.
func (s *sim) deliver(t *rapid.T, n, i, mode int) {
	s.nodes[n].clock.Observe(s.w[realW].pending[n][i].rec.LastWrite())
	for _, w := range s.w {
		d := w.pending[n][i]
		if mode != 2 {
			merged := Merge(w.recs[n][d.key], d.rec)
			// Once included, the delta changes nothing.
			if again := Merge(merged, d.rec); !recordsEqual(again, merged) {
				t.Fatalf("re-merging an included delta changed the state:\n%s\n%s", fmtRecord(merged), fmtRecord(again))
			}
			w.recs[n][d.key] = merged
		}
		if mode != 1 {
			w.pending[n] = slices.Delete(w.pending[n], i, i+1)
		}
	}
}

func (s *sim) mergeState(i, j, k int) {
	for wi, w := range s.w {
		w.recs[i][k] = Merge(w.recs[i][k], w.recs[j][k])
		if wi == realW {
			s.addPool(k, w.recs[i][k])
		}
	}
	s.nodes[i].clock.Observe(s.w[realW].recs[j][k].LastWrite())
}

func (s *sim) purge(t *rapid.T, n, k int) {
	w := s.w[realW]
	before := w.recs[n][k]
	after, dropped := before.Purge(s.now)
	if dropped != (len(after.Entries) < len(before.Entries)) {
		t.Fatalf("Purge reported %v but went from %d to %d entries", dropped, len(before.Entries), len(after.Entries))
	}
	if !after.Context.Equal(before.Context) {
		t.Fatalf("Purge changed the context")
	}
	for _, e := range before.Entries {
		_, kept := slices.BinarySearchFunc(after.Entries, e.Dot, func(e Entry, d Dot) int { return compareDots(e.Dot, d) })
		if kept != e.Live(s.now) {
			t.Fatalf("Purge at %d kept=%v entry with expiry %d", s.now, kept, e.Expiry)
		}
	}
	w.recs[n][k] = after
	s.addPool(k, after)
}

// syncAll makes every replica merge every other replica's full state.
func (s *sim) syncAll(t *rapid.T) {
	for _, w := range s.w {
		for k := range numKeys {
			var acc Record
			for n := range s.nodes {
				acc = Merge(acc, w.recs[n][k])
			}
			for n := range s.nodes {
				w.recs[n][k] = Merge(w.recs[n][k], acc)
				if !recordsEqual(w.recs[n][k], acc) {
					t.Fatalf("key %d: node %d did not converge:\n%s\n%s", k, n, fmtRecord(w.recs[n][k]), fmtRecord(acc))
				}
				s.nodes[n].clock.Observe(acc.LastWrite())
			}
		}
	}
}

// drain delivers or drops every pending delta, in random order, then
// exchanges full states so that dropped deltas are recovered.
func (s *sim) drain(t *rapid.T) {
	for n := range s.nodes {
		for len(s.w[realW].pending[n]) > 0 {
			i := rapid.IntRange(0, len(s.w[realW].pending[n])-1).Draw(t, "drain")
			s.deliver(t, n, i, rapid.SampledFrom([]int{0, 0, 0, 2}).Draw(t, "drain mode"))
		}
	}
	s.syncAll(t)
}

// checkVisible checks the read rules that hold for every record: nothing
// expired is visible, the winner is the live entry with the highest
// (timestamp, node, counter), and a counter sums its live bases and, for
// each lineage of a node's count entries, its live totals above the
// lineage's reset.
func checkVisible(t *rapid.T, r Record, now int64) {
	v := r.Read(now)
	var w *Entry
	var sum int64
	type lineage struct {
		node   NodeID
		origin uint64
	}
	totals := map[lineage][2]uint64{}
	for i := range r.Entries {
		e := &r.Entries[i]
		if e.Expiry != 0 && e.Expiry <= now {
			continue
		}
		if w == nil || e.TS > w.TS || (e.TS == w.TS && compareDots(e.Dot, w.Dot) > 0) {
			w = e
		}
		switch e.Kind {
		case KindBase:
			sum += int64(e.Inc - e.Dec)
		case KindCount:
			// A lineage is one chain of running totals: its largest
			// counts, but in lineage 0 (written before lineages) they add.
			l, tot := lineage{e.Dot.Node, e.Origin}, totals[lineage{e.Dot.Node, e.Origin}]
			if e.Origin == 0 {
				totals[l] = [2]uint64{tot[0] + e.Inc, tot[1] + e.Dec}
			} else {
				totals[l] = [2]uint64{max(tot[0], e.Inc), max(tot[1], e.Dec)}
			}
		}
	}
	above := func(a, b uint64) uint64 { return a - min(a, b) }
	for l, tot := range totals {
		var inc, dec uint64
		for _, z := range r.Resets {
			if z.Node == l.node && z.Origin == l.origin {
				inc, dec = z.Inc, z.Dec
			}
		}
		sum += int64(above(tot[0], inc) - above(tot[1], dec))
	}
	want := View{}
	if w != nil && w.Kind != KindTomb {
		want = View{Found: true, Kind: w.Kind, Value: w.Value, Expiry: w.Expiry, TS: w.TS, Node: w.Dot.Node}
		if w.Kind == KindCount || w.Kind == KindBase {
			want.Kind = KindCount
			want.Counter = sum
			want.Value = []byte(strconv.FormatInt(sum, 10))
		}
	}
	if !viewsEqual(v, want) {
		t.Fatalf("Read(%d) = %+v, want %+v, of %s", now, v, want, fmtRecord(r))
	}
	if v.Found && v.Expiry != 0 && v.Expiry <= now {
		t.Fatalf("Read(%d) shows an entry that expired at %d", now, v.Expiry)
	}
	for _, e := range r.Live(now) {
		if !e.Live(now) {
			t.Fatalf("Live(%d) returned an entry that expired at %d", now, e.Expiry)
		}
	}
	if r.Dead(now) && v.Found {
		t.Fatalf("Dead(%d) but Read finds %+v", now, v)
	}
}

// checkStep checks what must hold after every step: invariants, read rules,
// and that purging never changes a read.
func (s *sim) checkStep(t *rapid.T) {
	for n := range s.nodes {
		for k := range numKeys {
			for _, w := range s.w {
				if err := checkRecord(w.recs[n][k]); err != nil {
					t.Fatalf("node %d key %d: %v: %s", n, k, err, fmtRecord(w.recs[n][k]))
				}
				checkVisible(t, w.recs[n][k], s.now)
			}
			for _, at := range []int64{s.now, s.now + 1, s.now + 100} {
				a, b := s.w[realW].recs[n][k].Read(at), s.w[shadowW].recs[n][k].Read(at)
				if !viewsEqual(a, b) {
					t.Fatalf("node %d key %d at %d: purged world reads %+v, unpurged %+v\n%s\n%s", n, k, at, a, b,
						fmtRecord(s.w[realW].recs[n][k]), fmtRecord(s.w[shadowW].recs[n][k]))
				}
			}
		}
	}
}

// superseded reports whether some operation's context covers d although its
// delta does not hold d: d was overwritten, deleted or folded by an operation
// that had seen it.
func (w *world) superseded(k int, d Dot) bool {
	for _, lg := range w.log[k] {
		if lg.ctx.Covers(d) && !slices.Contains(lg.dots, d) {
			return true
		}
	}
	return false
}

// checkConverged runs after drain: every replica holds the same state and
// reads the same; the state holds exactly the dots the model says survive.
func (s *sim) checkConverged(t *rapid.T) {
	for wi, w := range s.w {
		for k := range numKeys {
			final := w.recs[0][k]
			for n := range s.nodes {
				if !recordsEqual(w.recs[n][k], final) {
					t.Fatalf("world %d key %d: node %d differs after convergence", wi, k, n)
				}
				for _, at := range []int64{s.now, s.now + 30, s.now + 1000} {
					if a, b := w.recs[n][k].Read(at), final.Read(at); !viewsEqual(a, b) {
						t.Fatalf("key %d: node %d reads %+v, node 0 %+v", k, n, a, b)
					}
				}
			}
			have := map[Dot]bool{}
			for _, e := range final.Entries {
				have[e.Dot] = true
				if _, ok := w.expiry[k][e.Dot]; !ok {
					t.Fatalf("key %d: entry %v was never written", k, e.Dot)
				}
				if w.superseded(k, e.Dot) {
					t.Fatalf("world %d key %d: superseded entry %v came back: %s", wi, k, e.Dot, fmtRecord(final))
				}
			}
			for d, exp := range w.expiry[k] {
				if have[d] || w.superseded(k, d) {
					continue
				}
				// The purging world may have dropped it only if it had expired.
				if wi == realW && exp != 0 && exp <= s.now {
					continue
				}
				t.Fatalf("world %d key %d: dot %v (expiry %d, now %d) lost: %s", wi, k, d, exp, s.now, fmtRecord(final))
			}
		}
	}
	// Exactly the increments no delete saw remain; whether they show
	// depends on whether a delete is later by the clock.
	v := s.w[realW].recs[0][ctrKey].Read(s.now)
	sum, any := s.ctrWant()
	if v.Found && (v.Kind != KindCount || v.Counter != sum) || v.Found && !any || !v.Found && any && !s.ctrDeleted {
		t.Fatalf("counter reads %+v after convergence, want sum %d of %v (deleted: %v): %s", v, sum, s.ctrIncrs, s.ctrDeleted,
			fmtRecord(s.w[realW].recs[0][ctrKey]))
	}
}

// checkDeleteRace ends a run on a converged cluster: one replica deletes key 0
// without a context while some others, not having seen the delete, write it.
// After convergence the record holds the tombstone and the concurrent writes,
// and the read shows the latest of them (not found if that is the delete).
func (s *sim) checkDeleteRace(t *rapid.T) {
	const k = 0
	x := rapid.IntRange(0, len(s.nodes)-1).Draw(t, "deleter")
	s.del(t, x, k, -1)
	tomb := s.w[realW].recs[x][k].Entries
	want := []Entry{}
	for _, e := range tomb {
		if e.Kind == KindTomb {
			want = append(want, e)
		}
	}
	if len(want) != 1 || len(tomb) != 1 {
		t.Fatalf("a delete with no context left %s", fmtRecord(s.w[realW].recs[x][k]))
	}
	// The counter too: a delete while others increment, not having seen it.
	s.delCounter(t, x)
	for n := range s.nodes {
		if n != x && rapid.Bool().Draw(t, "concurrent write") {
			s.set(t, n, k, -1, []byte("racer"), s.drawExpiry(t, n))
			want = append(want, s.w[realW].recs[n][k].Entries...)
		}
		if n != x && rapid.Bool().Draw(t, "concurrent increment") {
			s.incr(t, n, ctrKey, rapid.Int64Range(-50, 50).Draw(t, "amount"))
		}
	}
	s.now += rapid.Int64Range(0, 40).Draw(t, "advance")
	s.drain(t)
	s.checkConverged(t)
	slices.SortFunc(want, func(a, b Entry) int { return compareDots(a.Dot, b.Dot) })
	for wi, w := range s.w {
		if got := w.recs[0][k].Entries; !slices.EqualFunc(got, want, entriesEqual) {
			t.Fatalf("world %d: after a delete raced with writes: %s, want entries %v", wi, fmtRecord(w.recs[0][k]), want)
		}
	}
	checkVisible(t, s.w[shadowW].recs[0][k], s.now)
}

// step performs one random action.
func (s *sim) step(t *rapid.T) {
	n := rapid.IntRange(0, len(s.nodes)-1).Draw(t, "node")
	switch action := rapid.IntRange(0, 99).Draw(t, "action"); {
	case action < 18:
		k := rapid.IntRange(0, regKeys-1).Draw(t, "key")
		value := rapid.OneOf(
			rapid.SampledFrom([][]byte{[]byte("a"), []byte("b"), nil, {}}),
			rapid.Map(rapid.Int64Range(-50, 50), func(i int64) []byte { return strconv.AppendInt(nil, i, 10) }),
		).Draw(t, "value")
		s.set(t, n, k, s.clientContext(t, k), value, s.drawExpiry(t, n))
	case action < 26:
		k := rapid.IntRange(0, regKeys-1).Draw(t, "key")
		s.del(t, n, k, s.clientContext(t, k))
	case action < 42:
		k := rapid.SampledFrom([]int{0, 1, ctrKey, ctrKey, ctrKey}).Draw(t, "key")
		s.incr(t, n, k, rapid.Int64Range(-1000, 1000).Draw(t, "amount"))
	case action < 50:
		s.read(t, n, rapid.IntRange(0, numKeys-1).Draw(t, "key"))
	case action < 72:
		if p := len(s.w[realW].pending[n]); p > 0 {
			s.deliver(t, n, rapid.IntRange(0, p-1).Draw(t, "pending"), rapid.SampledFrom([]int{0, 0, 0, 1, 2}).Draw(t, "mode"))
		}
	case action < 82:
		j := rapid.IntRange(0, len(s.nodes)-1).Draw(t, "from")
		if j != n {
			s.mergeState(n, j, rapid.IntRange(0, numKeys-1).Draw(t, "key"))
		}
	case action < 92:
		s.now += rapid.Int64Range(0, 30).Draw(t, "advance")
	case action < 96:
		s.purge(t, n, rapid.IntRange(0, numKeys-1).Draw(t, "key"))
	default:
		s.delCounter(t, n)
	}
	s.steps++
}

// runSim builds a reachable history: random steps, then convergence.
func runSim(t *rapid.T) *sim {
	s := newSim(t)
	steps := rapid.IntRange(1, 80).Draw(t, "steps")
	for range steps {
		s.step(t)
		s.checkStep(t)
	}
	s.now += rapid.Int64Range(0, 100).Draw(t, "final advance")
	s.drain(t)
	s.checkStep(t)
	s.checkConverged(t)
	return s
}

func TestPropConvergence(t *testing.T) {
	var cases, steps int
	rapid.Check(t, func(t *rapid.T) {
		s := runSim(t)
		s.checkDeleteRace(t)
		cases++
		steps += s.steps
	})
	t.Logf("convergence: %d histories, %d steps", cases, steps)
}

// TestPropMergeLaws checks the semilattice laws on records reachable in the
// simulation: states and deltas of one key.
func TestPropMergeLaws(t *testing.T) {
	var cases, triples int
	rapid.Check(t, func(t *rapid.T) {
		s := runSim(t)
		for k := range numKeys {
			pool := s.pool[k]
			if len(pool) == 0 {
				continue
			}
			pick := rapid.IntRange(0, len(pool)-1)
			for range 8 {
				a, b, c := pool[pick.Draw(t, "a")], pool[pick.Draw(t, "b")], pool[pick.Draw(t, "c")]
				checkLaws(t, a, b, c, s.now+rapid.Int64Range(-100, 100).Draw(t, "purge at"))
				triples++
			}
		}
		cases++
	})
	t.Logf("merge laws: %d histories, %d triples", cases, triples)
}

func checkLaws(t *rapid.T, a, b, c Record, purgeAt int64) {
	ab, ba := Merge(a, b), Merge(b, a)
	for _, r := range []Record{ab, ba} {
		if err := checkRecord(r); err != nil {
			t.Fatalf("merge breaks invariants: %v", err)
		}
	}
	if !recordsEqual(ab, ba) {
		t.Fatalf("not commutative:\na  %s\nb  %s\nab %s\nba %s", fmtRecord(a), fmtRecord(b), fmtRecord(ab), fmtRecord(ba))
	}
	// Replicas that merged the same records in either order agree in a
	// digest sync.
	if applied := covering(ab.Context); ab.Fingerprint([]byte("k"), purgeAt, applied) != ba.Fingerprint([]byte("k"), purgeAt, applied) {
		t.Fatalf("fingerprints disagree after merging in either order: %s", fmtRecord(ab))
	}
	if l, r := Merge(ab, c), Merge(a, Merge(b, c)); !recordsEqual(l, r) {
		t.Fatalf("not associative:\na %s\nb %s\nc %s\n(ab)c %s\na(bc) %s",
			fmtRecord(a), fmtRecord(b), fmtRecord(c), fmtRecord(l), fmtRecord(r))
	}
	if aa := Merge(a, a); !recordsEqual(aa, a) {
		t.Fatalf("not idempotent: %s -> %s", fmtRecord(a), fmtRecord(aa))
	}
	if again := Merge(ab, b); !recordsEqual(again, ab) {
		t.Fatalf("re-merging an included record changed the state")
	}
	// Purge before a merge changes no read at or after the purge time.
	pa, _ := a.Purge(purgeAt)
	pb, _ := b.Purge(purgeAt)
	for _, at := range []int64{purgeAt, purgeAt + 1, purgeAt + 50} {
		want := ab.Read(at)
		for _, got := range []Record{Merge(pa, b), Merge(a, pb), Merge(pa, pb), Merge(pb, pa)} {
			if !viewsEqual(got.Read(at), want) {
				t.Fatalf("purge at %d changed the read at %d: %+v vs %+v", purgeAt, at, got.Read(at), want)
			}
		}
	}
}

// TestPropIncrConvertsOnce: a numeric register that several replicas turn
// into a counter concurrently ends as its value plus every increment, not the
// value counted once per converting replica.
func TestPropIncrConvertsOnce(t *testing.T) {
	var cases int
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t)
		base := rapid.Int64Range(-100, 100).Draw(t, "base")
		s.set(t, rapid.IntRange(0, len(s.nodes)-1).Draw(t, "setter"), 0, -1, []byte(strconv.FormatInt(base, 10)), 0)
		s.syncAll(t)
		want := base
		for range rapid.IntRange(1, 30).Draw(t, "steps") {
			n := rapid.IntRange(0, len(s.nodes)-1).Draw(t, "node")
			switch rapid.IntRange(0, 2).Draw(t, "action") {
			case 0:
				amount := rapid.Int64Range(-10, 10).Draw(t, "amount")
				s.incr(t, n, 0, amount)
				want += amount
			case 1:
				if p := len(s.w[realW].pending[n]); p > 0 {
					s.deliver(t, n, rapid.IntRange(0, p-1).Draw(t, "pending"), rapid.IntRange(0, 2).Draw(t, "mode"))
				}
			case 2:
				if j := rapid.IntRange(0, len(s.nodes)-1).Draw(t, "from"); j != n {
					s.mergeState(n, j, 0)
				}
			}
			s.checkStep(t)
		}
		s.drain(t)
		v := s.w[realW].recs[0][0].Read(s.now)
		if got, err := strconv.ParseInt(string(v.Value), 10, 64); !v.Found || err != nil || got != want {
			t.Fatalf("counter converted from %d reads %+v, want %d: %s", base, v, want, fmtRecord(s.w[realW].recs[0][0]))
		}
		cases++
	})
	t.Logf("conversions: %d histories", cases)
}
