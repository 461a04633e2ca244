package store

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/crdt"
)

// Config configures a Store. The zero value of every field means its
// default (see DefaultConfig); Dir is required unless InMemory.
type Config struct {
	// Dir is the node's data directory: the node-id file and Badger's files.
	Dir string
	// InMemory keeps everything in memory (tests); Dir must be empty.
	InMemory bool
	// OnAppend, when set, is called after every commit that added log
	// entries (local writes or peers' entries), from the store's writer: it
	// must return at once. Replication uses it to ship new entries.
	OnAppend func()
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
	// entries beyond it are trimmed in the background.
	MaxLogEntries int64
	// MemTableSize is Badger's memtable size; it also bounds one
	// transaction (15% of it).
	MemTableSize int64
	// BlockCacheSize and IndexCacheSize size Badger's caches.
	BlockCacheSize int64
	IndexCacheSize int64
	// RecordCacheSize bounds (approximately, in bytes) the decoded records
	// the writer keeps for read-modify-write of recently written keys.
	RecordCacheSize int64
}

// MaxKeySizeLimit and MaxValueSizeLimit are the largest MaxKeySize and
// MaxValueSize a store can hold: every layer above takes its limits from
// these. The key limit leaves room under Badger's 65000-byte key limit for
// the longest prefix ('x' + 8-byte time) and Badger's 8-byte version.
const (
	MaxKeySizeLimit   = 60000
	MaxValueSizeLimit = 256 << 20
)

const minMemTableSize = 1 << 20

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
		MemTableSize:     64 << 20,
		BlockCacheSize:   64 << 20,
		IndexCacheSize:   16 << 20,
		RecordCacheSize:  32 << 20,
	}
}

// withDefaults fills zero fields. In-memory stores (tests) get small
// memtables and caches so that many can be open at once.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.InMemory {
		d.MemTableSize, d.BlockCacheSize, d.IndexCacheSize, d.RecordCacheSize = 8<<20, 1<<20, 1<<20, 4<<20
	}
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
	switch {
	case c.InMemory && c.Dir != "":
		return errors.New("store: Dir must be empty when InMemory")
	case !c.InMemory && c.Dir == "":
		return errors.New("store: Dir is required")
	case c.SyncInterval < 0, c.PurgeInterval < 0, c.TombstoneHorizon < 0:
		return errors.New("store: intervals must not be negative")
	case c.MaxKeySize < 0 || c.MaxKeySize > MaxKeySizeLimit:
		return fmt.Errorf("store: MaxKeySize must be in [1, %d]", MaxKeySizeLimit)
	case c.MaxValueSize < 0 || c.MaxValueSize > MaxValueSizeLimit:
		return fmt.Errorf("store: MaxValueSize must be in [1, %d]", MaxValueSizeLimit)
	case c.MaxBatch < 0:
		return errors.New("store: MaxBatch must not be negative")
	case c.MaxLogEntries < 0:
		return errors.New("store: MaxLogEntries must not be negative")
	case c.MemTableSize != 0 && c.MemTableSize < minMemTableSize:
		return fmt.Errorf("store: MemTableSize must be at least %d", minMemTableSize)
	case c.BlockCacheSize < 0 || c.IndexCacheSize < 0 || c.RecordCacheSize < 0:
		return errors.New("store: cache sizes must not be negative")
	}
	return nil
}
