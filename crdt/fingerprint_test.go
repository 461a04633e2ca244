package crdt

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestFingerprintIgnoresWhatNoMergeCanTell: expired entries, purged or not,
// and context dots the holder's applied vector covers leave the
// fingerprint alone.
func TestFingerprintIgnoresWhatNoMergeCanTell(t *testing.T) {
	const now = 1000
	key := []byte("k")
	live := []Entry{
		val(nA, 1, 10, "x"),
		count(nB, 2, 11, 3, 1),
		expiring(val(nC, 3, 12, "y"), now+10),
		tomb(0xe, 1, 9),
	}
	applied := vv(nA, 9, nB, 7, nC, 4, NodeID(0xd), 3, NodeID(0xe), 1)
	base := rec(Context{}, live...)
	fp := base.Fingerprint(key, now, applied)
	if fp == 0 {
		t.Fatal("live record has a zero fingerprint")
	}
	same := []struct {
		name string
		r    Record
	}{
		{"a larger context within applied", rec(ctxOf(vv(nA, 9, nC, 4), Dot{nB, 7}, Dot{0xd, 3}), live...)},
		{"an expired value", rec(Context{}, append(slices.Clone(live), expiring(val(0xd, 1, 20, "z"), now))...)},
		{"an expired count", rec(Context{}, append(slices.Clone(live), expiring(count(0xd, 1, 20, 5, 0), now-1))...)},
		{"an expired tombstone", rec(Context{}, append(slices.Clone(live), expiring(tomb(0xd, 1, 20), now))...)},
		{"the entries of a replica that purged", func() Record {
			r, _ := rec(Context{}, append(slices.Clone(live), expiring(val(0xd, 1, 20, "z"), 5))...).Purge(now)
			return r
		}()},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Fingerprint(key, now, applied); got != fp {
				t.Fatalf("fingerprint %x, want %x: %s", got, fp, fmtRecord(tt.r))
			}
		})
	}
}

