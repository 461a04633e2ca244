package store

import (
	"slices"

	"github.com/upu/upu/crdt"
)

// originState is what the writer tracks per origin. An origin's log holds
// exactly the sequence numbers [logFirst, logFirst+logCount), ending at
// applied: entries are appended only at applied+1 and trimmed from the front.
type originState struct {
	node     crdt.NodeID
	applied  uint64
	logFirst uint64
	logCount int64
}

// state is the writer's view of the applied vector and the log's extent:
// one copy as committed, one including the open transaction.
type state struct {
	origins []originState // sorted by node
	logLen  int64
	// forcedTrims counts, since open, entries trimmed past MaxLogEntries
	// while a holder still held them.
	forcedTrims uint64
}

// origin returns n's entry, adding it if absent. The pointer is valid until
// the next insertion.
func (st *state) origin(n crdt.NodeID) *originState {
	i, ok := slices.BinarySearchFunc(st.origins, n, func(o originState, n crdt.NodeID) int {
		switch {
		case o.node < n:
			return -1
		case o.node > n:
			return 1
		}
		return 0
	})
	if !ok {
		st.origins = slices.Insert(st.origins, i, originState{node: n})
	}
	return &st.origins[i]
}

func (st *state) applied(n crdt.NodeID) uint64 {
	for i := range st.origins {
		if st.origins[i].node == n {
			return st.origins[i].applied
		}
	}
	return 0
}

// copyFrom makes st equal to o, reusing st's memory.
func (st *state) copyFrom(o *state) {
	st.origins = append(st.origins[:0], o.origins...)
	st.logLen = o.logLen
	st.forcedTrims = o.forcedTrims
}

func (st *state) versionVector() crdt.VersionVector {
	var vv crdt.VersionVector
	for _, o := range st.origins {
		if o.applied != 0 {
			vv = append(vv, crdt.VVEntry{Node: o.node, Counter: o.applied})
		}
	}
	return vv
}

// overLog reports whether some origin's log holds more than limit entries.
func (st *state) overLog(limit int64) bool {
	for _, o := range st.origins {
		if o.logCount > limit {
			return true
		}
	}
	return false
}
