package crdt

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// seenCase is one draw for the MergeSeen properties: two records and the
// seen (applied) vectors of their holders.
type seenCase struct {
	a, b         Record
	aSeen, bSeen VersionVector
}

// genSeenCase draws from the small domain, where dots of a, b and the seen
// vectors collide often, or from the whole one, where records may also hold
// one dot with different contents.
func genSeenCase() *rapid.Generator[seenCase] {
	return rapid.Custom(func(t *rapid.T) seenCase {
		var c seenCase
		switch rapid.IntRange(0, 2).Draw(t, "domain") {
		case 0:
			p := genRecordPair(genSmallEntry(), genSmallContext()).Draw(t, "pair")
			c.a, c.b = p[0], p[1]
			c.aSeen, c.bSeen = genSmallVV().Draw(t, "a seen"), genSmallVV().Draw(t, "b seen")
		case 1:
			p := genRecordPair(genEntry(), genContext()).Draw(t, "pair")
			c.a, c.b = p[0], p[1]
			c.aSeen, c.bSeen = genWideVV().Draw(t, "a seen"), genWideVV().Draw(t, "b seen")
		default:
			c.a, c.b = genRecord().Draw(t, "a"), genRecord().Draw(t, "b")
			c.aSeen, c.bSeen = genWideVV().Draw(t, "a seen"), genWideVV().Draw(t, "b seen")
		}
		// The zero record stands for a dropped one: the case the seen
		// vectors exist for.
		if rapid.IntRange(0, 5).Draw(t, "drop a") == 0 {
			c.a = Record{}
		}
		if rapid.IntRange(0, 5).Draw(t, "drop b") == 0 {
			c.b = Record{}
		}
		return c
	})
}

func findEntry(r Record, d Dot) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(r.Entries, d, func(e Entry, d Dot) int { return compareDots(e.Dot, d) })
	if !ok {
		return Entry{}, false
	}
	return r.Entries[i], true
}

func TestPropMergeSeenWithoutSeenIsMerge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSeenCase().Draw(t, "case")
		want := Merge(c.a, c.b)
		for _, got := range []Record{MergeSeen(c.a, nil, c.b, nil), MergeSeen(c.a, VersionVector{}, c.b, VersionVector{})} {
			if !recordsEqual(got, want) {
				t.Fatalf("MergeSeen with no seen vectors %s, Merge %s", fmtRecord(got), fmtRecord(want))
			}
		}
	})
}

func TestPropMergeSeenCommutes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSeenCase().Draw(t, "case")
		ab, ba := MergeSeen(c.a, c.aSeen, c.b, c.bSeen), MergeSeen(c.b, c.bSeen, c.a, c.aSeen)
		if !recordsEqual(ab, ba) {
			t.Fatalf("swapping sides changed the result:\na  %s seen %v\nb  %s seen %v\nab %s\nba %s",
				fmtRecord(c.a), c.aSeen, fmtRecord(c.b), c.bSeen, fmtRecord(ab), fmtRecord(ba))
		}
	})
}

// TestPropMergeSeenIdempotent checks the laws that make re-delivery
// harmless. A record merged with itself is unchanged whatever the seen
// vectors: they only drop entries the other side lacks, and a record lacks
// none of its own. A merge result absorbs either input again when its
// holder's seen vector includes both inputs' (what it had seen, it still
// has); with the receiver's own seen vector it absorbs the remote input.
func TestPropMergeSeenIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSeenCase().Draw(t, "case")
		if aa := MergeSeen(c.a, c.aSeen, c.a, c.bSeen); !recordsEqual(aa, c.a) {
			t.Fatalf("self-merge with seen %v and %v: %s -> %s", c.aSeen, c.bSeen, fmtRecord(c.a), fmtRecord(aa))
		}
		r := MergeSeen(c.a, c.aSeen, c.b, c.bSeen)
		if again := MergeSeen(r, c.aSeen, c.b, c.bSeen); !recordsEqual(again, r) {
			t.Fatalf("re-merging b into a's result changed it:\nr %s\n-> %s", fmtRecord(r), fmtRecord(again))
		}
		rSeen := MergeVV(c.aSeen, c.bSeen)
		for _, in := range []struct {
			r    Record
			seen VersionVector
		}{{c.a, c.aSeen}, {c.b, c.bSeen}} {
			if again := MergeSeen(r, rSeen, in.r, in.seen); !recordsEqual(again, r) {
				t.Fatalf("the result with the joined seen %v does not absorb an input %s:\nr %s\n-> %s",
					rSeen, fmtRecord(in.r), fmtRecord(r), fmtRecord(again))
			}
		}
	})
}

