package store

import (
	"slices"

	"github.com/upu/upu/crdt"
)

// recordCache holds decoded records as last committed, so that the writer's
// read-modify-write of a recently used key skips Badger's lookup and the
// decoding (most of a write's cost otherwise). Only the writer uses it, and
// it changes it only after a commit succeeded, so it never disagrees with
// Badger. Records in it own their memory (no caller's buffers). With each
// record it keeps, when known, whether the key has a dead-index entry.
type recordCache struct {
	limit int64 // bytes, approximate
	size  int64
	m     map[string]cachedRecord
}

type cachedRecord struct {
	rec  crdt.Record
	size int64
	dead deadMark
}

func newRecordCache(limit int64) *recordCache {
	return &recordCache{limit: limit, m: make(map[string]cachedRecord)}
}

func (c *recordCache) get(key []byte) (crdt.Record, bool) {
	e, ok := c.m[string(key)]
	return e.rec, ok
}

// deadMark returns what the cache knows of key's dead-index entry.
func (c *recordCache) deadMark(key []byte) deadMark {
	return c.m[string(key)].dead
}

func (c *recordCache) put(key string, rec crdt.Record, dead deadMark) {
	size := recordSize(key, rec)
	if size > c.limit/16 {
		c.remove(key) // one huge record would evict everything else
		return
	}
	if old, ok := c.m[key]; ok {
		c.size -= old.size
	}
	c.m[key] = cachedRecord{rec: rec, size: size, dead: dead}
	c.size += size
	if c.size > c.limit {
		// Evict at random (map order) down to 7/8 of the limit: cheap,
		// and hot keys come back on their next write.
		for k, e := range c.m {
			delete(c.m, k)
			c.size -= e.size
			if c.size <= c.limit-c.limit/8 {
				break
			}
		}
	}
}

func (c *recordCache) remove(key string) {
	if old, ok := c.m[key]; ok {
		c.size -= old.size
		delete(c.m, key)
	}
}

// recordSize approximates the memory a cached record holds.
func recordSize(key string, r crdt.Record) int64 {
	const entryOverhead = 80 // crdt.Entry plus slice headers
	n := int64(len(key)) + 96 + 16*int64(len(r.Context.VV)+len(r.Context.Cloud)) + 32*int64(len(r.Resets))
	for i := range r.Entries {
		n += entryOverhead + int64(len(r.Entries[i].Value))
	}
	return n
}

// ownValues returns r with its entries, values and resets copied, so that
// it does not alias memory its caller may reuse.
func ownValues(r crdt.Record) crdt.Record {
	n := 0
	for i := range r.Entries {
		n += len(r.Entries[i].Value)
	}
	r.Resets = slices.Clone(r.Resets)
	if n == 0 && len(r.Entries) == 0 {
		return r
	}
	buf := make([]byte, 0, n)
	entries := make([]crdt.Entry, len(r.Entries))
	copy(entries, r.Entries)
	for i := range entries {
		if v := entries[i].Value; v != nil {
			start := len(buf)
			buf = append(buf, v...)
			entries[i].Value = buf[start:len(buf):len(buf)]
		}
	}
	return crdt.Record{Entries: entries, Context: r.Context, Resets: r.Resets}
}
