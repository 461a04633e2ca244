// Package cascade owns the domain hierarchy (DESIGN.md section 6): the
// domain's parent setting, a register in the replicated system keyspace
// that any member sets and every member follows without a restart; the
// choice of the one member that relays the domain's log upward, by
// rendezvous hashing over the gossip view; the parent's members, learned
// from the parent itself and failed over across; cycle detection at set
// time and at run time; reads scoped up the tree; and the lag, children
// and errors that `upu cascade status` and the metrics show.
//
// The relay's stream itself is replication's: the cascade gives the
// replicator an upstream, a member of the parent domain that every member
// probes (its applied vector holds back tombstone collection and the log,
// so nothing leaves before the parent has it) and that the relay pushes
// the whole log to, with the parent's applied vector as the cursor. A
// parent member takes those pushes as from any node outside its ring,
// and its own ring and relay carry them further up.
//
// Peer requests between a child and its parent travel as peer.KindCascade
// Calls: info (the parent domain's members and its path to the root, which
// also tells the parent of its child) and read (a scoped read).
package cascade
