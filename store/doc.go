// Package store owns a node's durable state on Badger v4: one record per key
// (a crdt.Record), the replication log of deltas, the applied version vector,
// the TTL/tombstone index, and the node's ID. It knows nothing of sockets or
// of the wire protocol.
//
// All mutations go through one writer goroutine that drains queued requests
// and applies up to Config.MaxBatch of them in one Badger transaction (group
// commit): a record, its log entry and its index entry are always written
// together, and no write is acknowledged before its transaction committed.
// Reads run concurrently in Badger read transactions. The writer keeps the
// records it last committed, decoded, in a bounded cache, because reading a
// key's record back from Badger is most of the cost of a write otherwise.
//
// Readers of the log (replication, and later the relay to a parent domain)
// follow it through a Feed each (Follow): a coalescing wake-up after every
// commit that grew it, read on with ReadLog from the reader's own cursor.
// A reader that must not miss entries registers a Holder and acknowledges
// what it has: an origin's log is trimmed only once every holder has it, or
// past MaxLogEntries regardless (see retention.go).
//
// A reserved system keyspace (system.go) holds the domain's settings: its
// records replicate through the same log and digests, and no data read,
// scan or digest sees them.
//
// Badger key layout (the first byte says what a key is):
//
//	'r' key                            record: crdt.AppendRecord encoding
//	's' key                            system record (system.go), likewise
//	'l' origin(8, BE) seq(8, BE)       replication log entry: see appendLogHead
//	'x' time(8, BE, Unix ms) key       index: revisit key at time (expiry or
//	                                   tombstone horizon); the value is empty
//	'd' key                            dead-record index: the record was dead
//	                                   when last written; the value is empty
//	'm' "a" origin(8, BE)              applied[origin]: highest contiguous seq
//	                                   (8 bytes BE); own seq == applied[self]
//	'm' "h"                            highest HLC timestamp used (8 bytes BE),
//	                                   so a restart never issues older ones
//	'm' "c"                            last contact with the domain (8 bytes BE,
//	                                   Unix ms; see SetLastContact)
//
// Index entries may be stale (the key was rewritten or deleted since): the
// purger simply drops them. The invariant kept is that every record that has
// an entry due to expire, or that is dead and waiting for its tombstone
// horizon, has an index entry at or before that time.
//
// A dead record goes as soon as its context is causally stable (SetStable:
// every member has applied what it covers), found through the dead-record
// index, or else at the tombstone horizon (see gc.go).
//
// Backup writes a snapshot of the whole keyspace from one read transaction,
// with its digest, in a file format of its own around Badger's backup
// stream; Restore loads one into an empty directory and checks the digest
// (backup.go).
//
// The data directory holds the file node-id (16 hex digits) and Badger's
// files under badger/.
package store
