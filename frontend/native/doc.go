// Package native serves UPU's binary protocol (SPEC.md) over the data
// service (package kv): it decodes frames with package protocol, checks
// the handshake and the role each token grants, turns requests into kv
// reads and batched kv writes, and encodes kv's answers and errors as
// error frames (one mapping, wireError, which adminError extends for the
// admin requests). Administrative requests (status, digest, members, log
// level) reach the node through the Admin interface it is given, the
// cascade's (its status, the parent setting) through the Cascade
// interface, and a peer that asks for a peer link (OpPeerLink) has its
// socket handed to the LinkAcceptor, which carries replication from then
// on. The connection loop is package connloop's.
//
// Writes of a pipeline go to kv as one batch, applied before the next
// read on the connection so that the read sees them; every answer of a
// read's worth of requests is written with one system call.
package native
