// Package kv is the data service every front end calls: the binary
// protocol and the Redis protocol servers decode a request, call kv, and
// encode what kv answers. kv owns what is the same for every protocol: the
// key and value limits (checked once, and never looser than the store's),
// the scope of a read (this node, or up the domain tree through an
// Upstream), batched writes applied as one store commit, scans, request
// IDs, the per-operation metrics (upu_requests_total by operation and
// result, upu_request_seconds), and the typed errors each front end maps
// to its wire codes in one place (KindOf).
//
// A Batch belongs to one connection: writes queued on it reach the store
// as one ApplyBatch, with one clock reading, and the connection's reads go
// through it too (Batch.Read), counted each and timed one in 16 so that
// the clock is not read twice per cached read. A connection applies its
// queued writes before a read, so that the read sees them.
package kv
