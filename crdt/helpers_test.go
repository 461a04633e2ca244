package crdt

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"pgregory.net/rapid"
)

// canonical normalizes a context independently of normalize: drop cloud dots
// the vector covers and fold adjacent ones until nothing changes. Tests
// compare contexts through it so that equality means "same set of dots".
func canonical(c Context) Context {
	vv := slices.Clone(c.VV)
	cloud := slices.Clone(c.Cloud)
	for changed := true; changed; {
		changed = false
		rest := cloud[:0]
		for _, d := range cloud {
			have := vv.Get(d.Node)
			switch {
			case d.Counter <= have:
				changed = true
			case d.Counter == have+1:
				vv = vv.With(d.Node, d.Counter)
				changed = true
			default:
				rest = append(rest, d)
			}
		}
		cloud = rest
	}
	slices.SortFunc(cloud, compareDots)
	cloud = slices.Compact(cloud)
	if len(cloud) == 0 {
		cloud = nil
	}
	if len(vv) == 0 {
		vv = nil
	}
	return Context{VV: vv, Cloud: cloud}
}

// contextsEqual reports whether two contexts hold the same dots.
func contextsEqual(a, b Context) bool { return canonical(a).Equal(canonical(b)) }

// checkContext reports how c breaks the normal form every operation must
// return: vector sorted by node without zero counters; cloud sorted, without
// duplicates, none covered by or adjacent to the vector.
func checkContext(c Context) error {
	for i, e := range c.VV {
		if e.Counter == 0 {
			return fmt.Errorf("vector %v has a zero counter", c.VV)
		}
		if i > 0 && c.VV[i-1].Node >= e.Node {
			return fmt.Errorf("vector %v not sorted", c.VV)
		}
	}
	for i, d := range c.Cloud {
		if i > 0 && compareDots(c.Cloud[i-1], d) >= 0 {
			return fmt.Errorf("cloud %v not sorted or has duplicates", c.Cloud)
		}
		if have := c.VV.Get(d.Node); d.Counter <= have+1 {
			return fmt.Errorf("cloud dot %v covered by or adjacent to vector %v", d, c.VV)
		}
	}
	return nil
}

// checkRecord reports how r breaks the Record invariants: entries strictly
// sorted by dot, every entry's dot in the (normalized) context.
func checkRecord(r Record) error {
	if err := checkContext(r.Context); err != nil {
		return err
	}
	for i := range r.Entries {
		e := &r.Entries[i]
		if i > 0 && compareDots(r.Entries[i-1].Dot, e.Dot) >= 0 {
			return fmt.Errorf("entries not strictly sorted at %v", e.Dot)
		}
		if !r.Context.Covers(e.Dot) {
			return fmt.Errorf("entry %v outside context %v %v", e.Dot, r.Context.VV, r.Context.Cloud)
		}
		if e.Dot.Counter == 0 {
			return fmt.Errorf("entry with zero counter")
		}
		if e.Kind != KindCount && e.Origin != 0 {
			return fmt.Errorf("entry %v of kind %d has a lineage", e.Dot, e.Kind)
		}
	}
	for i, z := range r.Resets {
		if i > 0 && compareLineages(r.Resets[i-1].Node, r.Resets[i-1].Origin, z.Node, z.Origin) >= 0 {
			return fmt.Errorf("resets not strictly sorted at %v/%d", z.Node, z.Origin)
		}
		if z.Inc == 0 && z.Dec == 0 {
			return fmt.Errorf("zero reset of %v/%d", z.Node, z.Origin)
		}
	}
	return nil
}

func entriesEqual(a, b Entry) bool {
	return a.Dot == b.Dot && a.TS == b.TS && a.Expiry == b.Expiry && a.Kind == b.Kind &&
		bytes.Equal(a.Value, b.Value) && a.Inc == b.Inc && a.Dec == b.Dec && a.Origin == b.Origin
}

