// Package ctxkey signs the causal-context tokens a node hands to clients
// and verifies the ones they hand back, so that a forged or altered
// context is refused (ErrBadToken) instead of hiding later writes of its
// key.
//
// A token is crdt.EncodeToken's bytes (bound to its key) followed by a
// 16-byte tag, the truncated HMAC-SHA256 of the data key and those bytes.
//
// The keys are the domain's, not one node's: a client that fails over to
// another member must still be able to use its token. They live in the
// store's replicated system keyspace, which no data command can read or
// write, under ctxkey/<domain>/<id>, one register per key, each written
// once with 32 bytes from crypto/rand by a node that finds none. This was
// chosen over a key file on every node because it needs no operator step
// and no secret on the command line, and a new member gets the keys with
// the rest of the domain's settings. Members that start together may each
// create one: as every key is a register of its own, none overwrites
// another, the ring gives every member all of them, and a token verifies
// against any key of the keyring, so tokens made before the keys converged
// stay good. The signing key is the one with the greatest name, the same
// on every member once they have converged. A token that no key verifies
// makes the keyring reload from the store once, for a key a peer created
// that has just arrived. A parent domain's store holds its children's keys
// too (system records flow up the tree) but never uses them: they are
// under other domains' names.
//
// Keys never appear in logs, metrics or status; a backup holds them, as it
// holds the data.
package ctxkey
