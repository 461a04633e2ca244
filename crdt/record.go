package crdt

import (
	"bytes"
	"slices"
	"strconv"
)

// Kind says what an entry holds.
type Kind uint8

const (
	KindValue Kind = 0 // a register value
	KindTomb  Kind = 1 // a delete
	KindCount Kind = 2 // one node's PN-counter totals
	KindBase  Kind = 3 // the register value a counter started from
)

// Entry is one dot-tagged element of a Record.
type Entry struct {
	Dot    Dot
	TS     Timestamp // when it was written, for choosing a winner
	Expiry int64     // Unix ms after which it is invisible; 0: never
	Kind   Kind
	Value  []byte // KindValue only
	Inc    uint64 // KindCount: the node's total increments; KindBase: a positive start
	Dec    uint64 // KindCount: the node's total decrements; KindBase: a negative start
	// Origin (KindCount only) names the lineage of the node's totals: the
	// counter of the dot that started them from zero (0: totals written
	// before lineages existed). A reset applies to one lineage.
	Origin uint64
}

// Counts reports whether the entry adds to a counter (a count or a base).
func (e *Entry) Counts() bool { return e.Kind == KindCount || e.Kind == KindBase }

// Reset is an observed reset: the totals of one lineage of a node's count
// entries that a write superseding them saw. A read counts only the
// lineage's totals above it, so increments the write did not see survive it
// and those it saw do not come back through the node's later, larger
// totals. A lineage's totals never fall, so resets merge by pointwise
// maximum.
type Reset struct {
	Node   NodeID
	Origin uint64
	Inc    uint64
	Dec    uint64
}

func compareLineages(an NodeID, ao uint64, bn NodeID, bo uint64) int {
	switch {
	case an < bn:
		return -1
	case an > bn:
		return 1
	case ao < bo:
		return -1
	case ao > bo:
		return 1
	}
	return 0
}

// Live reports whether the entry is visible at nowMS (tombstones included).
func (e *Entry) Live(nowMS int64) bool { return e.Expiry == 0 || e.Expiry > nowMS }

// wins reports whether e beats o as a register winner: later timestamp, ties
// broken by node ID and then counter so every replica picks the same one.
func (e *Entry) wins(o *Entry) bool {
	if e.TS != o.TS {
		return e.TS > o.TS
	}
	return compareDots(e.Dot, o.Dot) > 0
}

// Record is one key's replicated state: entries sorted by dot, and the causal
// context of everything the holder has seen of the key. Every entry's dot is
// in the context. Resets, sorted by node and origin, hold the observed reset
// of each lineage a write superseded; they stay with the record. Records are
// treated as immutable values: operations return new records and never
// modify their inputs' slices.
type Record struct {
	Entries []Entry
	Context Context
	Resets  []Reset
}

// resetOf returns the reset of node n's lineage origin, zero when none.
func (r Record) resetOf(n NodeID, origin uint64) Reset {
	for _, z := range r.Resets {
		if z.Node == n && z.Origin == origin {
			return z
		}
	}
	return Reset{Node: n, Origin: origin}
}

// mergeResets returns the pointwise maximum of a and b.
func mergeResets(a, b []Reset) []Reset {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]Reset, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareLineages(a[i].Node, a[i].Origin, b[j].Node, b[j].Origin); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, Reset{a[i].Node, a[i].Origin, max(a[i].Inc, b[j].Inc), max(a[i].Dec, b[j].Dec)})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// writeResets returns the resets of a write whose context is c: the
// record's, raised to the totals of every lineage with count entries c
// covers. Expired entries count too: their node may not have seen them
// expire, and its later totals include them.
func (r Record) writeResets(c Context) []Reset {
	var seen []Reset
	for i := range r.Entries {
		e := &r.Entries[i]
		if e.Kind != KindCount || !c.Covers(e.Dot) || e.Inc == 0 && e.Dec == 0 {
			continue
		}
		k := slices.IndexFunc(seen, func(z Reset) bool { return z.Node == e.Dot.Node && z.Origin == e.Origin })
		if k < 0 {
			seen = append(seen, Reset{Node: e.Dot.Node, Origin: e.Origin})
			k = len(seen) - 1
		}
		seen[k].Inc, seen[k].Dec = addTotals(e.Origin, seen[k].Inc, seen[k].Dec, e)
	}
	if len(seen) == 0 {
		return r.Resets
	}
	slices.SortFunc(seen, func(a, b Reset) int { return compareLineages(a.Node, a.Origin, b.Node, b.Origin) })
	return mergeResets(r.Resets, seen)
}

