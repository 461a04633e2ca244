// Package gossip will own a domain's membership: one serf LAN pool per domain,
// the tags each member publishes (node ID, domain, protocol address, role), the
// member events the rest of the node reacts to, and the ring view ordered by a
// hash of node IDs. It is filled in by the domain replication work; a node
// without peers does not start it.
package gossip
