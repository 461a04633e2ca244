package store

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/upu/upu/crdt"
)

// recordCache holds the decoded records of the working set, as last
// committed, so that a read of a warm key and the writer's
// read-modify-write of it skip Badger's lookup and the decoding (most of
// their cost otherwise). It also remembers keys known to have no record, so
// that repeated misses stay in memory too.
//
// It is written by hand rather than taken from a cache library because its
// fill must be ordered against the writer's commits (see fill), which a
// library's Set cannot express, and because a hit is one read-locked map
// lookup with no allocation.
//
// The writer changes it only after a commit succeeded and before it
// acknowledges the commit's writes, so a read that follows an acknowledged
// write sees that write. Records in it are immutable and own their memory
// (the crdt merges build new records rather than change their inputs), so
// readers share them without copying.
//
// Memory is bounded by limit (approximate bytes, see recordSize), split
// evenly over the shards. A shard over its share evicts entries at random
// (Go's map order) down to seven eighths of it: no per-hit bookkeeping,
// and a hot key evicted comes back on its next read.
type recordCache struct {
	seed       maphash.Seed
	shardLimit int64
	shards     [cacheShards]cacheShard
}

const cacheShards = 64

type cacheShard struct {
	mu   sync.RWMutex
	m    map[string]cachedRecord
	size int64
	// gen counts the writer's changes to this shard: a reader that read
	// Badger fills the cache only if none happened since it looked.
	gen uint64
	_   [64]byte // keep shards' locks on separate cache lines
}

type cachedRecord struct {
	rec     crdt.Record
	size    int64
	dead    deadMark
	missing bool // no record for this key
}

func newRecordCache(limit int64) *recordCache {
	c := &recordCache{seed: maphash.MakeSeed(), shardLimit: max(limit/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedRecord)
	}
	return c
}

func (c *recordCache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

// lookup returns what the cache holds for key: its record (found), or that
// it has none (found false, known true). When it knows nothing it returns
// the shard's generation, for fill.
func (c *recordCache) lookup(key []byte) (rec crdt.Record, found, known bool, gen uint64) {
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[string(key)]
	gen = sh.gen
	sh.mu.RUnlock()
	if !ok {
		return crdt.Record{}, false, false, gen
	}
	return e.rec, !e.missing, true, gen
}

// get is lookup for the writer, which only needs the record.
func (c *recordCache) get(key []byte) (crdt.Record, bool) {
	rec, found, _, _ := c.lookup(key)
	return rec, found
}

// deadMark returns what the cache knows of key's dead-index entry.
func (c *recordCache) deadMark(key []byte) deadMark {
	sh := c.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[string(key)].dead
}

// fill caches what a reader found in Badger for key (found false: no
// record), unless the writer changed the key's shard since lookup returned
// gen. The reader's snapshot may predate a commit that changed the key;
// the writer's change after that commit bumps the generation, so a stale
// record never replaces a newer one.
func (c *recordCache) fill(key []byte, rec crdt.Record, found bool, gen uint64) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if _, ok := sh.m[string(key)]; ok {
		return
	}
	e := cachedRecord{missing: !found}
	if found {
		e.rec = rec
	}
	c.insert(sh, string(key), e)
}

// put caches key's record as the writer committed it (or read it inside
// the writer, where nothing else changes it).
func (c *recordCache) put(key string, rec crdt.Record, dead deadMark) {
	sh := c.shard([]byte(key))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	c.insert(sh, key, cachedRecord{rec: rec, dead: dead})
}

// remove records that key has no record any more.
func (c *recordCache) remove(key string) {
	sh := c.shard([]byte(key))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	c.insert(sh, key, cachedRecord{missing: true})
}

// insert adds e under key to sh, which is locked, evicting to stay within
// the shard's share.
func (c *recordCache) insert(sh *cacheShard, key string, e cachedRecord) {
	if old, ok := sh.m[key]; ok {
		sh.size -= old.size
		delete(sh.m, key)
	}
	e.size = recordSize(key, e.rec)
	if e.size > c.shardLimit/16 {
		return // one huge record would evict everything else
	}
	sh.m[key] = e
	sh.size += e.size
	if sh.size <= c.shardLimit {
		return
	}
	for k, old := range sh.m {
		delete(sh.m, k)
		sh.size -= old.size
		if sh.size <= c.shardLimit-c.shardLimit/8 {
			break
		}
	}
}

// usage returns the bytes the cache accounts for, and its entries.
func (c *recordCache) usage() (bytes int64, entries int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		bytes += sh.size
		entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return bytes, entries
}

// recordSize approximates the memory a cached record holds: the key, the
// map entry, the record's slices and their values.
func recordSize(key string, r crdt.Record) int64 {
	const (
		mapEntry = 64 + 16 // bucket slot with the cachedRecord, string header
		entry    = 80      // crdt.Entry
	)
	n := int64(len(key)) + mapEntry + 96 + 16*int64(len(r.Context.VV)+len(r.Context.Cloud)) + 32*int64(len(r.Resets))
	for i := range r.Entries {
		n += entry + int64(len(r.Entries[i].Value))
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
