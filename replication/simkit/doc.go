// Package simkit is the deterministic simulations' test kit, shared by
// replication's ring simulation and the cascade's: Store, an in-memory
// store with the real store's merges, log, system keyspace and tombstone
// collection, which survives a simulated crash; and Net, a seeded message
// bus that delays, reorders, loses, duplicates and cuts. Only tests use
// it. It imports crdt and store, never replication, whose own tests use
// it.
package simkit
