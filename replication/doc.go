// Package replication will own the movement of CRDT deltas between the members
// of a domain: pushing each node's replication log around the ring to its
// successor, acknowledging with applied version vectors, finding and filling
// gaps by version-vector and digest comparison, and bootstrapping new members
// from a snapshot. Its protocol logic is a pure state machine driven by a thin
// goroutine loop so that it can be simulated deterministically.
//
// The CRDT values themselves live in the subpackage crdt, below the store.
package replication
