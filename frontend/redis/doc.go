// Package redis serves the Redis protocol (RESP2 and RESP3) over the data
// service (package kv): it parses commands with package resp, turns each
// into kv reads and batched kv writes, and encodes kv's answers and errors
// as a redis server would word them. It keeps only what is the protocol's
// own: the command table, connection state (AUTH, HELLO, CLIENT, and
// CLIENT SCOPE: how far the connection's reads look), SCAN cursors, and
// INFO and CONFIG GET, which report the node through the NodeInfo the node
// gives it. The connection loop is package connloop's.
//
// Writes of a pipeline go to kv as one batch; a command that is not a
// queued write first applies the writes queued before it, so replies keep
// the commands' order and a read sees every write sent before it.
package redis
