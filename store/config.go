package store

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
)

// Config configures a Store. The zero value of every field means its
// default (see DefaultConfig); Dir is required unless InMemory.
type Config struct {
	// Dir is the node's data directory: the node-id file and Badger's files.
	Dir string
	// InMemory keeps everything in memory (tests); Dir must be empty.
	InMemory bool
	// NodeID, for an in-memory store, is the ID to use (see LoadNodeID);
	// zero makes a random one. An on-disk store keeps its ID in Dir.
	NodeID crdt.NodeID
	// SyncWrites fsyncs every commit before acknowledging its writes. Writes
	// are grouped into commits, so this is group commit.
	SyncWrites bool
	// SyncInterval: without SyncWrites, fsync at least this often (like
	// redis appendfsync everysec). A process crash loses nothing either way;
	// fsync matters only for power loss.
	SyncInterval time.Duration
	// MaxKeySize and MaxValueSize bound local writes.
	MaxKeySize   int
	MaxValueSize int
	// MaxBatch is the most writes applied in one commit.
	MaxBatch int
	// PurgeInterval is how often expired entries and old tombstones are
	// purged from disk.
	PurgeInterval time.Duration
	// TombstoneHorizon is how long a dead record (tombstone, or all entries
	// expired) keeps its causal context after its last write.
	TombstoneHorizon time.Duration
	// MaxLogEntries bounds the replication log per origin; the oldest
	// entries beyond it are trimmed in the background, whether every
	// registered holder has them or not (see Holder).
	MaxLogEntries int64
	// MaxMemory is the memory, in bytes, that the store's buffers and
	// caches share: the four sizes below, when zero, are parts of it (see
	// Budget). It bounds what the store holds, not the process: connections
	// and the runtime come on top, which is why `upu serve` also gives it to
	// the Go runtime as its soft memory limit.
	MaxMemory int64
	// MemTableSize is Badger's memtable size; it also bounds one
	// transaction (15% of it).
	MemTableSize int64
	// BlockCacheSize and IndexCacheSize size Badger's caches.
	BlockCacheSize int64
	IndexCacheSize int64
	// RecordCacheSize bounds (approximately, in bytes) the decoded records
	// held in memory: reads of warm keys and every write's read-modify-write
	// are served from them.
	RecordCacheSize int64
}

// MaxKeySizeLimit and MaxValueSizeLimit are the largest MaxKeySize and
// MaxValueSize a store can hold: every layer above takes its limits from
// these. The key limit leaves room under Badger's 65000-byte key limit for
// the longest prefix ('x' + 8-byte time) and Badger's 8-byte version.
// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid store config")

const (
	MaxKeySizeLimit   = 60000
	MaxValueSizeLimit = 256 << 20
)

const (
	minMemTableSize = 1 << 20
	// MinMaxMemory is the smallest MaxMemory: below it the memtables would
	// be too small to hold one batch.
	MinMaxMemory = 32 << 20
	// numMemtables is how many memtables Badger keeps: one filling, the
	// others waiting to be flushed.
	numMemtables = 3
)

// DefaultConfig returns the defaults, with Dir empty.
func DefaultConfig() Config {
	return Config{
		SyncInterval:     time.Second,
		MaxKeySize:       1 << 10,
		MaxValueSize:     1 << 20,
		MaxBatch:         256,
		PurgeInterval:    time.Second,
		TombstoneHorizon: 24 * time.Hour,
		MaxLogEntries:    1_000_000,
		MaxMemory:        256 << 20,
	}
}

// Budget is how a store divides MaxMemory.
type Budget struct {
	MemTables, BlockCache, IndexCache, RecordCache int64
}

// Total is what the parts add up to: at most MaxMemory.
func (b Budget) Total() int64 { return b.MemTables + b.BlockCache + b.IndexCache + b.RecordCache }

// budget divides MaxMemory among the parts left at zero. Half goes to the
// record cache, because a warm read and a write's read-modify-write are
// served from it and never reach Badger; 3/16 to Badger's memtables (three
// of 1/16: smaller ones flush and compact more often, which costs writes
// more than it saves); 1/8 to Badger's block cache and 1/32 to its index
// cache, which serve the cold keys. About 1/8 is left for what the store
// does not bound: batches in flight, iterators, the runtime's slack.
func (c Config) budget() Budget {
	m := c.MaxMemory
	return Budget{
		MemTables:   cmp.Or(c.MemTableSize, m/16) * numMemtables,
		BlockCache:  cmp.Or(c.BlockCacheSize, m/8),
		IndexCache:  cmp.Or(c.IndexCacheSize, m/32),
		RecordCache: cmp.Or(c.RecordCacheSize, m/2),
	}
}

