package crdt

import (
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

const (
	nA NodeID = 0xa
	nB NodeID = 0xb
	nC NodeID = 0xc
)

func vv(pairs ...any) VersionVector {
	var out VersionVector
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, VVEntry{pairs[i].(NodeID), uint64(pairs[i+1].(int))})
	}
	return out
}

func dots(pairs ...any) []Dot {
	var out []Dot
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Dot{pairs[i].(NodeID), uint64(pairs[i+1].(int))})
	}
	return out
}

func ctxOf(v VersionVector, cloud ...Dot) Context { return Context{VV: v, Cloud: cloud} }

func TestNormalize(t *testing.T) {
	tests := []struct {
		name      string
		vv        VersionVector
		cloud     []Dot
		wantVV    VersionVector
		wantCloud []Dot
	}{
		{"empty", nil, nil, nil, nil},
		{"vector only", vv(nA, 3), nil, vv(nA, 3), nil},
		{"covered dot dropped", vv(nA, 3), dots(nA, 2), vv(nA, 3), nil},
		{"adjacent dot folds", vv(nA, 3), dots(nA, 4), vv(nA, 4), nil},
		{"chain folds in any order", vv(nA, 1), dots(nA, 4, nA, 2, nA, 3), vv(nA, 4), nil},
		{"gap kept", vv(nA, 1), dots(nA, 3), vv(nA, 1), dots(nA, 3)},
		{"fold up to a gap", vv(nA, 1), dots(nA, 2, nA, 4), vv(nA, 2), dots(nA, 4)},
		{"first dot of a new node folds", nil, dots(nB, 1), vv(nB, 1), nil},
		{"new node with a gap", nil, dots(nB, 2), nil, dots(nB, 2)},
		{"duplicates collapse", vv(nA, 1), dots(nA, 3, nA, 3), vv(nA, 1), dots(nA, 3)},
		{"zero counter dropped", nil, dots(nA, 0), nil, nil},
		{"nodes sorted and folded independently",
			vv(nA, 1, nC, 5), dots(nC, 7, nB, 1, nA, 2, nC, 6, nB, 3),
			vv(nA, 2, nB, 1, nC, 7), dots(nB, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.vv)
			got := normalize(tt.vv, slices.Clone(tt.cloud))
			want := Context{VV: tt.wantVV, Cloud: tt.wantCloud}
			if !got.VV.Equal(want.VV) || !slices.Equal(got.Cloud, want.Cloud) {
				t.Fatalf("normalize(%v, %v) = %v %v, want %v %v", tt.vv, tt.cloud, got.VV, got.Cloud, want.VV, want.Cloud)
			}
			if err := checkContext(got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tt.vv, before) {
				t.Fatalf("normalize modified its vector: %v -> %v", before, tt.vv)
			}
		})
	}
}