// recordsEqual is the canonical equality of records: the same entries and
// contexts holding the same dots, the same resets. nil and empty values are
// equal.
func recordsEqual(a, b Record) bool {
	return slices.EqualFunc(a.Entries, b.Entries, entriesEqual) && contextsEqual(a.Context, b.Context) &&
		slices.Equal(a.Resets, b.Resets)
}

func viewsEqual(a, b View) bool {
	return a.Found == b.Found && a.Kind == b.Kind && bytes.Equal(a.Value, b.Value) &&
		a.Counter == b.Counter && a.Expiry == b.Expiry && a.TS == b.TS && a.Node == b.Node
}

func fmtRecord(r Record) string {
	var b bytes.Buffer
	b.WriteString("{")
	for i, e := range r.Entries {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%d/k%d/ts%v/x%d", e.Dot.Node, e.Dot.Counter, e.Kind, e.TS, e.Expiry)
		switch e.Kind {
		case KindValue:
			fmt.Fprintf(&b, "=%q", e.Value)
		case KindCount:
			fmt.Fprintf(&b, "=+%d-%d@%d", e.Inc, e.Dec, e.Origin)
		case KindBase:
			fmt.Fprintf(&b, "=+%d-%d", e.Inc, e.Dec)
		}
	}
	b.WriteString(" | vv")
	for _, e := range r.Context.VV {
		fmt.Fprintf(&b, " %d:%d", e.Node, e.Counter)
	}
	b.WriteString(" cloud")
	for _, d := range r.Context.Cloud {
		fmt.Fprintf(&b, " %d:%d", d.Node, d.Counter)
	}
	if len(r.Resets) > 0 {
		b.WriteString(" resets")
		for _, z := range r.Resets {
			fmt.Fprintf(&b, " %d@%d=+%d-%d", z.Node, z.Origin, z.Inc, z.Dec)
		}
	}
	b.WriteString("}")
	return b.String()
}

// Generators of arbitrary (not necessarily reachable) values, for encoding
// and context tests. Node IDs and counters mix small values, which collide
// and fold, with values anywhere in their range, which exercise every
// msgpack integer width.

func genNodeID() *rapid.Generator[NodeID] {
	return rapid.OneOf(
		rapid.Map(rapid.Uint64Range(1, 4), func(u uint64) NodeID { return NodeID(u) }),
		rapid.Map(rapid.Uint64(), func(u uint64) NodeID { return NodeID(u) }),
	)
}

func genCounter() *rapid.Generator[uint64] {
	return rapid.OneOf(rapid.Uint64Range(1, 8), rapid.Uint64Min(1))
}

func genDot() *rapid.Generator[Dot] {
	return rapid.Custom(func(t *rapid.T) Dot {
		return Dot{Node: genNodeID().Draw(t, "node"), Counter: genCounter().Draw(t, "counter")}
	})
}

// genRawContext draws a vector that is sorted and free of zeros, as decoding
// demands, and a cloud in any order and with any dots, as normalize accepts.
func genRawContext() *rapid.Generator[Context] {
	return rapid.Custom(func(t *rapid.T) Context {
		vv := VersionVector{}
		for _, d := range rapid.SliceOfN(genDot(), 0, 5).Draw(t, "vv") {
			vv = vv.With(d.Node, d.Counter)
		}
		if len(vv) == 0 {
			vv = nil
		}
		cloud := rapid.SliceOfN(genDot(), 0, 6).Draw(t, "cloud")
		if len(cloud) == 0 {
			cloud = nil
		}
		return Context{VV: vv, Cloud: cloud}
	})
}

func genContext() *rapid.Generator[Context] {
	return rapid.Map(genRawContext(), func(c Context) Context { return normalize(c.VV, slices.Clone(c.Cloud)) })
}