// TestPropMergeSeenEntries checks the result entry by entry: an entry one
// side holds alone survives exactly when neither the other side's context
// nor its seen vector covers it; an entry both hold survives as Merge keeps
// it; nothing else appears. The context is the union of the contexts alone,
// and the record invariants hold.
func TestPropMergeSeenEntries(t *testing.T) {
	var held, alone, droppedBySeen int
	rapid.Check(t, func(t *rapid.T) {
		c := genSeenCase().Draw(t, "case")
		a0, b0 := fmtRecord(c.a), fmtRecord(c.b)
		got := MergeSeen(c.a, c.aSeen, c.b, c.bSeen)
		merged := Merge(c.a, c.b)
		if err := checkRecord(got); err != nil {
			t.Fatalf("result breaks invariants: %v: %s", err, fmtRecord(got))
		}
		if want := MergeContext(c.a.Context, c.b.Context); !got.Context.Equal(want) {
			t.Fatalf("context %v %v, want the union %v %v", got.Context.VV, got.Context.Cloud, want.VV, want.Cloud)
		}
		wantDots := map[Dot]bool{}
		for _, side := range []struct {
			own, other Record
			otherSeen  VersionVector
		}{{c.a, c.b, c.bSeen}, {c.b, c.a, c.aSeen}} {
			for _, e := range side.own.Entries {
				_, both := findEntry(side.other, e.Dot)
				covered := side.other.Context.Covers(e.Dot) || (e.Kind != KindTomb && side.otherSeen.Covers(e.Dot))
				_, kept := findEntry(got, e.Dot)
				if kept != (both || !covered) {
					t.Fatalf("entry %v: kept=%v, other side holds it=%v, covered=%v\na %s seen %v\nb %s seen %v\n-> %s",
						e.Dot, kept, both, covered, fmtRecord(c.a), c.aSeen, fmtRecord(c.b), c.bSeen, fmtRecord(got))
				}
				switch {
				case both:
					held++
				case kept:
					alone++
				case !side.other.Context.Covers(e.Dot):
					droppedBySeen++
				}
				if kept {
					wantDots[e.Dot] = true
				}
			}
		}
		if len(got.Entries) != len(wantDots) {
			t.Fatalf("%d entries, want %d: %s", len(got.Entries), len(wantDots), fmtRecord(got))
		}
		for _, e := range got.Entries {
			m, ok := findEntry(merged, e.Dot)
			if !ok || !entriesEqual(e, m) {
				t.Fatalf("entry %+v is not the one Merge keeps (%+v, %v)", e, m, ok)
			}
		}
		if fmtRecord(c.a) != a0 || fmtRecord(c.b) != b0 {
			t.Fatal("MergeSeen modified an input")
		}
	})
	t.Logf("entries held by both (per side): %d, kept alone: %d, dropped by a seen vector alone: %d", held, alone, droppedBySeen)
}

