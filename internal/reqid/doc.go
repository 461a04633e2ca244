// Package reqid owns UPU's request IDs: the identifier a node gives every
// request it accepts, logs in the req_id field, returns in error replies,
// and passes on to peers and parent domains, so that one grep follows a
// request across the fleet.
//
// An ID is 16 bytes, written as 32 lowercase hex digits:
//
//	bytes  0–5   Unix time in milliseconds, big endian (wraps in year 10889)
//	bytes  6–11  the first 6 bytes of the accepting node's 8-byte ID
//	bytes 12–15  a random part, unique per generator for 2³² IDs
//
// so an ID alone tells when and on which node a request arrived, which is
// what `upu reqid decode` prints.
package reqid