// withDefaults fills zero fields. In-memory stores (tests) get small
// memtables and caches so that many can be open at once.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.InMemory {
		d.MemTableSize, d.BlockCacheSize, d.IndexCacheSize, d.RecordCacheSize = 8<<20, 1<<20, 1<<20, 4<<20
	}
	// An explicit size wins over its share of MaxMemory.
	c.MaxMemory = cmp.Or(c.MaxMemory, d.MaxMemory)
	b := c.budget()
	d.MemTableSize = cmp.Or(d.MemTableSize, b.MemTables/numMemtables)
	d.BlockCacheSize = cmp.Or(d.BlockCacheSize, b.BlockCache)
	d.IndexCacheSize = cmp.Or(d.IndexCacheSize, b.IndexCache)
	d.RecordCacheSize = cmp.Or(d.RecordCacheSize, b.RecordCache)
	c.SyncInterval = cmp.Or(c.SyncInterval, d.SyncInterval)
	c.MaxKeySize = cmp.Or(c.MaxKeySize, d.MaxKeySize)
	c.MaxValueSize = cmp.Or(c.MaxValueSize, d.MaxValueSize)
	c.MaxBatch = cmp.Or(c.MaxBatch, d.MaxBatch)
	c.PurgeInterval = cmp.Or(c.PurgeInterval, d.PurgeInterval)
	c.TombstoneHorizon = cmp.Or(c.TombstoneHorizon, d.TombstoneHorizon)
	c.MaxLogEntries = cmp.Or(c.MaxLogEntries, d.MaxLogEntries)
	c.MemTableSize = cmp.Or(c.MemTableSize, d.MemTableSize)
	c.BlockCacheSize = cmp.Or(c.BlockCacheSize, d.BlockCacheSize)
	c.IndexCacheSize = cmp.Or(c.IndexCacheSize, d.IndexCacheSize)
	c.RecordCacheSize = cmp.Or(c.RecordCacheSize, d.RecordCacheSize)
	return c
}

// Validate reports the first invalid field. Zero fields are valid (they
// mean the default).
func (c Config) Validate() error {
	var l confcheck.List
	switch {
	case c.InMemory && c.Dir != "":
		l.Add("Dir", c.Dir, "must be empty when InMemory")
	case !c.InMemory && c.Dir == "":
		l.Add("Dir", c.Dir, "is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SyncInterval", c.SyncInterval}, {"PurgeInterval", c.PurgeInterval}, {"TombstoneHorizon", c.TombstoneHorizon}} {
		if d.v < 0 {
			l.Add(d.name, d.v, "must not be negative")
		}
	}
	if c.MaxKeySize < 0 || c.MaxKeySize > MaxKeySizeLimit {
		l.Add("MaxKeySize", c.MaxKeySize, fmt.Sprintf("must be between 1 and %d", MaxKeySizeLimit))
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > MaxValueSizeLimit {
		l.Add("MaxValueSize", c.MaxValueSize, fmt.Sprintf("must be between 1 and %d", MaxValueSizeLimit))
	}
	if c.MaxBatch < 0 {
		l.Add("MaxBatch", c.MaxBatch, "must not be negative")
	}
	if c.MaxLogEntries < 0 {
		l.Add("MaxLogEntries", c.MaxLogEntries, "must not be negative")
	}
	if c.MaxMemory != 0 && c.MaxMemory < MinMaxMemory {
		l.Add("MaxMemory", c.MaxMemory, fmt.Sprintf("must be at least %d", MinMaxMemory))
	}
	if c.MemTableSize != 0 && c.MemTableSize < minMemTableSize {
		l.Add("MemTableSize", c.MemTableSize, fmt.Sprintf("must be at least %d", minMemTableSize))
	}
	for _, sz := range []struct {
		name string
		v    int64
	}{{"BlockCacheSize", c.BlockCacheSize}, {"IndexCacheSize", c.IndexCacheSize}, {"RecordCacheSize", c.RecordCacheSize}} {
		if sz.v < 0 {
			l.Add(sz.name, sz.v, "must not be negative")
		}
	}
	return l.Err(ErrInvalidConfig)
}