func TestContextAdd(t *testing.T) {
	tests := []struct {
		name string
		c    Context
		d    Dot
		want Context
	}{
		{"into empty, first dot", Context{}, Dot{nA, 1}, ctxOf(vv(nA, 1))},
		{"into empty, later dot", Context{}, Dot{nA, 3}, ctxOf(nil, Dot{nA, 3})},
		{"covered by vector", ctxOf(vv(nA, 3)), Dot{nA, 2}, ctxOf(vv(nA, 3))},
		{"already in cloud", ctxOf(vv(nA, 1), Dot{nA, 3}), Dot{nA, 3}, ctxOf(vv(nA, 1), Dot{nA, 3})},
		{"extends vector", ctxOf(vv(nA, 3)), Dot{nA, 4}, ctxOf(vv(nA, 4))},
		{"beyond a gap", ctxOf(vv(nA, 3)), Dot{nA, 5}, ctxOf(vv(nA, 3), Dot{nA, 5})},
		{"fills the gap and folds the cloud", ctxOf(vv(nA, 1), Dot{nA, 3}, Dot{nA, 4}, Dot{nB, 2}), Dot{nA, 2},
			ctxOf(vv(nA, 4), Dot{nB, 2})},
		{"other node", ctxOf(vv(nA, 3)), Dot{nB, 1}, ctxOf(vv(nA, 3, nB, 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := Context{VV: slices.Clone(tt.c.VV), Cloud: slices.Clone(tt.c.Cloud)}
			got := tt.c.Add(tt.d)
			if !got.Equal(tt.want) {
				t.Fatalf("Add(%v) = %v %v, want %v %v", tt.d, got.VV, got.Cloud, tt.want.VV, tt.want.Cloud)
			}
			if !got.Covers(tt.d) {
				t.Fatalf("Add(%v) does not cover it", tt.d)
			}
			if !tt.c.VV.Equal(orig.VV) || !slices.Equal(tt.c.Cloud, orig.Cloud) {
				t.Fatalf("Add modified its receiver")
			}
		})
	}
}

func TestContextCoversAndMax(t *testing.T) {
	c := ctxOf(vv(nA, 3, nC, 1), Dot{nA, 5}, Dot{nB, 4}, Dot{nB, 9})
	tests := []struct {
		d    Dot
		want bool
	}{
		{Dot{nA, 1}, true}, {Dot{nA, 3}, true}, {Dot{nA, 4}, false}, {Dot{nA, 5}, true}, {Dot{nA, 6}, false},
		{Dot{nB, 1}, false}, {Dot{nB, 4}, true}, {Dot{nB, 5}, false}, {Dot{nB, 9}, true},
		{Dot{nC, 1}, true}, {Dot{nC, 2}, false}, {Dot{0xd, 1}, false},
	}
	for _, tt := range tests {
		if got := c.Covers(tt.d); got != tt.want {
			t.Errorf("Covers(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
	for n, want := range map[NodeID]uint64{nA: 5, nB: 9, nC: 1, 0xd: 0} {
		if got := c.Max(n); got != want {
			t.Errorf("Max(%v) = %d, want %d", n, got, want)
		}
	}
	if (Context{}).Max(nA) != 0 || (Context{}).Covers(Dot{nA, 1}) || !(Context{}).IsZero() || c.IsZero() {
		t.Error("zero context misbehaves")
	}
}

func TestMergeContext(t *testing.T) {
	tests := []struct {
		name    string
		a, b    Context
		want    Context
		aliases bool // the result may be one of the inputs
	}{
		{"both empty", Context{}, Context{}, Context{}, true},
		{"empty left", Context{}, ctxOf(vv(nA, 2), Dot{nB, 3}), ctxOf(vv(nA, 2), Dot{nB, 3}), true},
		{"empty right", ctxOf(vv(nA, 2)), Context{}, ctxOf(vv(nA, 2)), true},
		{"pointwise max", ctxOf(vv(nA, 2, nB, 5)), ctxOf(vv(nA, 4, nC, 1)), ctxOf(vv(nA, 4, nB, 5, nC, 1)), false},
		{"cloud covered by the other vector", ctxOf(vv(nA, 1), Dot{nA, 3}), ctxOf(vv(nA, 5)), ctxOf(vv(nA, 5)), false},
		{"cloud folds into the merged vector", ctxOf(vv(nA, 1), Dot{nA, 4}), ctxOf(vv(nA, 3)), ctxOf(vv(nA, 4)), false},
		{"clouds fill each other's gaps", ctxOf(vv(nA, 1), Dot{nA, 3}), ctxOf(nil, Dot{nA, 2}, Dot{nA, 5}),
			ctxOf(vv(nA, 3), Dot{nA, 5}), false},
		{"gaps kept", ctxOf(vv(nA, 1), Dot{nA, 3}), ctxOf(vv(nB, 1), Dot{nB, 4}), ctxOf(vv(nA, 1, nB, 1), Dot{nA, 3}, Dot{nB, 4}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a0 := Context{VV: slices.Clone(tt.a.VV), Cloud: slices.Clone(tt.a.Cloud)}
			b0 := Context{VV: slices.Clone(tt.b.VV), Cloud: slices.Clone(tt.b.Cloud)}
			for _, got := range []Context{MergeContext(tt.a, tt.b), MergeContext(tt.b, tt.a)} {
				if !got.Equal(tt.want) {
					t.Fatalf("got %v %v, want %v %v", got.VV, got.Cloud, tt.want.VV, tt.want.Cloud)
				}
				if err := checkContext(got); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.a.Equal(a0) || !tt.b.Equal(b0) {
				t.Fatal("MergeContext modified an input")
			}
		})
	}
}

// dotSet expands a context with small counters into the set it stands for.
func dotSet(c Context) map[Dot]bool {
	s := map[Dot]bool{}
	for _, e := range c.VV {
		for i := uint64(1); i <= e.Counter; i++ {
			s[Dot{e.Node, i}] = true
		}
	}
	for _, d := range c.Cloud {
		if d.Counter > 0 {
			s[d] = true
		}
	}
	return s
}

// TestPropContextOps checks the context operations against sets of dots.
func TestPropContextOps(t *testing.T) {
	small := rapid.Custom(func(t *rapid.T) Dot {
		return Dot{NodeID(rapid.IntRange(1, 3).Draw(t, "node")), uint64(rapid.IntRange(0, 8).Draw(t, "counter"))}
	})
	genSmall := rapid.Custom(func(t *rapid.T) Context {
		v := VersionVector{}
		for _, d := range rapid.SliceOfN(small, 0, 3).Draw(t, "vv") {
			v = v.With(d.Node, d.Counter)
		}
		return normalize(v, rapid.SliceOfN(small, 0, 8).Draw(t, "cloud"))
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := genSmall.Draw(t, "a"), genSmall.Draw(t, "b")
		d := small.Draw(t, "d")
		for _, c := range []Context{a, b} {
			if err := checkContext(c); err != nil {
				t.Fatal(err)
			}
		}
		sa, sb := dotSet(a), dotSet(b)
		if got := a.Covers(d); got != (sa[d] || d.Counter == 0) {
			t.Fatalf("Covers(%v) = %v", d, got)
		}
		var maxA uint64
		for x := range sa {
			if x.Node == d.Node {
				maxA = max(maxA, x.Counter)
			}
		}
		if got := a.Max(d.Node); got != maxA {
			t.Fatalf("Max = %d, want %d", got, maxA)
		}
		added := a.Add(d)
		want := maps.Clone(sa)
		if d.Counter > 0 {
			want[d] = true
		}
		if err := checkContext(added); err != nil || !maps.Equal(dotSet(added), want) {
			t.Fatalf("Add(%v) to %v %v = %v %v (%v)", d, a.VV, a.Cloud, added.VV, added.Cloud, err)
		}
		m := MergeContext(a, b)
		union := maps.Clone(sa)
		maps.Copy(union, sb)
		if err := checkContext(m); err != nil || !maps.Equal(dotSet(m), union) {
			t.Fatalf("MergeContext = %v %v (%v)", m.VV, m.Cloud, err)
		}
		if !m.Equal(MergeContext(b, a)) || !MergeContext(a, a).Equal(a) {
			t.Fatal("MergeContext not commutative or not idempotent")
		}
		if !canonical(m).Equal(m) {
			t.Fatal("the test's canonical form disagrees with normalize")
		}
	})
}

func TestVersionVectorWith(t *testing.T) {
	base := vv(nA, 2, nC, 3)
	tests := []struct {
		name string
		n    NodeID
		c    uint64
		want VersionVector
	}{
		{"insert first", 1, 1, vv(NodeID(1), 1, nA, 2, nC, 3)},
		{"insert middle", nB, 7, vv(nA, 2, nB, 7, nC, 3)},
		{"insert last", 0xd, 4, vv(nA, 2, nC, 3, NodeID(0xd), 4)},
		{"replace", nA, 9, vv(nA, 9, nC, 3)},
		{"lower", nC, 1, vv(nA, 2, nC, 1)},
		{"remove with zero", nA, 0, vv(nC, 3)},
		{"remove absent", nB, 0, vv(nA, 2, nC, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := base.With(tt.n, tt.c)
			if !got.Equal(tt.want) {
				t.Fatalf("With(%v, %d) = %v, want %v", tt.n, tt.c, got, tt.want)
			}
			if got.Get(tt.n) != tt.c {
				t.Fatalf("Get after With = %d", got.Get(tt.n))
			}
			if !base.Equal(vv(nA, 2, nC, 3)) {
				t.Fatalf("With modified its receiver: %v", base)
			}
		})
	}
	if (VersionVector(nil)).Get(nA) != 0 || base.Get(nB) != 0 || base.Get(nC) != 3 {
		t.Error("Get of absent or present node wrong")
	}
}

func TestVersionVectorDescendsAndMerge(t *testing.T) {
	tests := []struct {
		name       string
		a, b       VersionVector
		aDescendsB bool
		bDescendsA bool
		merged     VersionVector
	}{
		{"both empty", nil, nil, true, true, nil},
		{"empty vs some", nil, vv(nA, 1), false, true, vv(nA, 1)},
		{"equal", vv(nA, 1, nB, 2), vv(nA, 1, nB, 2), true, true, vv(nA, 1, nB, 2)},
		{"strictly ahead", vv(nA, 2, nB, 2), vv(nA, 1, nB, 2), true, false, vv(nA, 2, nB, 2)},
		{"ahead with an extra node", vv(nA, 1, nB, 2, nC, 1), vv(nA, 1, nB, 2), true, false, vv(nA, 1, nB, 2, nC, 1)},
		{"concurrent", vv(nA, 2, nB, 1), vv(nA, 1, nB, 2), false, false, vv(nA, 2, nB, 2)},
		{"disjoint", vv(nA, 1, nC, 4), vv(nB, 3), false, false, vv(nA, 1, nB, 3, nC, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Descends(tt.b); got != tt.aDescendsB {
				t.Errorf("a.Descends(b) = %v", got)
			}
			if got := tt.b.Descends(tt.a); got != tt.bDescendsA {
				t.Errorf("b.Descends(a) = %v", got)
			}
			a0, b0 := slices.Clone(tt.a), slices.Clone(tt.b)
			for _, m := range []VersionVector{MergeVV(tt.a, tt.b), MergeVV(tt.b, tt.a)} {
				if !m.Equal(tt.merged) {
					t.Errorf("MergeVV = %v, want %v", m, tt.merged)
				}
				if !m.Descends(tt.a) || !m.Descends(tt.b) {
					t.Errorf("merge %v does not descend its inputs", m)
				}
			}
			if !tt.a.Equal(a0) || !tt.b.Equal(b0) {
				t.Error("MergeVV modified an input")
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{vv(nA, 1, nB, 20).String(), "{000000000000000a:1,000000000000000b:20}"},
		{VersionVector(nil).String(), "{}"},
		{Dot{nC, 0}.String(), "000000000000000c:0"},
		{Dot{nC, 18446744073709551615}.String(), "000000000000000c:18446744073709551615"},
		{MakeTimestamp(1_700_000_000_123, 7).String(), "1700000000123.7"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
