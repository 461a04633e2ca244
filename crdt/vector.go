package crdt

// Pointwise arithmetic on version vectors, beside MergeVV (the pointwise
// maximum): replication compares what members have applied with these.

// MinVV returns the pointwise minimum of a and b: an origin missing from
// either is missing from the result.
func MinVV(a, b VersionVector) VersionVector {
	out := make(VersionVector, 0, min(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Node < b[j].Node:
			i++
		case a[i].Node > b[j].Node:
			j++
		default:
			out = append(out, VVEntry{Node: a[i].Node, Counter: min(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	return out
}

// Lag returns, per origin, how many counters behind lacks of ahead: the
// origins where ahead is higher, with the difference. It is nil when
// behind descends from ahead.
func Lag(ahead, behind VersionVector) VersionVector {
	var out VersionVector
	for _, e := range ahead {
		if have := behind.Get(e.Node); e.Counter > have {
			out = append(out, VVEntry{Node: e.Node, Counter: e.Counter - have})
		}
	}
	return out
}

// Restrict returns v's counters for the nodes listed (sorted, each once),
// leaving out those v does not hold.
func Restrict(v VersionVector, nodes []NodeID) VersionVector {
	out := make(VersionVector, 0, len(nodes))
	for _, n := range nodes {
		if c := v.Get(n); c != 0 {
			out = append(out, VVEntry{Node: n, Counter: c})
		}
	}
	return out
}

// Sum returns the sum of v's counters: with Lag, how many events one
// vector lacks of another.
func (v VersionVector) Sum() uint64 {
	var s uint64
	for _, e := range v {
		s += e.Counter
	}
	return s
}
