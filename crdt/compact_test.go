package crdt

import (
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func cloneContext(c Context) Context {
	return Context{VV: slices.Clone(c.VV), Cloud: slices.Clone(c.Cloud)}
}

func TestContextRaise(t *testing.T) {
	tests := []struct {
		name string
		c    Context
		d    Dot
		want Context
	}{
		{"empty", Context{}, Dot{nA, 5}, ctxOf(vv(nA, 5))},
		{"raises over a gap", ctxOf(vv(nA, 2)), Dot{nA, 9}, ctxOf(vv(nA, 9))},
		{"absorbs the cloud dots below it", ctxOf(vv(nA, 1), Dot{nA, 3}, Dot{nA, 4}, Dot{nA, 8}, Dot{nB, 4}), Dot{nA, 5},
			ctxOf(vv(nA, 5), Dot{nA, 8}, Dot{nB, 4})},
		{"folds a cloud dot it reaches", ctxOf(vv(nA, 1), Dot{nA, 7}, Dot{nA, 8}, Dot{nA, 10}), Dot{nA, 6},
			ctxOf(vv(nA, 8), Dot{nA, 10})},
		{"a cloud dot at the counter", ctxOf(nil, Dot{nA, 5}), Dot{nA, 5}, ctxOf(vv(nA, 5))},
		{"never lowers", ctxOf(vv(nA, 7, nB, 2)), Dot{nA, 3}, ctxOf(vv(nA, 7, nB, 2))},
		{"equal counter is a no-op", ctxOf(vv(nA, 7), Dot{nA, 9}), Dot{nA, 7}, ctxOf(vv(nA, 7), Dot{nA, 9})},
		{"other nodes untouched", ctxOf(vv(nB, 2, nC, 1), Dot{nB, 5}), Dot{nA, 4}, ctxOf(vv(nA, 4, nB, 2, nC, 1), Dot{nB, 5})},
		{"zero counter is a no-op", ctxOf(vv(nB, 2)), Dot{nA, 0}, ctxOf(vv(nB, 2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := cloneContext(tt.c)
			got := tt.c.Raise(tt.d)
			if !got.Equal(tt.want) {
				t.Fatalf("Raise(%v) = %v %v, want %v %v", tt.d, got.VV, got.Cloud, tt.want.VV, tt.want.Cloud)
			}
			if err := checkContext(got); err != nil {
				t.Fatal(err)
			}
			if !tt.c.Equal(orig) {
				t.Fatal("Raise modified its receiver")
			}
		})
	}
}

// TestPropContextRaise: the raised context holds exactly the dots it held
// before and every dot of the node up to the counter.
func TestPropContextRaise(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSmallContext().Draw(t, "context")
		d := Dot{genSmallNode().Draw(t, "node"), rapid.Uint64Range(0, 14).Draw(t, "counter")}
		orig := cloneContext(c)
		got := c.Raise(d)
		if err := checkContext(got); err != nil {
			t.Fatalf("Raise(%v) of %v %v: %v", d, c.VV, c.Cloud, err)
		}
		if want := union(dotSet(c), dotRange(d.Node, d.Counter)); !maps.Equal(dotSet(got), want) {
			t.Fatalf("Raise(%v) of %v %v = %v %v", d, c.VV, c.Cloud, got.VV, got.Cloud)
		}
		if got.VV.Get(d.Node) < d.Counter || got.Max(d.Node) < c.Max(d.Node) {
			t.Fatalf("Raise(%v) lowered or did not reach the counter: %v %v", d, got.VV, got.Cloud)
		}
		if !c.Equal(orig) {
			t.Fatal("Raise modified its receiver")
		}
	})
}

func TestContextCompact(t *testing.T) {
	c := ctxOf(vv(nA, 2, nB, 1), Dot{nA, 5}, Dot{nA, 9}, Dot{nB, 4}, Dot{nC, 3})
	tests := []struct {
		name string
		seen VersionVector
		want Context
	}{
		{"nil seen", nil, c},
		{"seen below every cloud dot", vv(nA, 4, nB, 3, nC, 2), c},
		{"folds the cloud dots seen covers", vv(nA, 5, nC, 3), ctxOf(vv(nA, 5, nB, 1, nC, 3), Dot{nA, 9}, Dot{nB, 4})},
		{"folds up to the highest covered cloud dot, not to seen", vv(nA, 20), ctxOf(vv(nA, 9, nB, 1), Dot{nB, 4}, Dot{nC, 3})},
		{"everything", vv(nA, 9, nB, 4, nC, 3), ctxOf(vv(nA, 9, nB, 4, nC, 3))},
		{"unknown nodes in seen change nothing", vv(NodeID(0xd), 50), c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := cloneContext(c)
			got := c.Compact(tt.seen)
			if !got.Equal(tt.want) {
				t.Fatalf("Compact(%v) = %v %v, want %v %v", tt.seen, got.VV, got.Cloud, tt.want.VV, tt.want.Cloud)
			}
			if err := checkContext(got); err != nil {
				t.Fatal(err)
			}
			if !c.Equal(orig) {
				t.Fatal("Compact modified its receiver")
			}
		})
	}
}

