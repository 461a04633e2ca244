package gossip

import (
	"cmp"
	"slices"
)

// BuildRing returns the alive members in ring order: by ringHash of their
// ID, ties by ID. Members that see the same live set build the same ring.
func BuildRing(members []Member) []Member {
	ring := make([]Member, 0, len(members))
	for _, m := range members {
		if m.State == StateAlive {
			ring = append(ring, m)
		}
	}
	slices.SortFunc(ring, func(a, b Member) int {
		return comparePos(ringHash(a.ID), a.ID, ringHash(b.ID), b.ID)
	})
	return ring
}

// Successor returns the member after id on ring (as BuildRing orders it),
// wrapping around. id need not be on the ring: a member that is not alive
// still has a position. It reports false when no other member is on ring.
func Successor(ring []Member, id string) (Member, bool) {
	i, found := search(ring, id)
	if found {
		i++
	}
	return other(ring, i, id)
}

// Predecessor returns the member before id on ring, wrapping around, as
// Successor does the other way.
func Predecessor(ring []Member, id string) (Member, bool) {
	i, _ := search(ring, id)
	return other(ring, i-1, id)
}

// search finds where id is, or would be, on ring.
func search(ring []Member, id string) (int, bool) {
	h := ringHash(id)
	return slices.BinarySearchFunc(ring, id, func(m Member, id string) int {
		return comparePos(ringHash(m.ID), m.ID, h, id)
	})
}

// other returns ring[i], wrapping i around, unless that is id itself: id's
// neighbour is only itself when it is alone on the ring.
func other(ring []Member, i int, id string) (Member, bool) {
	if len(ring) == 0 {
		return Member{}, false
	}
	m := ring[(i%len(ring)+len(ring))%len(ring)]
	if m.ID == id {
		return Member{}, false
	}
	return m, true
}

func comparePos(ha uint64, a string, hb uint64, b string) int {
	if c := cmp.Compare(ha, hb); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// ringHash is FNV-1a, 64 bits, of the ID's text: node IDs are random, but
// hashing spreads IDs that a person or a test chose.
func ringHash(id string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return h
}