func genEntry() *rapid.Generator[Entry] {
	return rapid.Custom(func(t *rapid.T) Entry {
		e := Entry{
			Dot:    genDot().Draw(t, "dot"),
			TS:     Timestamp(rapid.Uint64().Draw(t, "ts")),
			Expiry: rapid.Int64().Draw(t, "expiry"),
			Kind:   Kind(rapid.IntRange(0, 3).Draw(t, "kind")),
		}
		switch e.Kind {
		case KindValue:
			e.Value = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "value")
		case KindCount:
			e.Origin = rapid.Uint64Range(0, e.Dot.Counter).Draw(t, "origin")
			fallthrough
		case KindBase:
			e.Inc = rapid.Uint64().Draw(t, "inc")
			e.Dec = rapid.Uint64().Draw(t, "dec")
		}
		return e
	})
}

// genResets draws valid resets (sorted, distinct, nonzero) from node and
// origin generators and a bound on the totals.
func genResets(node *rapid.Generator[NodeID], origin *rapid.Generator[uint64], most uint64) *rapid.Generator[[]Reset] {
	return rapid.Custom(func(t *rapid.T) []Reset {
		var out []Reset
		for range rapid.IntRange(0, 3).Draw(t, "resets") {
			z := Reset{Node: node.Draw(t, "reset node"), Origin: origin.Draw(t, "reset origin"),
				Inc: rapid.Uint64Range(0, most).Draw(t, "reset inc"), Dec: rapid.Uint64Range(0, most).Draw(t, "reset dec")}
			if z.Inc == 0 && z.Dec == 0 {
				z.Inc = 1
			}
			out = mergeResets(out, []Reset{z})
		}
		return out
	})
}

// genRecord draws a record that satisfies the invariants: distinct sorted
// dots, all in the context.
func genRecord() *rapid.Generator[Record] {
	return rapid.Custom(func(t *rapid.T) Record {
		entries := rapid.SliceOfNDistinct(genEntry(), 0, 5, func(e Entry) Dot { return e.Dot }).Draw(t, "entries")
		slices.SortFunc(entries, func(a, b Entry) int { return compareDots(a.Dot, b.Dot) })
		ctx := genContext().Draw(t, "context")
		for _, e := range entries {
			ctx = ctx.Add(e.Dot)
		}
		if len(entries) == 0 {
			entries = nil
		}
		return Record{Entries: entries, Context: ctx, Resets: genResets(genNodeID(), genCounter(), 1<<63).Draw(t, "resets")}
	})
}

// Generators over a small domain (nodes 1–3, counters up to 12), where dots
// collide across records and contexts expand into finite sets (dotSet), so
// properties can compare against sets of dots instead of the code's own
// arithmetic.

const smallNodes = 3

func genSmallNode() *rapid.Generator[NodeID] {
	return rapid.Map(rapid.IntRange(1, smallNodes), func(i int) NodeID { return NodeID(i) })
}

func genSmallDot() *rapid.Generator[Dot] {
	return rapid.Custom(func(t *rapid.T) Dot {
		return Dot{genSmallNode().Draw(t, "node"), rapid.Uint64Range(1, 12).Draw(t, "counter")}
	})
}

// genSmallVV draws a vector (nil when empty), as a seen vector or a vector to
// compare contexts against.
func genSmallVV() *rapid.Generator[VersionVector] {
	return rapid.Custom(func(t *rapid.T) VersionVector {
		var v VersionVector
		for _, d := range rapid.SliceOfN(genSmallDot(), 0, smallNodes).Draw(t, "vv") {
			v = v.With(d.Node, d.Counter)
		}
		return v
	})
}

// genSmallContext draws a normalized context.
func genSmallContext() *rapid.Generator[Context] {
	return rapid.Custom(func(t *rapid.T) Context {
		return normalize(genSmallVV().Draw(t, "vv"), rapid.SliceOfN(genSmallDot(), 0, 6).Draw(t, "cloud"))
	})
}

// smallNow is the time at which small records are read: their expiries fall
// on both sides of it.
const smallNow = 100