// TestPropContextCompact: compacting keeps every dot, folds exactly the
// cloud dots seen covers (with every earlier dot of their node, which the
// holder has merged), adds nothing beyond them, and leaves a normalized
// context with no cloud dot seen covers.
func TestPropContextCompact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSmallContext().Draw(t, "context")
		seen := genSmallVV().Draw(t, "seen")
		orig := cloneContext(c)
		got := c.Compact(seen)
		if err := checkContext(got); err != nil {
			t.Fatalf("Compact(%v) of %v %v: %v", seen, c.VV, c.Cloud, err)
		}
		want := dotSet(c)
		for _, d := range c.Cloud {
			if seen.Covers(d) {
				want = union(want, dotRange(d.Node, d.Counter))
			}
		}
		if !maps.Equal(dotSet(got), want) {
			t.Fatalf("Compact(%v) of %v %v = %v %v", seen, c.VV, c.Cloud, got.VV, got.Cloud)
		}
		for _, d := range got.Cloud {
			if seen.Covers(d) {
				t.Fatalf("Compact(%v) left the covered dot %v in the cloud", seen, d)
			}
		}
		if !c.Equal(orig) {
			t.Fatal("Compact modified its receiver")
		}
		if !c.Compact(nil).Equal(c) || !c.Compact(VersionVector{}).Equal(c) {
			t.Fatal("Compact with no seen vector is not the identity")
		}
		if again := got.Compact(seen); !again.Equal(got) {
			t.Fatalf("Compact not idempotent: %v %v -> %v %v", got.VV, got.Cloud, again.VV, again.Cloud)
		}
	})
}

func TestContextCoveredBy(t *testing.T) {
	tests := []struct {
		name string
		c    Context
		vv   VersionVector
		want bool
	}{
		{"empty by nil", Context{}, nil, true},
		{"empty by anything", Context{}, vv(nA, 1), true},
		{"vector by nil", ctxOf(vv(nA, 1)), nil, false},
		{"vector equal", ctxOf(vv(nA, 3, nB, 2)), vv(nA, 3, nB, 2), true},
		{"vector above", ctxOf(vv(nA, 3)), vv(nA, 4, nC, 1), true},
		{"one node below", ctxOf(vv(nA, 3, nB, 2)), vv(nA, 3, nB, 1), false},
		{"node missing", ctxOf(vv(nA, 3, nB, 2)), vv(nA, 3), false},
		{"cloud dot at the counter", ctxOf(vv(nA, 1), Dot{nB, 5}), vv(nA, 1, nB, 5), true},
		{"cloud dot above", ctxOf(vv(nA, 1), Dot{nB, 5}), vv(nA, 1, nB, 4), false},
		{"only the cloud above", ctxOf(nil, Dot{nA, 7}), vv(nA, 6), false},
		{"the gap below a cloud dot needs no cover of its own", ctxOf(nil, Dot{nA, 7}), vv(nA, 7), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.CoveredBy(tt.vv); got != tt.want {
				t.Fatalf("%v %v CoveredBy(%v) = %v", tt.c.VV, tt.c.Cloud, tt.vv, got)
			}
		})
	}
}

func TestPropContextCoveredBy(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genSmallContext().Draw(t, "context")
		v := genSmallVV().Draw(t, "vv")
		if rapid.Bool().Draw(t, "from the context") {
			// Vectors near the context, where the answer flips.
			for _, d := range c.Cloud {
				v = v.With(d.Node, max(v.Get(d.Node), d.Counter))
			}
			for _, e := range c.VV {
				v = v.With(e.Node, max(v.Get(e.Node), e.Counter))
			}
			if n := genSmallNode().Draw(t, "lower"); v.Get(n) > 0 && rapid.Bool().Draw(t, "lower it") {
				v = v.With(n, v.Get(n)-1)
			}
		}
		want := true
		for d := range dotSet(c) {
			want = want && v.Covers(d)
		}
		if got := c.CoveredBy(v); got != want {
			t.Fatalf("%v %v CoveredBy(%v) = %v, want %v", c.VV, c.Cloud, v, got, want)
		}
		if c.CoveredBy(v) && !MergeContext(c, Context{VV: v}).Equal(canonical(Context{VV: v})) {
			t.Fatalf("covered, yet adding the context to %v adds dots", v)
		}
	})
}
