// Package replication owns the movement of CRDT deltas between the members
// of a domain: ring push of each node's replication log, acknowledgement by
// applied version vectors, anti-entropy that repairs what the ring missed,
// digest sync where logs no longer reach back, the stable vector under
// which tombstones are collected, and the resync of a member that was away
// too long. The CRDT values themselves live in the subpackage crdt, below
// the store.
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
// node runs a digest sync towards it. It asks for the peer's bucket
// digests (Store.BucketDigests: keys hashed into 1<<Config.DigestBits
// buckets, each the XOR of its records' fingerprints), sending Seen, its
// own applied vector; compares them with its own; and streams only the
// records of the buckets that differ, in key order, one chunk in flight at
// a time; the first chunk leads with the differing buckets' system records
// (Store.ScanSystem), which are kept whole and so need no drops. Each chunk
// names the key range it covers and the differing
// buckets; the receiver merges the chunk's records under Seen
// (Store.MergeRecords: what Seen covers that a record lacks, the sender
// saw superseded), and merges a zero record, under Seen too, for every key
// it holds in that range and those buckets that the chunk lacks, so it
// drops what the sender saw and no longer holds: a stale replica so loses
// deleted data whose tombstone was collected elsewhere. The last chunk
// raises the receiver's applied vector to Seen (Store.RaiseApplied), and
// the log takes over from there. A digest sync needs no ring slot: it
// runs between any two nodes, begun by peer ID (Machine.SyncWith) towards
// any member or a contact outside the ring (Machine.AddContact), such as
// a node of a parent domain.
//
// The raise claims the receiver has seen every delta Seen covers, so the
// receiver takes one sync at a time and, from its digest answer to the
// sync's end, applies no pushed log entry that Seen covers (its fence; its
// probes and acks carry it, so pushers hold those entries back), and reads
// its digests only after every write it took before the request: an older
// delta applied after it computed its digests could bring back, in a
// bucket that compared equal, what the sender had seen superseded, and the
// raise would skip the delta that superseded it. For the same reason the
// digests must tell apart any two records a later merge could: every live
// entry, tombstones included, counts, and so do context dots beyond the
// holder's applied vector (crdt.Record.Fingerprint).
//
// StableVector, given to the store (Store.SetStable) for tombstone
// collection, covers what every member gossip knows has applied, down
// members (Machine.SetDown) included with the last vector they reported,
// and only once every write concurrent with it has reached every member
// too: a write made before its node saw a tombstone, still on its way,
// would otherwise come back alone where the tombstone was dropped.
//
// A member away longer than the tombstone horizon (Config.ResyncAfter; the
// Replicator keeps the last contact in the store) resyncs (Machine.Resync):
// it asks a member for a full digest sync, whose Seen vectors make it drop
// every sibling the domain saw superseded, and until that ends it begins
// no digest sync of its own, so it spreads no stale record (DESIGN.md
// section 5). Its own writes that no member ever saw are kept.
//
// # Machine and Replicator
//
// Machine is the protocol as a pure state machine in the manner of etcd
// raft's RawNode: SetMembers, SetDown, Tick, LocalWrite, Resync, Step and
// Persisted feed it; Ready returns the store writes to make (a push's
// entries, a sync chunk's records) and the messages to send. It starts no
// goroutine, reads no clock and writes nothing: it only reads its store
// (StoreReader), as raft reads its Storage. A write's acknowledgement goes
// out once the driver reports it made (Persisted). With a deterministic
// store it is deterministic, which is what the simulation in this
// package's tests relies on; the simulation also holds writes back for
// some ticks, as a slow commit would.
//
// Replicator drives a Machine for a node: one goroutine feeds it clock
// ticks, gossip membership changes (live members, and those failed or
// leaving as down), Notify after local writes, messages handed to Deliver
// (a bounded inbox: a full one refuses, and the sender retransmits) and
// the writes made; it hands the writes, in order, to one applier goroutine
// (at most InboxSize pending; more are refused, unacknowledged), so that a
// slow commit stalls neither ticks nor acks, and the messages to one
// sender goroutine per peer through a bounded queue, so a slow or dead
// peer never blocks the others.
// It gives the store the stable vector when it changes, records when a
// peer last answered (persisted at most once a minute, on Close, and when
// a resync ends, never during one), and starts a resync when that was
// longer than Config.ResyncAfter ago. The Transport delivers each Message
// to the addressed peer, whose transport calls its Replicator's Deliver
// with the sender's node ID.
// Messages are one-way and may be lost, duplicated or reordered.
package replication