// genSmallEntry draws an entry under a small dot with timestamps that tie,
// expiries around smallNow, and values that are sometimes numeric (so Incr
// converts them) and sometimes not.
func genSmallEntry() *rapid.Generator[Entry] {
	return rapid.Custom(func(t *rapid.T) Entry {
		e := Entry{
			Dot:    genSmallDot().Draw(t, "dot"),
			TS:     Timestamp(rapid.Uint64Range(1, 6).Draw(t, "ts")),
			Expiry: rapid.SampledFrom([]int64{0, 0, smallNow - 1, smallNow, smallNow + 1, smallNow + 50}).Draw(t, "expiry"),
			Kind:   Kind(rapid.IntRange(0, 3).Draw(t, "kind")),
		}
		switch e.Kind {
		case KindValue:
			e.Value = []byte(rapid.SampledFrom([]string{"", "x", "7", "-3", "+12"}).Draw(t, "value"))
		case KindCount:
			e.Origin = rapid.Uint64Range(0, min(2, e.Dot.Counter)).Draw(t, "origin")
			fallthrough
		case KindBase:
			e.Inc = rapid.Uint64Range(0, 20).Draw(t, "inc")
			e.Dec = rapid.Uint64Range(0, 20).Draw(t, "dec")
		}
		return e
	})
}

// recordOf builds a record that satisfies the invariants from entries with
// distinct dots (in any order) and a context they are added to.
func recordOf(ctx Context, entries []Entry) Record {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b Entry) int { return compareDots(a.Dot, b.Dot) })
	for _, e := range entries {
		ctx = ctx.Add(e.Dot)
	}
	if len(entries) == 0 {
		entries = nil
	}
	return Record{Entries: entries, Context: ctx}
}

func genSmallRecord() *rapid.Generator[Record] {
	return rapid.Custom(func(t *rapid.T) Record {
		entries := rapid.SliceOfNDistinct(genSmallEntry(), 0, 5, func(e Entry) Dot { return e.Dot }).Draw(t, "entries")
		r := recordOf(genSmallContext().Draw(t, "context"), entries)
		r.Resets = genSmallResets().Draw(t, "resets")
		return r
	})
}

func genSmallResets() *rapid.Generator[[]Reset] {
	return genResets(genSmallNode(), rapid.Uint64Range(0, 2), 25)
}

// genRecordPair draws two records that share some entries (same dot, same
// content, as replicas of one key do) and hold others alone. entry and ctx
// choose the domain: small or anywhere.
func genRecordPair(entry *rapid.Generator[Entry], ctx *rapid.Generator[Context]) *rapid.Generator[[2]Record] {
	return rapid.Custom(func(t *rapid.T) [2]Record {
		all := rapid.SliceOfNDistinct(entry, 0, 8, func(e Entry) Dot { return e.Dot }).Draw(t, "entries")
		var a, b []Entry
		for _, e := range all {
			switch rapid.IntRange(0, 2).Draw(t, "holder") {
			case 0:
				a = append(a, e)
			case 1:
				b = append(b, e)
			default:
				a, b = append(a, e), append(b, e)
			}
		}
		ra, rb := recordOf(ctx.Draw(t, "a context"), a), recordOf(ctx.Draw(t, "b context"), b)
		ra.Resets, rb.Resets = genSmallResets().Draw(t, "a resets"), genSmallResets().Draw(t, "b resets")
		return [2]Record{ra, rb}
	})
}

// genWideVV draws a vector over the whole domain of genDot (nil when empty).
func genWideVV() *rapid.Generator[VersionVector] {
	return rapid.Map(genRawContext(), func(c Context) VersionVector { return c.VV })
}

// dotRange returns the dots of n from 1 to c as a set.
func dotRange(n NodeID, c uint64) map[Dot]bool {
	s := map[Dot]bool{}
	for i := uint64(1); i <= c; i++ {
		s[Dot{n, i}] = true
	}
	return s
}

// union returns a new set holding the dots of every set.
func union(sets ...map[Dot]bool) map[Dot]bool {
	out := map[Dot]bool{}
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}