func TestFingerprintSeesEveryShownField(t *testing.T) {
	const now = 1000
	key := []byte("key")
	base := []Entry{
		expiring(val(nA, 4, 10, "ab"), now+100),
		val(nB, 2, 11, "c"),
		count(nC, 7, 12, 5, 2),
	}
	fp := rec(Context{}, base...).Fingerprint(key, now, nil)
	edit := func(f func(es []Entry)) []Entry {
		es := slices.Clone(base)
		f(es)
		return es
	}
	tests := []struct {
		name    string
		key     string
		entries []Entry
	}{
		{"key", "kez", base},
		{"key length", "key\x00", base},
		{"dot node", "key", edit(func(es []Entry) { es[1].Dot.Node = 0xd })},
		{"dot counter", "key", edit(func(es []Entry) { es[1].Dot.Counter = 3 })},
		{"timestamp", "key", edit(func(es []Entry) { es[1].TS++ })},
		{"expiry", "key", edit(func(es []Entry) { es[0].Expiry++ })},
		{"expiry set", "key", edit(func(es []Entry) { es[1].Expiry = now + 100 })},
		{"expiry cleared", "key", edit(func(es []Entry) { es[0].Expiry = 0 })},
		{"value", "key", edit(func(es []Entry) { es[1].Value = []byte("d") })},
		{"value split differently between siblings", "key", edit(func(es []Entry) {
			es[0].Value, es[1].Value = []byte("a"), []byte("bc")
		})},
		{"inc", "key", edit(func(es []Entry) { es[2].Inc++ })},
		{"dec", "key", edit(func(es []Entry) { es[2].Dec++ })},
		{"inc and dec with the same sum", "key", edit(func(es []Entry) { es[2].Inc++; es[2].Dec++ })},
		{"kind", "key", edit(func(es []Entry) { es[1].Kind = KindCount })},
		{"count to base", "key", edit(func(es []Entry) { es[2].Kind = KindBase })},
		{"lineage", "key", edit(func(es []Entry) { es[2].Origin = 3 })},
		{"a sibling fewer", "key", base[:2]},
		{"a sibling more", "key", append(slices.Clone(base), val(0xd, 1, 1, ""))},
		{"a tombstone sibling", "key", append(slices.Clone(base), tomb(0xd, 1, 20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec(Context{}, tt.entries...)
			if got := r.Fingerprint([]byte(tt.key), now, nil); got == fp || got == 0 {
				t.Fatalf("fingerprint %x of %s unchanged or zero", got, fmtRecord(r))
			}
		})
	}
	t.Run("resets", func(t *testing.T) {
		r := rec(Context{}, base...)
		seen := map[uint64]string{fp: "none"}
		for _, rs := range [][]Reset{
			{{Node: nC, Origin: 0, Inc: 5}},
			{{Node: nC, Origin: 0, Inc: 4}},
			{{Node: nC, Origin: 0, Dec: 5}},
			{{Node: nC, Origin: 7, Inc: 5}},
			{{Node: nB, Origin: 0, Inc: 5}},
			{{Node: nB, Origin: 0, Inc: 5}, {Node: nC, Origin: 0, Inc: 5}},
		} {
			r.Resets = rs
			got := r.Fingerprint(key, now, nil)
			if prev, dup := seen[got]; dup || got == 0 {
				t.Fatalf("fingerprint %x of resets %v is zero or that of %s", got, rs, prev)
			}
			seen[got] = fmt.Sprint(rs)
		}
	})
	t.Run("a context dot beyond applied", func(t *testing.T) {
		r := rec(ctxOf(vv(nA, 4, nB, 2, nC, 7), Dot{0xd, 5}), base...)
		applied := vv(nA, 4, nB, 2, nC, 7)
		if got := r.Fingerprint(key, now, applied); got == fp || got == 0 {
			t.Fatalf("fingerprint %x unchanged or zero", got)
		}
		if want := rec(Context{}, base...).Fingerprint(key, now, applied); r.Fingerprint(key, now, applied.With(0xd, 5)) != want {
			t.Fatal("the fingerprint still differs once applied covers the dot")
		}
	})
}

func TestFingerprintZero(t *testing.T) {
	const now = 1000
	applied := vv(nA, 9, nB, 9)
	tests := []struct {
		name string
		r    Record
		zero bool
	}{
		{"zero record", Record{}, true},
		{"context within applied", Record{Context: ctxOf(vv(nA, 4), Dot{nB, 9})}, true},
		{"expired entries only", rec(Context{}, expiring(val(nA, 1, 10, "x"), now), expiring(count(nB, 1, 11, 1, 0), 1)), true},
		{"context beyond applied", Record{Context: ctxOf(vv(nA, 10))}, false},
		{"a context dot beyond applied", Record{Context: ctxOf(nil, Dot{nB, 12})}, false},
		{"tombstones only", rec(Context{}, tomb(nA, 1, 10), tomb(nB, 1, 11)), false},
		{"a tombstone and an expired value", rec(Context{}, tomb(nA, 2, 12), expiring(val(nA, 1, 10, "x"), now)), false},
		{"resets only", Record{Context: ctxOf(vv(nA, 4)), Resets: []Reset{{Node: nA, Origin: 1, Inc: 3}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range [][]byte{[]byte("k"), nil} {
				if got := tt.r.Fingerprint(key, now, applied); (got == 0) != tt.zero {
					t.Fatalf("fingerprint of key %q = %x, want zero: %v", key, got, tt.zero)
				}
			}
		})
	}
}

// TestPropFingerprint, with an applied vector that covers every context:
// zero exactly when no entry is live and there is no reset; unchanged by the
// context and by expired entries; changed by any change to a live entry, to
// the resets or to the key.
func TestPropFingerprint(t *testing.T) {
	var live, mutated int
	rapid.Check(t, func(t *rapid.T) {
		r := genRecord().Draw(t, "record")
		key := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "key")
		now := rapid.Int64Max(math.MaxInt64-1).Draw(t, "now")
		// The same live entries with another context and expired extras.
		var shown, hidden []Entry
		for _, e := range r.Entries {
			if e.Live(now) {
				shown = append(shown, e)
			}
		}
		for _, e := range rapid.SliceOfN(genEntry(), 0, 3).Draw(t, "extras") {
			if !e.Live(now) {
				hidden = append(hidden, e)
			}
		}
		entries := slices.Clone(shown)
		for _, e := range hidden {
			if !slices.ContainsFunc(entries, func(o Entry) bool { return o.Dot == e.Dot }) {
				entries = append(entries, e)
			}
		}
		other := recordOf(genContext().Draw(t, "other context"), entries)
		other.Resets = r.Resets
		applied := covering(r.Context, other.Context)
		fp := r.Fingerprint(key, now, applied)
		if (fp == 0) != (len(shown) == 0 && len(r.Resets) == 0) {
			t.Fatalf("fingerprint %x with %d live entries: %s", fp, len(shown), fmtRecord(r))
		}
		if r.Fingerprint(key, now, applied) != fp {
			t.Fatal("fingerprint not deterministic")
		}
		if got := other.Fingerprint(key, now, applied); got != fp {
			t.Fatalf("fingerprint %x of %s, want %x of %s", got, fmtRecord(other), fp, fmtRecord(r))
		}

		if len(r.Resets) > 0 {
			rs := slices.Clone(r.Resets)
			z := &rs[rapid.IntRange(0, len(rs)-1).Draw(t, "reset")]
			if rapid.Bool().Draw(t, "reset inc") {
				z.Inc++
			} else {
				z.Dec++
			}
			if got := (Record{Entries: r.Entries, Context: r.Context, Resets: rs}).Fingerprint(key, now, applied); got == fp {
				t.Fatalf("changing resets %v to %v kept fingerprint %x", r.Resets, rs, fp)
			}
		}
		if len(shown) == 0 {
			return
		}
		live++
		if got := r.Fingerprint(append(slices.Clone(key), rapid.Byte().Draw(t, "key byte")), now, applied); got == fp {
			t.Fatalf("a longer key kept fingerprint %x", fp)
		}
		i := rapid.IntRange(0, len(shown)-1).Draw(t, "entry")
		changed := slices.Clone(shown)
		e := &changed[i]
		switch field := rapid.IntRange(0, 7).Draw(t, "field"); field {
		case 0:
			e.Dot.Node++
		case 1:
			e.Dot.Counter++
		case 2:
			e.TS++
		case 3:
			// Another expiry at which the entry is still live.
			switch {
			case e.Expiry == 0:
				e.Expiry = max(now+1, 1)
			case e.Expiry < math.MaxInt64:
				e.Expiry++
			default:
				e.Expiry = 0
			}
		case 4:
			e.Value = append(slices.Clone(e.Value), 'x')
		case 5:
			e.Inc++
		case 6:
			e.Dec++
		case 7:
			e.Origin++
		}
		if entriesEqual(*e, shown[i]) || !e.Live(now) {
			t.Fatalf("the mutation did not change a live entry: %+v", *e)
		}
		if got := (Record{Entries: changed, Resets: r.Resets}).Fingerprint(key, now, applied); got == fp {
			t.Fatalf("changing entry %d to %+v kept fingerprint %x", i, *e, fp)
		}
		mutated++
	})
	t.Logf("live records: %d, mutations checked: %d", live, mutated)
}

// covering returns a vector that covers every dot of the contexts.
func covering(cs ...Context) VersionVector {
	var v VersionVector
	for _, c := range cs {
		v = MergeVV(v, c.VV)
		for _, d := range c.Cloud {
			if v.Get(d.Node) < d.Counter {
				v = v.With(d.Node, d.Counter)
			}
		}
	}
	return v
}

func TestBucketPinned(t *testing.T) {
	// xxhash64("") = 0xef46db3751d8e999: every node, every version, must
	// put a key in the same bucket.
	tests := []struct {
		key  string
		bits uint
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x1},
		{"", 4, 0xe},
		{"", 8, 0xef},
		{"", 16, 0xef46},
		{"", 32, 0xef46db37},
		{"anything", 0, 0},
	}
	for _, tt := range tests {
		if got := Bucket([]byte(tt.key), tt.bits); got != tt.want {
			t.Errorf("Bucket(%q, %d) = %#x, want %#x", tt.key, tt.bits, got, tt.want)
		}
	}
}

