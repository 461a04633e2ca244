package cascade

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// rendezvous returns the score of candidate for key: every node computes
// the same scores, so every member that sees the same live members names
// the same relay, and when the relay leaves only its choice moves.
func rendezvous(key, candidate string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(candidate))
	return mix(h.Sum64())
}

// mix spreads FNV's output (splitmix64's finalizer): FNV alone scores
// candidates that differ in their last byte too much alike.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// chooseRelay returns the relay of domain among the live members' IDs: the
// one with the highest rendezvous score ("" when there is none).
func chooseRelay(domain string, live []string) string {
	var best string
	var top uint64
	for _, id := range live {
		if s := rendezvous(domain, id); best == "" || s > top || (s == top && id < best) {
			best, top = id, s
		}
	}
	return best
}

// preference orders the parent's members for the node self: by rendezvous
// score, so that the members of a child domain spread their probes and
// reads over the parent's members, and each fails over in its own order.
func preference(self string, members []memberInfo) []memberInfo {
	out := slices.Clone(members)
	slices.SortFunc(out, func(a, b memberInfo) int {
		return cmp.Or(cmp.Compare(rendezvous(self, b.ID), rendezvous(self, a.ID)), cmp.Compare(a.ID, b.ID))
	})
	return out
}
