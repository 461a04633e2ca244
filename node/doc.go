// Package node wires one upu process together: it opens the store, sets up
// logging with the node's fixed fields, and serves the binary protocol.
//
// The server reads whatever a connection has sent, answers every complete
// frame in it, and writes all the answers with one system call. Writes of a
// pipeline (and of concurrent connections) reach the store as batches that
// commit together. Reads see every write sent before them on the same
// connection. Any frame counts as a heartbeat; a connection silent for the
// idle timeout announced in the handshake is closed.
//
// Unless Config.Standalone, the node is a member of its domain: Start joins
// the domain's gossip pool (publishing the protocol address it bound),
// and runs replication of the store's log to the other members over the
// binary protocol, in connections that must prove the peer role
// (domain.go). Close stops accepting, answers what connections have already
// sent, leaves the domain gracefully, stops replication and gossip, then
// closes the store.
package node