// Merge returns the join of a and b. It is commutative, associative and
// idempotent.
func Merge(a, b Record) Record { return MergeSeen(a, nil, b, nil) }

// MergeSeen is Merge between the records of two replicas that also know
// what they have seen beyond the records' contexts: aSeen and bSeen are the
// replicas' applied vectors, under which a replica has merged every delta
// whatever its key (a node applies each origin's log in order and dots are
// its log's sequence numbers). An entry of one side is dropped when the
// other side does not hold it and its context covers the dot (a write
// there superseded it), or, for any entry but a tombstone, its seen vector
// does. This is what keeps a dropped tombstone dropped: a stale replica's
// record, merged whole (a snapshot), cannot bring back a value the
// receiver saw deleted, though the receiver no longer holds the tombstone.
// A tombstone covered only by the other side's seen vector stays: the other
// side may have collected it, which says nothing of this side's need for
// it (a parent domain holds writes of other subtrees, concurrent with the
// delete, which the tombstone still hides), and keeping a tombstone never
// shows anything it did not beat. The result's context is the union of the
// records' contexts only.
func MergeSeen(a Record, aSeen VersionVector, b Record, bSeen VersionVector) Record {
	if len(b.Entries) == 0 && b.Context.IsZero() && len(b.Resets) == 0 && (len(a.Entries) == 0 || len(bSeen) == 0) {
		return a
	}
	if len(a.Entries) == 0 && a.Context.IsZero() && len(a.Resets) == 0 && (len(b.Entries) == 0 || len(aSeen) == 0) {
		return b
	}
	out := make([]Entry, 0, len(a.Entries)+len(b.Entries))
	i, j := 0, 0
	for i < len(a.Entries) || j < len(b.Entries) {
		var c int
		switch {
		case i == len(a.Entries):
			c = 1
		case j == len(b.Entries):
			c = -1
		default:
			c = compareDots(a.Entries[i].Dot, b.Entries[j].Dot)
		}
		switch {
		case c < 0:
			if e := &a.Entries[i]; !droppedBy(e, b.Context, bSeen) {
				out = append(out, *e)
			}
			i++
		case c > 0:
			if e := &b.Entries[j]; !droppedBy(e, a.Context, aSeen) {
				out = append(out, *e)
			}
			j++
		default:
			out = append(out, sameDot(&a.Entries[i], &b.Entries[j]))
			i++
			j++
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return Record{Entries: out, Context: MergeContext(a.Context, b.Context), Resets: mergeResets(a.Resets, b.Resets)}
}

// droppedBy reports whether e, held by one side of MergeSeen only, is to
// be dropped: the other side's context covers it, or its seen vector does
// and e is no tombstone.
func droppedBy(e *Entry, otherCtx Context, otherSeen VersionVector) bool {
	return otherCtx.Covers(e.Dot) || (e.Kind != KindTomb && otherSeen.Covers(e.Dot))
}

// sameDot picks between two entries with one dot. They are equal unless a
// dot was reused (a replica lost state); picking by content keeps Merge
// commutative even then.
func sameDot(a, b *Entry) Entry {
	if a.TS != b.TS {
		if a.TS > b.TS {
			return *a
		}
		return *b
	}
	if a.Kind != b.Kind {
		if a.Kind > b.Kind {
			return *a
		}
		return *b
	}
	if a.Expiry != b.Expiry {
		if a.Expiry > b.Expiry {
			return *a
		}
		return *b
	}
	if a.Inc != b.Inc || a.Dec != b.Dec {
		if a.Inc > b.Inc || (a.Inc == b.Inc && a.Dec > b.Dec) {
			return *a
		}
		return *b
	}
	if a.Origin != b.Origin {
		if a.Origin > b.Origin {
			return *a
		}
		return *b
	}
	if bytes.Compare(a.Value, b.Value) >= 0 {
		return *a
	}
	return *b
}

// View is what a read of a record shows at one instant.
type View struct {
	Found   bool
	Kind    Kind   // KindValue or KindCount when Found
	Value   []byte // the winning value; a counter's decimal value
	Counter int64  // KindCount only
	Expiry  int64  // the winner's expiry, Unix ms; 0: never
	TS      Timestamp
	Node    NodeID // writer of the winner
}

// Read returns the record's visible value at nowMS: the live entry with the
// highest timestamp wins; a winning tombstone means not found; a winning count
// or base entry means the value is the counter's (see Contribution).
func (r Record) Read(nowMS int64) View {
	w := r.winner(nowMS)
	if w == nil || w.Kind == KindTomb {
		return View{}
	}
	v := View{Found: true, Kind: w.Kind, Expiry: w.Expiry, TS: w.TS, Node: w.Dot.Node}
	if w.Counts() {
		v.Kind = KindCount
		v.Counter = r.count(nowMS)
		v.Value = strconv.AppendInt(nil, v.Counter, 10)
		return v
	}
	v.Value = w.Value
	return v
}

// Live returns the entries visible at nowMS (siblings), tombstones included.
func (r Record) Live(nowMS int64) []Entry {
	var out []Entry
	for i := range r.Entries {
		if r.Entries[i].Live(nowMS) {
			out = append(out, r.Entries[i])
		}
	}
	return out
}

// Dead reports whether nothing in the record is visible at nowMS: a read finds
// nothing and only the context (and tombstones) remain.
func (r Record) Dead(nowMS int64) bool {
	for i := range r.Entries {
		if e := &r.Entries[i]; e.Kind != KindTomb && e.Live(nowMS) {
			return false
		}
	}
	return true
}

// NextExpiry returns the earliest expiry among entries still live at nowMS,
// or 0 when none will expire.
func (r Record) NextExpiry(nowMS int64) int64 {
	var next int64
	for i := range r.Entries {
		if x := r.Entries[i].Expiry; x > nowMS && (next == 0 || x < next) {
			next = x
		}
	}
	return next
}

// LastWrite returns the highest timestamp among the record's entries.
func (r Record) LastWrite() Timestamp {
	var ts Timestamp
	for i := range r.Entries {
		ts = max(ts, r.Entries[i].TS)
	}
	return ts
}

func (r Record) winner(nowMS int64) *Entry {
	var w *Entry
	for i := range r.Entries {
		e := &r.Entries[i]
		if e.Live(nowMS) && (w == nil || e.wins(w)) {
			w = e
		}
	}
	return w
}

// count returns the counter's value at nowMS: the live bases, plus each
// lineage's live totals above its reset.
func (r Record) count(nowMS int64) int64 {
	var sum int64
	for i := range r.Entries {
		e := &r.Entries[i]
		switch {
		case !e.Live(nowMS):
		case e.Kind == KindBase:
			sum += int64(e.Inc - e.Dec)
		case e.Kind == KindCount && r.firstOfLineage(i, nowMS):
			inc, dec := r.totals(e.Dot.Node, e.Origin, nowMS)
			z := r.resetOf(e.Dot.Node, e.Origin)
			sum += int64(sub(inc, z.Inc) - sub(dec, z.Dec))
		}
	}
	return sum
}

// Contribution returns what the live entry e of r shows of r's counter: a
// base's value; for a count entry, its totals above its lineage's reset (a
// replica that missed a link of the lineage's chain holds an older entry
// too, which the counter does not add); 0 for other kinds.
func (r Record) Contribution(e Entry) int64 {
	switch e.Kind {
	case KindBase:
		return int64(e.Inc - e.Dec)
	case KindCount:
		z := r.resetOf(e.Dot.Node, e.Origin)
		return int64(sub(e.Inc, z.Inc) - sub(e.Dec, z.Dec))
	}
	return 0
}

// firstOfLineage reports whether entry i is the first live count entry of
// its lineage (a node's entries are adjacent, sorted by dot).
func (r Record) firstOfLineage(i int, nowMS int64) bool {
	e := &r.Entries[i]
	for j := i - 1; j >= 0 && r.Entries[j].Dot.Node == e.Dot.Node; j-- {
		if o := &r.Entries[j]; o.Kind == KindCount && o.Origin == e.Origin && o.Live(nowMS) {
			return false
		}
	}
	return true
}

// totals returns the totals of the live count entries of node n's lineage
// origin (see addTotals).
func (r Record) totals(n NodeID, origin uint64, nowMS int64) (inc, dec uint64) {
	for i := range r.Entries {
		if e := &r.Entries[i]; e.Dot.Node == n && e.Kind == KindCount && e.Origin == origin && e.Live(nowMS) {
			inc, dec = addTotals(origin, inc, dec, e)
		}
	}
	return inc, dec
}

// addTotals adds count entry e to a lineage's totals inc and dec. The
// entries of a lineage are one chain of the node's running totals, each
// folding the one before, and a replica that missed a link holds two of
// them, so a lineage totals its largest. Lineage 0, from before lineages
// existed, also holds a base converted from a register value beside the
// node's own totals: its entries add up.
func addTotals(origin, inc, dec uint64, e *Entry) (uint64, uint64) {
	if origin == 0 {
		return inc + e.Inc, dec + e.Dec
	}
	return max(inc, e.Inc), max(dec, e.Dec)
}

// sub is a-b, or 0 below: a lineage whose entries expired in part may hold
// less than its reset.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// PurgeKeepingLastWrite is Purge for a store that counts a dead record's
// tombstone horizon from its last write: when dropping the expired entries
// would lower LastWrite, the latest of them stays as a stub without its
// value. It reports whether the record changed.
func (r Record) PurgeKeepingLastWrite(nowMS int64) (Record, bool) {
	p, dropped := r.Purge(nowMS)
	if !dropped {
		return r, false
	}
	last := r.LastWrite()
	if p.LastWrite() == last {
		return p, true
	}
	var stub Entry
	for _, e := range r.Entries {
		if !e.Live(nowMS) && e.TS == last {
			stub = e
			break
		}
	}
	if len(p.Entries)+1 == len(r.Entries) && len(stub.Value) == 0 {
		return r, false // the stub alone was expired, and it holds no bytes
	}
	stub.Value = nil
	entries := make([]Entry, 0, len(p.Entries)+1)
	i := 0
	for ; i < len(p.Entries) && compareDots(p.Entries[i].Dot, stub.Dot) < 0; i++ {
		entries = append(entries, p.Entries[i])
	}
	entries = append(entries, stub)
	entries = append(entries, p.Entries[i:]...)
	return Record{Entries: entries, Context: p.Context, Resets: p.Resets}, true
}

// Purge drops entries expired at nowMS, keeping their dots in the context,
// which makes the drop a delete that merges correctly with replicas still
// holding them. It reports whether anything was dropped.
func (r Record) Purge(nowMS int64) (Record, bool) {
	keep := slices.IndexFunc(r.Entries, func(e Entry) bool { return !e.Live(nowMS) })
	if keep < 0 {
		return r, false
	}
	out := make([]Entry, 0, len(r.Entries)-1)
	for i := range r.Entries {
		if r.Entries[i].Live(nowMS) {
			out = append(out, r.Entries[i])
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return Record{Entries: out, Context: r.Context, Resets: r.Resets}, true
}

// Op describes a local write. Node and TS identify the writer and its clock
// reading; Seq is the writer's sequence number for the write (its log
// sequence number), which becomes the new dot's counter; Context is the
// causal context the client read (nil: supersede all the node has seen of
// the key).
//
// Seq must grow across all of the writer's keys, never per key: a record
// whose context was dropped (a tombstone past causal stability) would
// otherwise restart its dots at 1, and replicas still holding the old
// context would take the new write for one they had already superseded. A
// zero Seq (tests of this package) falls back to one past the record's
// highest dot of Node.
type Op struct {
	Node    NodeID
	TS      Timestamp
	Seq     uint64
	Context *Context
}

// nextDot returns the writer's dot for op: its sequence number, or one past
// the record's highest dot of the writer if that is larger (it never is when
// Seq comes from the writer's log).
func (r Record) nextDot(op Op) Dot {
	return Dot{Node: op.Node, Counter: max(op.Seq, r.Context.Max(op.Node)+1)}
}

// superseded returns the context of a write with dot d: the client's, plus
// d; without one, everything the writing node has seen of the key, which
// includes every earlier dot of its own on the key (the writer holds its own
// writes), so the vector rises to d and the context stays compact although
// the writer's dots on one key are far apart.
func (r Record) superseded(op Op, d Dot) Context {
	if op.Context != nil {
		return op.Context.Add(d)
	}
	return r.Context.Raise(d)
}

// Set returns the delta of writing value with an expiry (Unix ms, 0: never).
// The delta carries the record's resets, raised by the counts it supersedes.
func (r Record) Set(op Op, value []byte, expiry int64) Record {
	d := r.nextDot(op)
	c := r.superseded(op, d)
	return Record{
		Entries: []Entry{{Dot: d, TS: op.TS, Expiry: expiry, Kind: KindValue, Value: value}},
		Context: c,
		Resets:  r.writeResets(c),
	}
}

// Delete returns the delta of deleting the key: a tombstone that supersedes
// what the context covers. It observes the counts it supersedes (see
// Reset), so a concurrent increment elsewhere leaves exactly what the delete
// did not see.
func (r Record) Delete(op Op) Record {
	d := r.nextDot(op)
	c := r.superseded(op, d)
	return Record{
		Entries: []Entry{{Dot: d, TS: op.TS, Kind: KindTomb}},
		Context: c,
		Resets:  r.writeResets(c),
	}
}

// Incr returns the delta of adding n to the key's counter at nowMS, and the
// counter's value after it on this replica. A missing or deleted key starts
// from zero; a register value that parses as an integer becomes a counter
// starting from it; any other value is ErrWrongType. The winner's expiry is
// kept. op.Context is ignored: counting never supersedes other nodes'
// counts. The delta carries the record's resets, so that a replica which
// no longer holds them (it collected the key) counts this node's totals
// from the same reset.
func (r Record) Incr(op Op, n int64, nowMS int64) (Record, int64, error) {
	w := r.winner(nowMS)
	op.Context = nil // counting supersedes no client-read state
	d := r.nextDot(op)
	switch {
	case w == nil || w.Kind == KindTomb:
		// A fresh start supersedes, and so observes, every count left.
		c := r.superseded(op, d)
		resets := r.writeResets(c)
		return Record{
			Entries: []Entry{restart(resets, d, op.TS, 0, n)},
			Context: c,
			Resets:  resets,
		}, n, nil
	case w.Kind == KindValue:
		base, err := strconv.ParseInt(string(w.Value), 10, 64)
		if err != nil {
			return Record{}, 0, ErrWrongType
		}
		total, ok := addInt64(base, n)
		if !ok {
			return Record{}, 0, ErrOverflow
		}
		// The value becomes a base entry under its own dot, timestamp and
		// expiry, so every replica that converts it concurrently makes the
		// same entry and the base is counted once; this node's change goes
		// in a count entry of its own. The context supersedes the other
		// siblings.
		c := r.superseded(op, d)
		resets := r.writeResets(c)
		entries := []Entry{baseEntry(w, base), restart(resets, d, op.TS, w.Expiry, n)}
		if compareDots(d, w.Dot) < 0 {
			entries[0], entries[1] = entries[1], entries[0]
		}
		return Record{Entries: entries, Context: c, Resets: resets}, total, nil
	}
	total, ok := addInt64(r.count(nowMS), n)
	if !ok {
		return Record{}, 0, ErrOverflow
	}
	// Fold this node's own count entries into one, which goes on with their
	// lineage; other nodes' entries stay, so concurrent increments elsewhere
	// are never lost. The context covers exactly the folded dots: not this
	// node's other dots, since a register value of its own that another
	// node converts concurrently becomes the counter's base under that
	// value's dot.
	cloud := []Dot{d}
	lineage, own := uint64(0), false
	for i := range r.Entries {
		if o := &r.Entries[i]; o.Dot.Node == op.Node && o.Kind == KindCount {
			cloud = append(cloud, o.Dot)
			if !own || o.Origin > lineage {
				lineage, own = o.Origin, true
			}
		}
	}
	if !own {
		e := restart(r.Resets, d, op.TS, w.Expiry, n)
		return Record{Entries: []Entry{e}, Context: normalize(nil, cloud), Resets: r.Resets}, total, nil
	}
	// The lineage's totals never fall below its reset, which its expired
	// entries may have left it under.
	inc, dec := r.totals(op.Node, lineage, nowMS)
	z := r.resetOf(op.Node, lineage)
	e := Entry{Dot: d, TS: op.TS, Expiry: w.Expiry, Kind: KindCount, Origin: lineage, Inc: max(inc, z.Inc), Dec: max(dec, z.Dec)}
	// Another lineage of this node (only in records written before
	// lineages existed met by one written after) moves over what it counts.
	for i := range r.Entries {
		o := &r.Entries[i]
		if o.Dot.Node != op.Node || o.Kind != KindCount || o.Origin == lineage || !o.Live(nowMS) || !r.firstOfLineage(i, nowMS) {
			continue
		}
		oi, od := r.totals(op.Node, o.Origin, nowMS)
		oz := r.resetOf(op.Node, o.Origin)
		e.Inc += sub(oi, oz.Inc)
		e.Dec += sub(od, oz.Dec)
	}
	addSigned(&e, n)
	return Record{Entries: []Entry{e}, Context: normalize(nil, cloud), Resets: r.Resets}, total, nil
}

// restart returns the count entry of d's node adding n after its count
// entries were superseded: the node's lineage of highest origin in resets
// goes on from its reset (a lineage's totals never fall), or, with none, a
// lineage starts at d.
func restart(resets []Reset, d Dot, ts Timestamp, expiry, n int64) Entry {
	e := Entry{Dot: d, TS: ts, Expiry: expiry, Kind: KindCount, Origin: d.Counter}
	for _, z := range resets { // sorted: the node's last is its highest
		if z.Node == d.Node {
			e.Origin, e.Inc, e.Dec = z.Origin, z.Inc, z.Dec
		}
	}
	addSigned(&e, n)
	return e
}

// baseEntry returns the base entry of the register value w holding v.
func baseEntry(w *Entry, v int64) Entry {
	e := Entry{Dot: w.Dot, TS: w.TS, Expiry: w.Expiry, Kind: KindBase}
	addSigned(&e, v)
	return e
}

func addSigned(e *Entry, n int64) {
	if n >= 0 {
		e.Inc += uint64(n)
	} else {
		e.Dec += uint64(-n) // -MinInt64 wraps to itself, whose uint64 is right
	}
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
