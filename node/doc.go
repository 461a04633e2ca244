// Package node wires one upu process together: it opens the store, sets up
// logging with the node's fixed fields, serves the binary protocol and, when
// configured, the Redis protocol and the metrics endpoint, and runs the
// domain's membership (gossip) and replication.
//
// Both protocol servers read whatever a connection has sent, answer every
// complete request in it, and write all the answers with one system call.
// Writes of a pipeline (and of concurrent connections) reach the store as
// batches that commit together. Reads see every write sent before them on the
// same connection. Any frame counts as a heartbeat; a connection silent for
// the idle timeout announced in the handshake is closed. Close stops
// accepting, answers what connections have already sent, leaves the domain,
// and then closes the store.
package node
