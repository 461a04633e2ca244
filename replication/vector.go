package replication

import (
	"slices"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// without returns v without n's entry, sharing v when n is absent.
func without(v crdt.VersionVector, n crdt.NodeID) crdt.VersionVector {
	if v.Get(n) == 0 {
		return v
	}
	return v.With(n, 0)
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

// vectorNodes returns the nodes v has an entry for.
func vectorNodes(v crdt.VersionVector) []crdt.NodeID {
	out := make([]crdt.NodeID, len(v))
	for i, e := range v {
		out[i] = e.Node
	}
	return out
}