// TestPropBucket: in range and deterministic; a key's bucket at bits is the
// prefix of its bucket at bits+1, so bucket sets refine by halving.
func TestPropBucket(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "key")
		bits := rapid.UintRange(0, 32).Draw(t, "bits")
		b := Bucket(key, bits)
		if uint64(b) >= 1<<bits {
			t.Fatalf("Bucket(%q, %d) = %d, out of range", key, bits, b)
		}
		if Bucket(slices.Clone(key), bits) != b {
			t.Fatal("Bucket not deterministic")
		}
		if bits < 32 {
			if finer := Bucket(key, bits+1); finer>>1 != b {
				t.Fatalf("Bucket(%q, %d) = %d but at %d bits %d", key, bits, b, bits+1, finer)
			}
		}
	})
}

func TestBucketSpread(t *testing.T) {
	const (
		keys = 10_000
		bits = 4
		mean = keys >> bits
	)
	var n [1 << bits]int
	for i := range keys {
		n[Bucket(fmt.Appendf(nil, "key:%d", i), bits)]++
	}
	for b, c := range n {
		if c < mean/2 || c > 2*mean {
			t.Errorf("bucket %d holds %d of %d keys, mean %d", b, c, keys, mean)
		}
	}
}

// TestFingerprintFramesKeyAndValues: the key and each value are hashed with
// their lengths, so bytes cannot move across a boundary. Each pair below
// would hash the same byte string without the length prefixes; the inputs
// are built from the layout Fingerprint hashes (see framedEntry).
func TestFingerprintFramesKeyAndValues(t *testing.T) {
	const now = 1000
	e1, e2 := val(nA, 1, 10, "x"), val(nB, 2, 11, "y")
	if rec(Context{}, e1, e2).Fingerprint([]byte("k"), now, nil) ==
		rec(Context{}, e2).Fingerprint(append([]byte("k"), framedEntry(e1, true)...), now, nil) {
		t.Error("a key that spells out the first sibling hashes like the sibling")
	}
	long := e1
	long.Value = append([]byte("x"), framedEntry(e2, false)...)
	if rec(Context{}, e1, e2).Fingerprint([]byte("k"), now, nil) == rec(Context{}, long).Fingerprint([]byte("k"), now, nil) {
		t.Error("a value that spells out the next sibling hashes like the sibling")
	}
}

// framedEntry is an entry as Fingerprint lays it out, with or without the
// value's length.
func framedEntry(e Entry, withLen bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(e.Dot.Node))
	b = binary.BigEndian.AppendUint64(b, e.Dot.Counter)
	b = binary.BigEndian.AppendUint64(b, uint64(e.TS))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expiry))
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint64(b, e.Inc)
	b = binary.BigEndian.AppendUint64(b, e.Dec)
	if withLen {
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Value)))
	}
	return append(b, e.Value...)
}
