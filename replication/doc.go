// Package replication owns the movement of CRDT deltas between the members
// of a domain: ring push of each node's replication log, acknowledgement by
// applied version vectors, anti-entropy that repairs what the ring missed,
// and snapshot sync where logs no longer reach back. The CRDT values
// themselves live in the subpackage crdt, below the store.
//
// # Protocol
//
// Every node's store keeps a log of deltas, (origin, seq) -> delta, and an
// applied vector: per origin, the highest sequence number up to which it
// has applied every entry. The live members, ordered by gossip.BuildRing,
// form a ring. Each node pushes to its successor every log entry the
// successor lacks, judged by the vector the successor last acknowledged,
// for every origin but the successor itself. The successor applies
// (store.ApplyRemote: in order per origin, duplicates skipped, nothing
// applied past a gap) and acknowledges with its applied counters for the
// origins pushed. Each delta so crosses the ring once, and the bytes a
// node sends per write stay flat as the domain grows.
//
// Up to Config.MaxInflight pushes, each bounded in entries and bytes, await
// their acks per peer. An ack showing that a push was not applied (an
// earlier one was lost or overtaken), or a wait past
// Config.RetransmitTicks, sends everything unacknowledged again from what
// the peer has: go-back-N, which duplicates and never loses. A dead
// successor drops out of the ring; the next one lacks what the dead node
// never passed on, and since a node pushes all its successor lacks, the gap
// fills by itself.
//
// Every Config.ProbeTicks a node sends its applied vector to its
// predecessor and to one random member (MsgProbe); each answers with its
// own (MsgAck). Either side then pushes the other whatever it lacks, of any
// origin, that the pusher has held for at least a whole round: newer
// entries are still travelling the ring and would only be sent twice. This
// repairs asymmetric partitions, rings that disagree while gossip settles,
// and nodes that were away.
//
// When a peer lacks entries this node's log no longer holds (trimmed), the
// node streams it a snapshot: every record, in key order, one chunk in
// flight at a time, each merged by the receiver (store.MergeRecord) before
// it acknowledges. The last chunk carries the applied vector the node had
// when the snapshot began; every earlier chunk having been merged, the
// receiver raises its applied vector to it (Store.RaiseApplied), and the
// log takes over from there. The whole store is sent: comparing digests of
// key ranges to send only what differs is left for later.
//
// StableVector is the pointwise minimum of the applied vectors of every
// live member as last reported: every member has applied every log entry it
// covers. A dead record last changed when the local applied vector was V
// may lose its causal context once StableVector dominates V (every replica
// has merged everything the record's context covers). It speaks for live
// members only: a member that comes back after longer than the tombstone
// horizon must still resync from scratch (DESIGN.md section 5).
//
// # Machine and Replicator
//
// Machine is the protocol as a pure state machine in the manner of etcd
// raft's RawNode: SetMembers, Tick, LocalWrite and Step feed it; Ready
// returns the messages to send. It starts no goroutine, reads no clock,
// and does I/O only through its Store, which it calls synchronously; with
// a deterministic store it is deterministic, which is what the simulation
// in this package's tests relies on.
//
// Replicator drives a Machine for a node: one goroutine feeds it clock
// ticks, gossip membership changes, Notify after local writes and messages
// handed to Deliver (a bounded inbox: a full one refuses, and the sender
// retransmits), and passes what is ready to one sender goroutine per peer
// through a bounded queue, so a slow or dead peer never blocks the others.
// The Transport delivers each Message to the addressed peer, whose
// transport calls its Replicator's Deliver with the sender's node ID.
// Messages are one-way and may be lost, duplicated or reordered.
package replication
