package crdt

import (
	"testing"

	"pgregory.net/rapid"
)

func TestVectorArithmetic(t *testing.T) {
	tests := []struct {
		name         string
		a, b         VersionVector
		min, lag     VersionVector
		restrictTo   []NodeID
		restricted   VersionVector
		lagSum       uint64
		bDescendsLag bool
	}{
		{name: "empty", min: VersionVector{}, restricted: VersionVector{}, bDescendsLag: true},
		{"disjoint", vv(nA, 2), vv(nB, 3), VersionVector{}, vv(nA, 2), []NodeID{nB}, VersionVector{}, 2, false},
		{"a ahead", vv(nA, 5, nB, 1), vv(nA, 3, nB, 1), vv(nA, 3, nB, 1), vv(nA, 2), []NodeID{nA}, vv(nA, 5), 2, false},
		{"b ahead", vv(nA, 1), vv(nA, 4, nC, 2), vv(nA, 1), nil, []NodeID{nA, nB, nC}, vv(nA, 1), 0, true},
		{"mixed", vv(nA, 7, nB, 2, nC, 9), vv(nA, 3, nB, 8), vv(nA, 3, nB, 2), vv(nA, 4, nC, 9), []NodeID{nB, nC}, vv(nB, 2, nC, 9), 13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MinVV(tt.a, tt.b); !got.Equal(tt.min) {
				t.Errorf("MinVV = %s, want %s", got, tt.min)
			}
			lag := Lag(tt.a, tt.b)
			if !lag.Equal(tt.lag) {
				t.Errorf("Lag = %s, want %s", lag, tt.lag)
			}
			if got := lag.Sum(); got != tt.lagSum {
				t.Errorf("Lag sum = %d, want %d", got, tt.lagSum)
			}
			if got := lag == nil; got != tt.bDescendsLag {
				t.Errorf("Lag nil = %v, want %v", got, tt.bDescendsLag)
			}
			if got := Restrict(tt.a, tt.restrictTo); !got.Equal(tt.restricted) {
				t.Errorf("Restrict = %s, want %s", got, tt.restricted)
			}
		})
	}
}

// TestVectorLaws checks MinVV and Lag against MergeVV and Descends.
func TestVectorLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genSmallVV().Draw(t, "a"), genSmallVV().Draw(t, "b")
		lo := MinVV(a, b)
		if !a.Descends(lo) || !b.Descends(lo) {
			t.Fatalf("MinVV(%s, %s) = %s is not below both", a, b, lo)
		}
		if !lo.Equal(MinVV(b, a)) {
			t.Fatalf("MinVV not commutative on %s, %s", a, b)
		}
		lag := Lag(a, b)
		if (lag == nil) != b.Descends(a) {
			t.Fatalf("Lag(%s, %s) = %s, but Descends says %v", a, b, lag, b.Descends(a))
		}
		// Adding the lag to behind reaches ahead.
		caught := MergeVV(b, nil)
		for _, e := range lag {
			caught = caught.With(e.Node, b.Get(e.Node)+e.Counter)
		}
		if !caught.Descends(a) {
			t.Fatalf("%s plus its lag %s = %s does not reach %s", b, lag, caught, a)
		}
	})
}
