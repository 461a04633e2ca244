package crdt

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"
)

func val(n NodeID, c uint64, ts Timestamp, v string) Entry {
	return Entry{Dot: Dot{n, c}, TS: ts, Kind: KindValue, Value: []byte(v)}
}

func tomb(n NodeID, c uint64, ts Timestamp) Entry {
	return Entry{Dot: Dot{n, c}, TS: ts, Kind: KindTomb}
}

func count(n NodeID, c uint64, ts Timestamp, inc, dec uint64) Entry {
	return Entry{Dot: Dot{n, c}, TS: ts, Kind: KindCount, Inc: inc, Dec: dec}
}

func expiring(e Entry, at int64) Entry { e.Expiry = at; return e }

// rec builds a record whose context is exactly its entries' dots plus extra.
func rec(extra Context, entries ...Entry) Record {
	slices.SortFunc(entries, func(a, b Entry) int { return compareDots(a.Dot, b.Dot) })
	c := extra
	for _, e := range entries {
		c = c.Add(e.Dot)
	}
	return Record{Entries: entries, Context: c}
}

func TestReadWinner(t *testing.T) {
	const now = 1000
	tests := []struct {
		name string
		r    Record
		want View
	}{
		{"empty", Record{}, View{}},
		{"context only", Record{Context: ctxOf(vv(nA, 3))}, View{}},
		{"single value", rec(Context{}, val(nA, 1, 10, "x")),
			View{Found: true, Kind: KindValue, Value: []byte("x"), TS: 10, Node: nA}},
		{"later timestamp wins", rec(Context{}, val(nC, 1, 10, "old"), val(nA, 1, 11, "new")),
			View{Found: true, Kind: KindValue, Value: []byte("new"), TS: 11, Node: nA}},
		{"timestamp tie: higher node wins", rec(Context{}, val(nB, 1, 10, "b"), val(nA, 9, 10, "a")),
			View{Found: true, Kind: KindValue, Value: []byte("b"), TS: 10, Node: nB}},
		{"timestamp and node tie: higher counter wins", rec(Context{}, val(nA, 2, 10, "a2"), val(nA, 1, 10, "a1")),
			View{Found: true, Kind: KindValue, Value: []byte("a2"), TS: 10, Node: nA}},
		{"winning tombstone hides the value", rec(Context{}, val(nA, 1, 10, "x"), tomb(nB, 1, 11)), View{}},
		{"value newer than a tombstone shows", rec(Context{}, val(nA, 1, 12, "x"), tomb(nB, 1, 11)),
			View{Found: true, Kind: KindValue, Value: []byte("x"), TS: 12, Node: nA}},
		{"expired winner gives way", rec(Context{}, val(nA, 1, 10, "old"), expiring(val(nB, 1, 20, "gone"), now)),
			View{Found: true, Kind: KindValue, Value: []byte("old"), TS: 10, Node: nA}},
		{"expiring later is visible with its expiry", rec(Context{}, expiring(val(nB, 1, 20, "x"), now+1)),
			View{Found: true, Kind: KindValue, Value: []byte("x"), Expiry: now + 1, TS: 20, Node: nB}},
		{"all expired", rec(Context{}, expiring(val(nA, 1, 10, "x"), now), expiring(val(nB, 1, 11, "y"), 5)), View{}},
		{"expired tombstone uncovers an older value", rec(Context{}, val(nA, 1, 10, "x"), expiring(tomb(nB, 1, 11), 5)),
			View{Found: true, Kind: KindValue, Value: []byte("x"), TS: 10, Node: nA}},
		{"counter sums live count entries", rec(Context{}, count(nA, 3, 10, 7, 2), count(nB, 1, 12, 1, 0), expiring(count(nC, 1, 11, 100, 0), now)),
			View{Found: true, Kind: KindCount, Value: []byte("6"), Counter: 6, TS: 12, Node: nB}},
		{"negative counter", rec(Context{}, count(nA, 1, 10, 1, 5)),
			View{Found: true, Kind: KindCount, Value: []byte("-4"), Counter: -4, TS: 10, Node: nA}},
		{"counter winner ignores an older value sibling", rec(Context{}, val(nA, 1, 10, "x"), count(nB, 1, 11, 3, 0)),
			View{Found: true, Kind: KindCount, Value: []byte("3"), Counter: 3, TS: 11, Node: nB}},
		{"value winner hides counts", rec(Context{}, val(nA, 1, 12, "x"), count(nB, 1, 11, 3, 0)),
			View{Found: true, Kind: KindValue, Value: []byte("x"), TS: 12, Node: nA}},
		{"tombstone winner hides counts", rec(Context{}, tomb(nA, 1, 12), count(nB, 1, 11, 3, 0)), View{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Read(now); !viewsEqual(got, tt.want) {
				t.Fatalf("Read = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLiveDeadNextExpiryLastWrite(t *testing.T) {
	const now = 1000
	tests := []struct {
		name      string
		r         Record
		live      []Dot
		dead      bool
		next      int64
		lastWrite Timestamp
	}{
		{"empty", Record{}, nil, true, 0, 0},
		{"live value", rec(Context{}, val(nA, 1, 10, "x")), dots(nA, 1), false, 0, 10},
		{"tombstone only", rec(Context{}, tomb(nA, 1, 10)), dots(nA, 1), true, 0, 10},
		{"expired value", rec(Context{}, expiring(val(nA, 1, 10, "x"), now)), nil, true, 0, 10},
		{"expiring value", rec(Context{}, expiring(val(nA, 1, 10, "x"), now+5)), dots(nA, 1), false, now + 5, 10},
		{"earliest future expiry, ignoring the past", rec(Context{},
			expiring(val(nA, 1, 10, "x"), now+50), expiring(val(nB, 1, 30, "y"), now+5), expiring(val(nC, 1, 20, "z"), now-1)),
			dots(nA, 1, nB, 1), false, now + 5, 30},
		// A tombstone that wins still leaves a live sibling: Read finds
		// nothing but the record is not dead.
		{"tombstone winning over a live sibling", rec(Context{}, val(nA, 1, 10, "x"), tomb(nB, 1, 11)),
			dots(nA, 1, nB, 1), false, 0, 11},
		{"count", rec(Context{}, count(nA, 1, 10, 1, 1)), dots(nA, 1), false, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var live []Dot
			for _, e := range tt.r.Live(now) {
				live = append(live, e.Dot)
			}
			if !slices.Equal(live, tt.live) {
				t.Errorf("Live = %v, want %v", live, tt.live)
			}
			if got := tt.r.Dead(now); got != tt.dead {
				t.Errorf("Dead = %v", got)
			}
			if got := tt.r.NextExpiry(now); got != tt.next {
				t.Errorf("NextExpiry = %d, want %d", got, tt.next)
			}
			if got := tt.r.LastWrite(); got != tt.lastWrite {
				t.Errorf("LastWrite = %v, want %v", got, tt.lastWrite)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	const now = 1000
	r := rec(ctxOf(vv(nC, 4)), expiring(val(nA, 1, 10, "gone"), now), expiring(val(nB, 1, 11, "stays"), now+1), tomb(nB, 2, 12))
	p, dropped := r.Purge(now)
	if !dropped || len(p.Entries) != 2 || p.Entries[0].Dot != (Dot{nB, 1}) || !p.Context.Equal(r.Context) {
		t.Fatalf("Purge = %s, %v", fmtRecord(p), dropped)
	}
	if len(r.Entries) != 3 {
		t.Fatal("Purge modified its receiver")
	}
	// The purged dot stays in the context, so a replica still holding the
	// entry loses it on merge: the purge acts as a delete.
	if m := Merge(r, p); !recordsEqual(m, p) {
		t.Fatalf("merging with the unpurged copy: %s", fmtRecord(m))
	}
	if again, dropped := p.Purge(now); dropped || !recordsEqual(again, p) {
		t.Fatal("second purge dropped something")
	}
	all, _ := rec(Context{}, expiring(val(nA, 1, 10, "x"), 5)).Purge(now)
	if all.Entries != nil || !all.Context.Covers(Dot{nA, 1}) {
		t.Fatalf("purging everything: %s", fmtRecord(all))
	}
}

func TestMergeBasics(t *testing.T) {
	a := rec(Context{}, val(nA, 1, 10, "a"))
	b := rec(Context{}, val(nB, 1, 11, "b"))
	overwrite := a.Set(Op{Node: nA, TS: 12}, []byte("a2"), 0)
	tests := []struct {
		name string
		x, y Record
		want Record
	}{
		{"with the empty record", a, Record{}, a},
		{"concurrent writes are siblings", a, b, rec(Context{}, val(nA, 1, 10, "a"), val(nB, 1, 11, "b"))},
		{"a covering context removes what it no longer holds", a, overwrite, overwrite},
		{"a context alone removes", rec(Context{}, val(nA, 1, 10, "a"), val(nB, 1, 11, "b")), Record{Context: ctxOf(vv(nB, 1))},
			Record{Entries: []Entry{val(nA, 1, 10, "a")}, Context: ctxOf(vv(nA, 1, nB, 1))}},
		{"an uncovered entry survives a context", b, Record{Context: ctxOf(vv(nA, 1))},
			Record{Entries: []Entry{val(nB, 1, 11, "b")}, Context: ctxOf(vv(nA, 1, nB, 1))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x0, y0 := fmtRecord(tt.x), fmtRecord(tt.y)
			for _, got := range []Record{Merge(tt.x, tt.y), Merge(tt.y, tt.x)} {
				if !recordsEqual(got, tt.want) {
					t.Fatalf("Merge = %s, want %s", fmtRecord(got), fmtRecord(tt.want))
				}
			}
			if fmtRecord(tt.x) != x0 || fmtRecord(tt.y) != y0 {
				t.Fatal("Merge modified an input")
			}
		})
	}
}

// TestSetKeepsUnseenSibling is the case that motivates the cloud: node B's
// own earlier write, which a client never saw, must survive B's write made
// with that client's older context.
func TestSetKeepsUnseenSibling(t *testing.T) {
	var state Record
	state = Merge(state, state.Set(Op{Node: nA, TS: 10}, []byte("a1"), 0)) // replicated to B
	clientCtx := state.Context                                             // the client reads {A:1}
	state = Merge(state, state.Set(Op{Node: nB, TS: 11}, []byte("b1"), 0)) // another client, no context: supersedes a1
	delta := state.Set(Op{Node: nB, TS: 12, Context: &clientCtx}, []byte("b2"), 0)

	if len(delta.Entries) != 1 || delta.Entries[0].Dot != (Dot{nB, 2}) {
		t.Fatalf("delta %s, want one entry at B:2", fmtRecord(delta))
	}
	if delta.Context.Covers(Dot{nB, 1}) {
		t.Fatalf("delta context %v %v covers B:1, which the client never saw", delta.Context.VV, delta.Context.Cloud)
	}
	want := []Dot{{nB, 1}, {nB, 2}}
	state = Merge(state, delta)
	// The same on a replica that gets the deltas in the other order.
	other := Merge(Merge(Record{}, delta), rec(Context{}, val(nB, 1, 11, "b1")))
	for _, r := range []Record{state, other} {
		var got []Dot
		for _, e := range r.Live(0) {
			got = append(got, e.Dot)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("siblings %v, want %v: %s", got, want, fmtRecord(r))
		}
	}
	if v := state.Read(0); string(v.Value) != "b2" {
		t.Fatalf("read %q, want the latest sibling b2", v.Value)
	}
	// A write with the context of the read that returned both siblings
	// supersedes both.
	ctx := state.Context
	final := Merge(state, state.Set(Op{Node: nC, TS: 13, Context: &ctx}, []byte("c1"), 0))
	if len(final.Entries) != 1 || string(final.Entries[0].Value) != "c1" {
		t.Fatalf("after a write with the full context: %s", fmtRecord(final))
	}
}

func TestDeleteWithContext(t *testing.T) {
	state := rec(Context{}, val(nA, 1, 10, "a"))
	seen := state.Context
	state = Merge(state, rec(Context{}, val(nB, 1, 11, "b"))) // concurrent, unseen by the deleter
	withCtx := Merge(state, state.Delete(Op{Node: nC, TS: 12, Context: &seen}))
	if got := withCtx.Live(0); len(got) != 2 || got[0].Dot != (Dot{nB, 1}) || got[1].Kind != KindTomb {
		t.Fatalf("delete with a context: %s", fmtRecord(withCtx))
	}
	if v := withCtx.Read(0); v.Found {
		t.Fatalf("the later tombstone should win the read: %+v", v)
	}
	noCtx := Merge(state, state.Delete(Op{Node: nC, TS: 12}))
	if len(noCtx.Entries) != 1 || noCtx.Entries[0].Kind != KindTomb || !noCtx.Dead(0) {
		t.Fatalf("delete without a context: %s", fmtRecord(noCtx))
	}
}

func TestIncr(t *testing.T) {
	const now = 1000
	op := Op{Node: nA, TS: 20}
	tests := []struct {
		name    string
		r       Record
		n       int64
		want    int64
		wantErr error
	}{
		{"missing key starts from zero", Record{}, 5, 5, nil},
		{"negative from zero", Record{}, -5, -5, nil},
		{"deleted key starts from zero", rec(Context{}, count(nB, 1, 5, 10, 0), tomb(nC, 1, 10)), 1, 1, nil},
		{"expired value starts from zero", rec(Context{}, expiring(val(nB, 1, 5, "10"), now)), 1, 1, nil},
		{"numeric value converts", rec(Context{}, val(nB, 1, 5, "41")), 1, 42, nil},
		{"negative numeric value converts", rec(Context{}, val(nB, 1, 5, "-5")), -3, -8, nil},
		{"plus sign accepted", rec(Context{}, val(nB, 1, 5, "+7")), 0, 7, nil},
		{"counter adds to the sum", rec(Context{}, count(nA, 2, 5, 10, 1), count(nB, 1, 6, 3, 0)), -2, 10, nil},
		{"non-numeric value", rec(Context{}, val(nB, 1, 5, "abc")), 1, 0, ErrWrongType},
		{"empty value", rec(Context{}, val(nB, 1, 5, "")), 1, 0, ErrWrongType},
		{"float value", rec(Context{}, val(nB, 1, 5, "1.5")), 1, 0, ErrWrongType},
		{"value out of int64 range", rec(Context{}, val(nB, 1, 5, "9223372036854775808")), 1, 0, ErrWrongType},
		{"value plus n overflows", rec(Context{}, val(nB, 1, 5, strconv.FormatInt(math.MaxInt64, 10))), 1, 0, ErrOverflow},
		{"value minus n underflows", rec(Context{}, val(nB, 1, 5, strconv.FormatInt(math.MinInt64, 10))), -1, 0, ErrOverflow},
		{"counter overflows", rec(Context{}, count(nB, 1, 5, math.MaxInt64, 0)), 1, 0, ErrOverflow},
		{"counter underflows", rec(Context{}, count(nB, 1, 5, 0, 1<<63)), -1, 0, ErrOverflow},
		{"down to MinInt64", Record{}, math.MinInt64, math.MinInt64, nil},
		{"up to MaxInt64", rec(Context{}, count(nB, 1, 5, math.MaxInt64-1, 0)), 1, math.MaxInt64, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, got, err := tt.r.Incr(op, tt.n, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Incr = %d, %v; want %d", got, err, tt.want)
			}
			if err := checkRecord(d); err != nil {
				t.Fatal(err)
			}
			after := Merge(tt.r, d)
			if v := after.Read(now); !v.Found || v.Kind != KindCount || v.Counter != tt.want || string(v.Value) != strconv.FormatInt(tt.want, 10) {
				t.Fatalf("read after Incr: %+v", v)
			}
			var own int
			for _, e := range after.Entries {
				if e.Dot.Node == nA && e.Kind == KindCount {
					own++
				}
			}
			if own != 1 {
				t.Fatalf("%d count entries of the incrementing node, want them folded into one: %s", own, fmtRecord(after))
			}
		})
	}
}

func TestIncrKeepsExpiry(t *testing.T) {
	r := rec(Context{}, expiring(val(nB, 1, 5, "3"), 2000))
	d, _, err := r.Incr(Op{Node: nA, TS: 20}, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r = Merge(r, d)
	if v := r.Read(1000); v.Expiry != 2000 || v.Counter != 4 {
		t.Fatalf("read %+v, want 4 expiring at 2000", v)
	}
	d, _, _ = r.Incr(Op{Node: nA, TS: 21}, 1, 1000)
	if r = Merge(r, d); r.Read(1000).Expiry != 2000 || r.Read(2000).Found {
		t.Fatalf("second Incr lost the expiry: %s", fmtRecord(r))
	}
}

// TestIncrConcurrentConversion: two replicas turn the same numeric value into
// a counter concurrently; the value is counted once.
func TestIncrConcurrentConversion(t *testing.T) {
	base := rec(Context{}, val(nC, 1, 5, "10"))
	da, va, _ := base.Incr(Op{Node: nA, TS: 20}, 1, 0)
	db, vb, _ := base.Incr(Op{Node: nB, TS: 21}, 2, 0)
	if va != 11 || vb != 12 {
		t.Fatalf("local results %d, %d", va, vb)
	}
	for _, r := range []Record{Merge(Merge(base, da), db), Merge(db, da), Merge(Merge(base, db), da)} {
		if v := r.Read(0); v.Counter != 13 {
			t.Fatalf("converged counter %+v, want 13: %s", v, fmtRecord(r))
		}
	}
	// A Set that saw the value but not the conversions supersedes the value
	// and keeps only the concurrent increments.
	ctx := base.Context
	set := base.Set(Op{Node: nC, TS: 15, Context: &ctx}, []byte("x"), 0)
	r := Merge(Merge(Merge(base, set), da), db)
	if v := r.Read(0); v.Counter != 3 {
		t.Fatalf("after a concurrent Set: %+v, want the increments alone (3): %s", v, fmtRecord(r))
	}
}

// TestIncrDeleteRace: a count entry holds its node's running totals, so an
// Incr concurrent with a Delete carries every increment the delete removed;
// the delete's observed reset keeps them removed.
func TestIncrDeleteRace(t *testing.T) {
	var state Record
	d, _, _ := state.Incr(Op{Node: nA, TS: 10}, 100, 0)
	state = Merge(state, d) // both replicas hold A's count of 100
	del := state.Delete(Op{Node: nB, TS: 11})
	inc, _, _ := state.Incr(Op{Node: nA, TS: 12}, 1, 0) // concurrent with the delete
	r := Merge(Merge(state, del), inc)
	// The increment made after the delete was not seen wins by timestamp; the
	// value should be 1 (what was added since the delete), not 101.
	if v := r.Read(0); v.Counter != 1 {
		t.Fatalf("counter after a delete raced with an increment: %+v, want 1", v)
	}
}

// A context covering dots a key has not been given yet (a token read from
// another key) would make later real writes under those dots disappear on
// merge. Tokens are therefore bound to their key. (A client that forges a
// token can still do this; clients are trusted with their key space.)
func TestTokenBoundToKey(t *testing.T) {
	ctx := Context{VV: vv(nC, 5)}
	tok := EncodeToken([]byte("k1"), ctx)
	got, err := DecodeToken([]byte("k1"), tok)
	if err != nil || !got.Equal(ctx) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if _, err := DecodeToken([]byte("k2"), tok); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("token of k1 accepted for k2: %v", err)
	}
	for i := range len(tok) {
		if _, err := DecodeToken([]byte("k1"), tok[:i]); !errors.Is(err, ErrBadEncoding) {
			t.Fatalf("truncated token (%d bytes) accepted: %v", i, err)
		}
	}
}

// TestCounterResets: what a write that supersedes counts observed stays
// removed, whatever raced it; increments it did not see stay, exactly.
func TestCounterResets(t *testing.T) {
	incr := func(r Record, n NodeID, ts Timestamp, by int64) (Record, Record) {
		d, _, err := r.Incr(Op{Node: n, TS: ts}, by, 0)
		if err != nil {
			t.Fatal(err)
		}
		return Merge(r, d), d
	}
	tests := []struct {
		name string
		run  func() Record
		want int64
	}{
		{"a set that raced an increment, then counted again", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			set := s.Set(Op{Node: nB, TS: 11}, []byte("5"), 0)
			_, inc := incr(s, nA, 12, 1)
			r, _ := incr(Merge(Merge(s, set), inc), nC, 13, 2)
			return r // A's unseen 1 wins over the value, which counts no more; C's 2
		}, 3},
		{"two deletes that saw different totals", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			early := s.Delete(Op{Node: nB, TS: 11})
			s2, _ := incr(s, nA, 12, 10)
			late := s2.Delete(Op{Node: nC, TS: 13})
			_, inc := incr(s2, nA, 14, 1)
			return Merge(Merge(Merge(s, late), inc), early)
		}, 1},
		{"the racing node counts on after it saw the delete", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			del := s.Delete(Op{Node: nB, TS: 11})
			onA, _ := incr(s, nA, 12, 1)
			onA = Merge(onA, del)
			onA, _ = incr(onA, nA, 13, 2)
			return Merge(onA, del)
		}, 3},
		{"counting again from the tombstone, on the deleter and on the counter", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			s = Merge(s, s.Delete(Op{Node: nB, TS: 11}))
			onB, fromB := incr(s, nB, 12, 4)
			onA, fromA := incr(s, nA, 13, 7)
			return Merge(Merge(onA, fromB), Merge(onB, fromA))
		}, 11},
		{"a replica that collected the key takes the counter's resets from the next increment", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			s = Merge(s, s.Delete(Op{Node: nB, TS: 11}))
			_, d := incr(s, nA, 12, 3) // A goes on from its reset
			return Merge(Record{}, d)
		}, 3},
		{"a replica that missed a link of a node's chain, then deleted", func() Record {
			s, d1 := incr(Record{}, nA, 10, 1)
			s, _ = incr(s, nA, 11, 0) // never reaches B
			s, d3 := incr(s, nA, 12, 0)
			onB := Merge(Merge(Record{}, d1), d3) // A's first and third totals, 1 each
			if v := onB.Read(0); v.Counter != 1 {
				t.Fatalf("B counts %+v, want A's totals once (1): %s", v, fmtRecord(onB))
			}
			del := onB.Delete(Op{Node: nB, TS: 13})
			_, inc := incr(s, nA, 14, 5)
			return Merge(Merge(onB, del), inc)
		}, 5},
		{"a lineage started after the key was collected ignores an old reset", func() Record {
			s, _ := incr(Record{}, nA, 10, 100)
			stale := Merge(s, s.Delete(Op{Node: nB, TS: 11})) // still held by B
			fresh, _, _ := Record{}.Incr(Op{Node: nA, TS: 20, Seq: 50}, 3, 0)
			return Merge(stale, fresh)
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run()
			if err := checkRecord(r); err != nil {
				t.Fatalf("%v: %s", err, fmtRecord(r))
			}
			if v := r.Read(0); !v.Found || v.Kind != KindCount || v.Counter != tt.want {
				t.Fatalf("counter reads %+v, want %d: %s", v, tt.want, fmtRecord(r))
			}
		})
	}
}
