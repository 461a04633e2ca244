package gossip

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func alive(ids ...string) []Member {
	ms := make([]Member, len(ids))
	for i, id := range ids {
		ms[i] = Member{ID: id, State: StateAlive}
	}
	return ms
}

func TestRingHashIsFNV1a(t *testing.T) {
	// Reference values of FNV-1a 64 (draft-eastlake-fnv test vectors).
	for in, want := range map[string]uint64{
		"":       0xcbf29ce484222325,
		"a":      0xaf63dc4c8601ec8c,
		"foobar": 0x85944171f73967e8,
	} {
		if got := ringHash(in); got != want {
			t.Errorf("ringHash(%q) = %#x, want %#x", in, got, want)
		}
	}
}

func TestBuildRing(t *testing.T) {
	in := []string{"00000000000000a1", "00000000000000a2", "00000000000000a3", "00000000000000a4"}
	reversed := slices.Clone(in)
	slices.Reverse(reversed)
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, func(a, b string) int { return comparePos(ringHash(a), a, ringHash(b), b) })

	tests := []struct {
		name    string
		members []Member
		want    []string
	}{
		{"empty", nil, []string{}},
		{"single", alive(in[0]), []string{in[0]}},
		{"input order", alive(in...), sorted},
		{"reversed input", alive(reversed...), sorted},
		{"not alive left out", []Member{
			{ID: in[0], State: StateAlive}, {ID: in[1], State: StateFailed},
			{ID: in[2], State: StateLeft}, {ID: in[3], State: StateLeaving},
		}, []string{in[0]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(BuildRing(tc.members)); !slices.Equal(got, tc.want) {
				t.Fatalf("BuildRing = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNeighbours(t *testing.T) {
	ring := BuildRing(alive("00000000000000a1", "00000000000000a2", "00000000000000a3"))
	r0, r1, r2 := ring[0].ID, ring[1].ID, ring[2].ID
	// An ID that is not on the ring sorts somewhere; find its neighbours by
	// brute force.
	absent := "00000000000000ff"
	var after, before string
	for i := range ring {
		if comparePos(ringHash(ring[i].ID), ring[i].ID, ringHash(absent), absent) > 0 {
			after, before = ring[i].ID, ring[(i+len(ring)-1)%len(ring)].ID
			break
		}
	}
	if after == "" {
		after, before = ring[0].ID, ring[len(ring)-1].ID
	}

	tests := []struct {
		name       string
		ring       []Member
		id         string
		succ, pred string // "" means none
	}{
		{"empty ring", nil, r0, "", ""},
		{"alone", BuildRing(alive(r0)), r0, "", ""},
		{"alone, asked for another", BuildRing(alive(r0)), r1, r0, r0},
		{"pair", BuildRing(alive(r0, r1)), r0, r1, r1},
		{"first", ring, r0, r1, r2},
		{"middle", ring, r1, r2, r0},
		{"last wraps", ring, r2, r0, r1},
		{"not on the ring", ring, absent, after, before},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what string, m Member, ok bool, want string) {
				t.Helper()
				if ok != (want != "") || m.ID != want {
					t.Errorf("%s(%s) = %q, %v; want %q", what, tc.id, m.ID, ok, want)
				}
			}
			m, ok := Successor(tc.ring, tc.id)
			check("Successor", m, ok, tc.succ)
			m, ok = Predecessor(tc.ring, tc.id)
			check("Predecessor", m, ok, tc.pred)
		})
	}
}

// Walking Successor from any member visits every member once, and
// Predecessor undoes Successor.
func TestRingWalkProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		set := map[string]bool{}
		for len(set) < n {
			set[fmt.Sprintf("%016x", rapid.Uint64().Draw(t, "id"))] = true
		}
		var members []Member
		for id := range set {
			members = append(members, Member{ID: id, State: StateAlive})
		}
		ring := BuildRing(members)
		if len(ring) != n {
			t.Fatalf("ring has %d members, want %d", len(ring), n)
		}

		start := ring[rapid.IntRange(0, n-1).Draw(t, "start")].ID
		seen := map[string]bool{start: true}
		for cur := start; ; {
			next, ok := Successor(ring, cur)
			if !ok {
				if n != 1 {
					t.Fatalf("no successor of %s in a ring of %d", cur, n)
				}
				break
			}
			if back, _ := Predecessor(ring, next.ID); back.ID != cur {
				t.Fatalf("Predecessor(Successor(%s)) = %s", cur, back.ID)
			}
			if next.ID == start {
				break
			}
			if seen[next.ID] {
				t.Fatalf("walk revisits %s before returning to %s", next.ID, start)
			}
			seen[next.ID] = true
			cur = next.ID
		}
		if len(seen) != n {
			t.Fatalf("walk visited %d of %d members", len(seen), n)
		}
	})
}

func BenchmarkSuccessor(b *testing.B) {
	var members []Member
	for i := range 64 {
		members = append(members, Member{ID: fmt.Sprintf("%016x", i*7919), State: StateAlive})
	}
	ring := BuildRing(members)
	b.ReportAllocs()
	for b.Loop() {
		Successor(ring, members[17].ID)
	}
}