// TestMergeSeenDroppedRecord is the case MergeSeen exists for: a store that
// saw a key deleted and dropped the record (tombstone and all, past causal
// stability) receives a stale replica's whole record, which still holds a
// value the delete superseded.
func TestMergeSeenDroppedRecord(t *testing.T) {
	stale := rec(ctxOf(vv(nB, 1)), val(nA, 3, 10, "old"))
	siblings := rec(Context{}, val(nA, 3, 10, "a"), val(nB, 2, 11, "b"), tomb(nC, 7, 12), val(nC, 9, 13, "c"))
	tests := []struct {
		name         string
		x            Record
		xSeen        VersionVector
		y            Record
		ySeen        VersionVector
		want         Record
		wantSiblings []Dot
	}{
		{"seen A=3: the superseded value stays gone", Record{}, vv(nA, 3, nB, 4), stale, vv(nA, 3, nB, 1),
			Record{Context: stale.Context}, nil},
		{"seen beyond it: stays gone", Record{}, vv(nA, 9), stale, nil,
			Record{Context: stale.Context}, nil},
		{"seen A=2: the value was never seen here and is kept", Record{}, vv(nA, 2, nB, 4), stale, vv(nA, 3),
			stale, dots(nA, 3)},
		{"no seen vector: plain Merge keeps it", Record{}, nil, stale, vv(nA, 3),
			stale, dots(nA, 3)},
		{"a zero record with seen drops exactly the covered values, never a tombstone", siblings, nil, Record{}, vv(nA, 3, nB, 1, nC, 8),
			Record{Entries: []Entry{val(nB, 2, 11, "b"), tomb(nC, 7, 12), val(nC, 9, 13, "c")}, Context: siblings.Context}, dots(nB, 2, nC, 7, nC, 9)},
		{"the seen vector drops nothing the other side holds", siblings, vv(nA, 9, nB, 9, nC, 9), siblings, vv(nA, 9, nB, 9, nC, 9),
			siblings, dots(nA, 3, nB, 2, nC, 7, nC, 9)},
		{"the holder's own seen vector protects nothing", siblings, vv(nA, 9, nB, 9, nC, 9), Record{Context: ctxOf(nil, Dot{nB, 2})}, nil,
			Record{Entries: []Entry{val(nA, 3, 10, "a"), tomb(nC, 7, 12), val(nC, 9, 13, "c")}, Context: siblings.Context},
			dots(nA, 3, nC, 7, nC, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, got := range []Record{MergeSeen(tt.x, tt.xSeen, tt.y, tt.ySeen), MergeSeen(tt.y, tt.ySeen, tt.x, tt.xSeen)} {
				if !recordsEqual(got, tt.want) {
					t.Fatalf("MergeSeen = %s, want %s", fmtRecord(got), fmtRecord(tt.want))
				}
				var live []Dot
				for _, e := range got.Live(0) {
					live = append(live, e.Dot)
				}
				if !slices.Equal(live, tt.wantSiblings) {
					t.Fatalf("siblings %v, want %v", live, tt.wantSiblings)
				}
			}
		})
	}
}

// TestMergeSeenDropsSupersededDotCarriedByADelta: most deltas hold only
// their own new dot, but an Incr that converts a value carries the value's
// old dot (and a counter's expire rewrite in the store carries the whole
// record). A's value "10" at A:5 reaches B and C; B deletes it (B:8); C,
// concurrently, converts it (C:3). A replica that dropped B's dead record
// and then applies C's delta with plain Merge brings the base back, which
// a replica still holding the tombstone's context drops; with its applied
// vector as seen it drops it too.
func TestMergeSeenDropsSupersededDotCarriedByADelta(t *testing.T) {
	var empty Record
	setA := empty.Set(Op{Node: nA, TS: 100, Seq: 5}, []byte("10"), 0)
	onB := Merge(setA, setA.Delete(Op{Node: nB, TS: 300, Seq: 8}))
	incC, _, err := setA.Incr(Op{Node: nC, TS: 250, Seq: 3}, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findEntry(incC, Dot{nA, 5}); !ok {
		t.Fatalf("the conversion delta should carry the base under A:5: %s", fmtRecord(incC))
	}

	kept := Merge(onB, incC)
	if _, ok := findEntry(kept, Dot{nA, 5}); ok {
		t.Fatalf("B, holding the tombstone, should drop the base: %s", fmtRecord(kept))
	}
	applied := vv(nA, 5, nB, 8)
	dropped := MergeSeen(Record{}, applied, incC, nil)
	if len(dropped.Entries) != 1 || dropped.Entries[0].Dot != (Dot{nC, 3}) {
		t.Fatalf("B, dropped record and applied %v, should keep C's increment alone: %s", applied, fmtRecord(dropped))
	}
	if plain := Merge(Record{}, incC); plain.Read(0).Counter != 14 {
		t.Fatalf("plain Merge into a dropped record should bring the base back (why deltas need the seen vector too): %s", fmtRecord(plain))
	}
}
