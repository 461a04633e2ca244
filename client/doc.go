// Package client is the Go client library of UPU: it owns the connections
// from one process to a list of nodes and turns method calls into pipelined
// request frames of package protocol.
//
// A Client is safe for concurrent use. Each node gets up to ConnsPerNode
// connections, dialled on first use; each connection has one reader and one
// writer goroutine, and the writer sends whatever concurrent callers queued
// in one system call. Replies are matched to calls by request ID, in any
// order.
//
// The lessons of the system UPU replaces are rules here:
//   - A call that times out is forgotten; its connection stays open and the
//     late reply is discarded. Timeouts never close connections.
//   - On EOF or any read or write error a connection is closed, dropped and
//     never reused; its pending calls fail with ErrUnavailable.
//   - The heartbeat interval and idle timeout come from the server's Hello:
//     the client pings when it has sent nothing for the interval and drops a
//     connection on which nothing arrived for the idle timeout.
//   - A node that cannot be reached is redialled only after a capped,
//     jittered exponential backoff; while every node is down, calls fail
//     fast with ErrUnavailable. No goroutine of the client loops on failure.
//
// Calls go to the first node that works, starting with the one that worked
// last, so a caller reads its own writes while that node is up. A call that
// fails on a broken connection moves to the next node when repeating it is
// safe: always for reads and pings, for writes only when they carry a causal
// context or were never written to a socket. Backup is the exception: it
// dials a connection of its own, which the node's stream takes up until it
// ends.
package client
