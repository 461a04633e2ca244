// Package crdt owns UPU's replicated data types as pure values: node IDs, dots,
// hybrid-logical-clock timestamps, version vectors, causal contexts, and the
// Record that holds one key's state.
//
// A Record is a causal dot store: a set of entries, each tagged with a unique
// dot (node, counter), plus a causal context that says which dots the holder
// has seen. Merge keeps an entry unless the other side's context covers its dot
// and the other side no longer holds it; contexts are unioned. This one rule
// serves registers (value and tombstone entries, read as one winner by
// timestamp, with every live sibling available), PN-counters (one count entry
// per node that has counted, plus the register value a counter started from,
// kept under that value's dot so it counts once) and deletes, and it makes
// Merge commutative, associative and idempotent. A write that supersedes
// count entries also records what they held (an observed reset, merged by
// maximum), so that a node's later totals, which include them, count only
// what the write did not see. Local operations (Set, Delete, Incr) return a
// delta, itself a Record, that the caller merges into its state and ships
// to peers; merging the same delta twice is harmless. Apply is how a
// replica merges a delta or a synced record into its own, the one rule the
// store and the replication simulation share.
//
// Expiry is an absolute time carried by each entry; an expired entry is
// invisible to reads and may be dropped (Purge) while its dot stays in the
// context, which is exactly a delete. A record with no live entries still
// carries its context: dropping it before every replica has seen it would let
// an older copy come back.
//
// Nothing here does I/O or reads a clock: callers pass the time in.
package crdt
