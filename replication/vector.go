package replication

import (
	"slices"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// minVV returns the pointwise minimum of a and b: an origin missing from
// either is missing from the result.
func minVV(a, b crdt.VersionVector) crdt.VersionVector {
	out := make(crdt.VersionVector, 0, min(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Node < b[j].Node:
			i++
		case a[i].Node > b[j].Node:
			j++
		default:
			out = append(out, crdt.VVEntry{Node: a[i].Node, Counter: min(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	return out
}

// without returns v without n's entry, sharing v when n is absent.
func without(v crdt.VersionVector, n crdt.NodeID) crdt.VersionVector {
	if v.Get(n) == 0 {
		return v
	}
	return v.With(n, 0)
}

// restrict returns v's counters for the origins of entries (sorted by
// origin, each once): what an ack of a push needs to say.
func restrict(v crdt.VersionVector, origins []crdt.NodeID) crdt.VersionVector {
	out := make(crdt.VersionVector, 0, len(origins))
	for _, o := range origins {
		if c := v.Get(o); c != 0 {
			out = append(out, crdt.VVEntry{Node: o, Counter: c})
		}
	}
	return out
}

// sortedOrigins returns the distinct origins in ents, sorted, reusing buf.
func sortedOrigins(buf []crdt.NodeID, ents []store.LogEntry) []crdt.NodeID {
	buf = buf[:0]
	for i := range ents {
		if o := ents[i].Origin; len(buf) == 0 || buf[len(buf)-1] != o {
			buf = append(buf, o)
		}
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}
