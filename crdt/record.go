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
)

// Entry is one dot-tagged element of a Record.
type Entry struct {
	Dot    Dot
	TS     Timestamp // when it was written, for choosing a winner
	Expiry int64     // Unix ms after which it is invisible; 0: never
	Kind   Kind
	Value  []byte // KindValue only
	Inc    uint64 // KindCount only: the node's total increments
	Dec    uint64 // KindCount only: the node's total decrements
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
// in the context. Records are treated as immutable values: operations return
// new records and never modify their inputs' slices.
type Record struct {
	Entries []Entry
	Context Context
}

// Merge returns the join of a and b. It is commutative, associative and
// idempotent.
func Merge(a, b Record) Record { return MergeSeen(a, nil, b, nil) }

// MergeSeen is Merge between the records of two replicas that also know
// what they have seen beyond the records' contexts: aSeen and bSeen are the
// replicas' applied vectors, under which a replica has merged every delta
// whatever its key (a node applies each origin's log in order and dots are
// its log's sequence numbers). An entry of one side is dropped when the
// other side's context or seen vector covers its dot and the other side does
// not hold it. This is what keeps a dropped tombstone dropped: a stale
// replica's record, merged whole (a snapshot), cannot bring back a value the
// receiver saw deleted, though the receiver no longer holds the tombstone.
// The result's context is the union of the records' contexts only.
func MergeSeen(a Record, aSeen VersionVector, b Record, bSeen VersionVector) Record {
	if len(b.Entries) == 0 && b.Context.IsZero() && (len(a.Entries) == 0 || len(bSeen) == 0) {
		return a
	}
	if len(a.Entries) == 0 && a.Context.IsZero() && (len(b.Entries) == 0 || len(aSeen) == 0) {
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
			if e := &a.Entries[i]; !b.Context.Covers(e.Dot) && !bSeen.Covers(e.Dot) {
				out = append(out, *e)
			}
			i++
		case c > 0:
			if e := &b.Entries[j]; !a.Context.Covers(e.Dot) && !aSeen.Covers(e.Dot) {
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
	return Record{Entries: out, Context: MergeContext(a.Context, b.Context)}
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
// entry means the value is the sum of all live count entries.
func (r Record) Read(nowMS int64) View {
	w := r.winner(nowMS)
	if w == nil || w.Kind == KindTomb {
		return View{}
	}
	v := View{Found: true, Kind: w.Kind, Expiry: w.Expiry, TS: w.TS, Node: w.Dot.Node}
	if w.Kind == KindCount {
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

func (r Record) count(nowMS int64) int64 {
	var sum int64
	for i := range r.Entries {
		if e := &r.Entries[i]; e.Kind == KindCount && e.Live(nowMS) {
			sum += int64(e.Inc - e.Dec)
		}
	}
	return sum
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
	return Record{Entries: entries, Context: p.Context}, true
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
	return Record{Entries: out, Context: r.Context}, true
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
func (r Record) Set(op Op, value []byte, expiry int64) Record {
	d := r.nextDot(op)
	return Record{
		Entries: []Entry{{Dot: d, TS: op.TS, Expiry: expiry, Kind: KindValue, Value: value}},
		Context: r.superseded(op, d),
	}
}

// Delete returns the delta of deleting the key: a tombstone that supersedes
// what the context covers.
func (r Record) Delete(op Op) Record {
	d := r.nextDot(op)
	return Record{
		Entries: []Entry{{Dot: d, TS: op.TS, Kind: KindTomb}},
		Context: r.superseded(op, d),
	}
}

// Incr returns the delta of adding n to the key's counter at nowMS, and the
// counter's value after it on this replica. A missing or deleted key starts
// from zero; a register value that parses as an integer becomes a counter
// starting from it; any other value is ErrWrongType. The winner's expiry is
// kept. op.Context is ignored: counting never supersedes other nodes'
// counts.
func (r Record) Incr(op Op, n int64, nowMS int64) (Record, int64, error) {
	w := r.winner(nowMS)
	op.Context = nil // counting supersedes no client-read state
	d := r.nextDot(op)
	switch {
	case w == nil || w.Kind == KindTomb:
		return Record{
			Entries: []Entry{countEntry(d, op.TS, 0, n)},
			Context: r.superseded(op, d),
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
		// The value becomes a count entry under its own dot, timestamp and
		// expiry, so every replica that converts it concurrently makes the
		// same entry and the base is counted once; this node's change goes
		// in an entry of its own. The context supersedes the other siblings.
		entries := []Entry{countEntry(w.Dot, w.TS, w.Expiry, base), countEntry(d, op.TS, w.Expiry, n)}
		if compareDots(d, w.Dot) < 0 {
			entries[0], entries[1] = entries[1], entries[0]
		}
		return Record{Entries: entries, Context: r.superseded(op, d)}, total, nil
	}
	total, ok := addInt64(r.count(nowMS), n)
	if !ok {
		return Record{}, 0, ErrOverflow
	}
	// Fold this node's own count entries into one; other nodes' entries
	// stay, so concurrent increments elsewhere are never lost. The context
	// covers exactly the folded dots: not this node's other dots, since a
	// register value of its own that another node converts concurrently
	// becomes the counter's base under that value's dot.
	e := Entry{Dot: d, TS: op.TS, Expiry: w.Expiry, Kind: KindCount}
	cloud := []Dot{d}
	for i := range r.Entries {
		o := &r.Entries[i]
		if o.Dot.Node != op.Node || o.Kind != KindCount {
			continue
		}
		cloud = append(cloud, o.Dot)
		if o.Live(nowMS) {
			e.Inc += o.Inc
			e.Dec += o.Dec
		}
	}
	if n >= 0 {
		e.Inc += uint64(n)
	} else {
		e.Dec += uint64(-n)
	}
	return Record{Entries: []Entry{e}, Context: normalize(nil, cloud)}, total, nil
}

// countEntry returns a count entry holding the signed amount v.
func countEntry(d Dot, ts Timestamp, expiry, v int64) Entry {
	e := Entry{Dot: d, TS: ts, Expiry: expiry, Kind: KindCount}
	if v >= 0 {
		e.Inc = uint64(v)
	} else {
		e.Dec = uint64(-v) // -MinInt64 wraps to itself, whose uint64 is right
	}
	return e
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
