// Package gossip owns a domain's membership: one serf LAN pool per domain
// (hashicorp/serf over memberlist, which does the gossip and the failure
// detection), the tags each member publishes, the member events the rest of
// the node reacts to, and the ring view of the live members.
//
// Each member is named in serf by its node ID (unique across the fleet) and
// publishes the tags "id" (node ID), "domain", "addr" (the binary protocol
// address peers dial for replication) and "role".
//
// A domain's pool admits only its own members, twice over: every packet and
// stream carries the memberlist label "upu/" + domain, so a node of another
// domain cannot even talk to it, and a merge delegate refuses any member
// whose domain tag differs. With Config.KeyringFile, gossip is encrypted
// and authenticated (AES-GCM, serf's keyring format).
//
// Consumers learn of changes without polling: [Gossip.Subscribe] gives a
// channel that is signalled, without ever blocking serf, whenever the member
// set or a member's state changes; they then read [Gossip.Members] or
// [Gossip.Ring]. Notifications coalesce: one signal may stand for several
// changes.
//
// The ring orders the alive members by the FNV-1a 64-bit hash of their node
// ID (the 16 hex digits as text), ties broken by ID, so that every member
// that sees the same live set computes the same ring. [Successor] and
// [Predecessor] walk it.
//
// Lifecycle: [New] binds and starts the pool, [Gossip.Join] joins it through
// any reachable member, [Gossip.Leave] leaves gracefully (peers see the
// member as left), and [Gossip.Close] shuts it down; without a Leave first,
// peers see a crash and mark the member failed.
package gossip
