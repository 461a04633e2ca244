// Package connloop is the connection loop both protocol servers share: it
// accepts connections, holds them to a limit, owns one goroutine per
// connection and waits for every one of them on Shutdown.
//
// Each connection's goroutine reads whatever the socket has with one read,
// lets the protocol (a Conn) handle every complete request in it and queue
// the answers, and writes them with one system call: a pipeline costs one
// read and one write, and a client that stops reading slows only itself.
// The loop sets the deadlines (the protocol says when the next request is
// due; a write must finish within the write timeout), classifies why a
// connection ended for the log, refuses connections past the limit with
// the protocol's own answer, and on Shutdown stops accepting, wakes every
// connection so that it answers what it has read, and closes them after a
// grace period. A protocol can hand its socket over to another owner (a
// peer link) instead of closing it.
package connloop
