package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
)

// Clock is the store's source of wall time; tests pass a fake.
type Clock interface{ Now() time.Time }

// Stats describes the store at one instant.
type Stats struct {
	Keys   int // records not dead (see Store.Stats)
	LogLen int64
	// LogForcedTrims counts the log entries trimmed past MaxLogEntries
	// since open while a holder still held them (see Holder).
	LogForcedTrims uint64
	Applied        crdt.VersionVector
	DiskBytes      int64 // size of Badger's files; 0 when InMemory
	GCStats
}

// Store is a node's durable state. All methods are safe for concurrent use.
type Store struct {
	cfg       Config
	clk       Clock
	log       *logrus.Entry
	db        *badger.DB
	self      crdt.NodeID
	hlc       crdt.HLC
	horizonMS int64
	// logLow is what trimming brings an origin's log down to once it
	// exceeds MaxLogEntries, so trimming runs in chunks, not per write.
	logLow int64

	reqs       chan *request
	closing    chan struct{} // closed by Close: stop accepting
	writerDone chan struct{} // closed when the writer has answered its last request
	trimKick   chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error

	// readers counts reads inside Badger; Close subtracts closedBias, so
	// that later reads see a negative count and stay out, and waits for
	// noReaders. Unlike a RWMutex this lets a Scan callback read too.
	readers     atomic.Int64
	noReaders   chan struct{}
	readersDone sync.Once

	applied     atomic.Pointer[crdt.VersionVector]
	logLen      atomic.Int64
	forcedTrims atomic.Uint64

	cache   *recordCache
	feeds   feeds
	holders holders
	disk    diskWatch // owned by diskWatcher, but for its usage

	stable         atomic.Pointer[crdt.VersionVector] // nil: unknown
	records        atomic.Int64                       // data records, dead ones included
	deadRecords    atomic.Int64
	deadAdded      atomic.Uint64 // dead-index entries ever added: a sweep is due when it moves
	droppedStable  atomic.Uint64
	droppedHorizon atomic.Uint64
	lastContact    atomic.Int64 // Unix ms; 0: never

	reqPool sync.Pool
	// commitTxn commits the writer's transactions; tests make it fail.
	commitTxn func(*badger.Txn) error
}

// Open opens (creating if needed) the store in cfg.Dir. A directory already
// opened by another process is an error.
func Open(cfg Config, clk Clock, log *logrus.Entry) (*Store, error) {
	s, st, err := open(cfg, clk, log)
	if err != nil {
		return nil, err
	}
	s.start(st)
	return s, nil
}

// open opens Badger and loads the state, without starting goroutines.
func open(cfg Config, clk Clock, log *logrus.Entry) (*Store, state, error) {
	if err := cfg.Validate(); err != nil {
		return nil, state{}, err
	}
	if clk == nil {
		return nil, state{}, errors.New("store: a clock is required")
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:        cfg,
		clk:        clk,
		log:        log,
		horizonMS:  cfg.TombstoneHorizon.Milliseconds(),
		logLow:     max(1, cfg.MaxLogEntries-cfg.MaxLogEntries/64),
		reqs:       make(chan *request, 4*cfg.MaxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		trimKick:   make(chan struct{}, 1),
		noReaders:  make(chan struct{}),
		cache:      newRecordCache(cfg.RecordCacheSize),
		commitTxn:  (*badger.Txn).Commit,
	}
	s.reqPool.New = func() any { return &request{done: make(chan struct{}, 1)} }

	var err error
	if s.db, err = openBadger(cfg, log); err != nil {
		return nil, state{}, err
	}
	switch {
	case cfg.InMemory && cfg.NodeID != 0:
		s.self = cfg.NodeID
	case cfg.InMemory:
		s.self, err = randomNodeID()
	default:
		s.self, err = loadNodeID(cfg.Dir)
	}
	var st state
	if err == nil {
		st, err = s.load()
	}
	if err != nil {
		return nil, state{}, errors.Join(err, s.db.Close())
	}
	return s, st, nil
}

// start starts the writer and the background goroutines.
func (s *Store) start(st state) {
	w := newWriter(s, st)
	if st.overLog(s.cfg.MaxLogEntries) {
		s.trimKick <- struct{}{} // MaxLogEntries was lowered
	}
	s.wg.Add(3)
	go w.run()
	go s.purger()
	go s.trimmer()
	if !s.cfg.SyncWrites && !s.cfg.InMemory {
		s.wg.Add(1)
		go s.syncer()
	}
	if !s.cfg.InMemory {
		s.wg.Add(1)
		go s.diskWatcher()
	}
	s.log.WithFields(logrus.Fields{
		"node_id": s.self.String(), "dir": s.cfg.Dir, "in_memory": s.cfg.InMemory,
		"sync_writes": s.cfg.SyncWrites, "applied": s.Applied().String(), "log_len": s.LogLen(),
		"record_cache_bytes": s.cfg.RecordCacheSize, "memtable_bytes": s.cfg.MemTableSize,
		"block_cache_bytes": s.cfg.BlockCacheSize, "index_cache_bytes": s.cfg.IndexCacheSize,
	}).Info("store opened")
}

// Budget returns how the store divides its memory, as configured.
func (s *Store) Budget() Budget {
	return Budget{
		MemTables: s.cfg.MemTableSize * numMemtables, BlockCache: s.cfg.BlockCacheSize,
		IndexCache: s.cfg.IndexCacheSize, RecordCache: s.cfg.RecordCacheSize,
	}
}

// RecordCacheUsage returns the bytes (as the cache accounts them) and the
// number of entries the record cache holds now.
func (s *Store) RecordCacheUsage() (bytes int64, entries int) { return s.cache.usage() }

func openBadger(cfg Config, log *logrus.Entry) (*badger.DB, error) {
	dir := ""
	if !cfg.InMemory {
		dir = filepath.Join(cfg.Dir, "badger")
		if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	// Transactions are bounded to 15% of the memtable; values at or over
	// the threshold go to the value log, which Badger requires to be within
	// that bound.
	threshold := min(1<<20, cfg.MemTableSize*15/100)
	opt := badger.DefaultOptions(dir).
		WithInMemory(cfg.InMemory).
		WithSyncWrites(cfg.SyncWrites).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false).
		WithDetectConflicts(false). // one writer goroutine: no conflicts
		WithMemTableSize(cfg.MemTableSize).
		WithValueThreshold(threshold).
		WithBlockCacheSize(cfg.BlockCacheSize).
		WithIndexCacheSize(cfg.IndexCacheSize).
		WithNumCompactors(2).
		WithNumMemtables(numMemtables).
		WithNumVersionsToKeep(1).
		WithValueLogFileSize(256 << 20)
	db, err := badger.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("store: open %s (is another process using this data directory?): %w", cfg.Dir, err)
	}
	return db, nil
}

// load reads the applied vector, the HLC high-water mark, the last contact
// time, and the extents of the log and of the dead index (key-only scans).
func (s *Store) load() (state, error) {
	var st state
	err := s.db.View(func(txn *badger.Txn) error {
		hlc, err := getUint64(txn, hlcKey)
		if err != nil {
			return err
		}
		s.hlc.Observe(crdt.Timestamp(hlc))
		contact, err := getUint64(txn, contactKey)
		if err != nil {
			return err
		}
		s.lastContact.Store(int64(contact))
		s.records.Store(countRecords(txn))
		s.deadRecords.Store(countDead(txn))
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = true
		opts.Prefix = []byte{prefixMeta, metaApplied}
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			v, err := it.Item().ValueCopy(nil)
			if err != nil || len(k) != 10 || len(v) != 8 {
				it.Close()
				return fmt.Errorf("store: bad applied entry %x", k)
			}
			st.origin(crdt.NodeID(binary.BigEndian.Uint64(k[2:]))).applied = binary.BigEndian.Uint64(v)
		}
		it.Close()
		opts = badger.IteratorOptions{Prefix: []byte{prefixLog}}
		it = txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			origin, seq, ok := parseLogKey(it.Item().Key())
			if !ok {
				continue
			}
			o := st.origin(origin)
			if o.logCount == 0 {
				o.logFirst = seq
			}
			o.logCount++
			st.logLen++
		}
		return nil
	})
	if err != nil {
		return state{}, fmt.Errorf("store: load: %w", err)
	}
	s.publish(&st)
	return st, nil
}

// getUint64 reads an 8-byte meta value; 0 when absent.
func getUint64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// publish makes a committed state visible to Applied and LogLen.
func (s *Store) publish(st *state) {
	vv := st.versionVector()
	s.applied.Store(&vv)
	s.logLen.Store(st.logLen)
	s.forcedTrims.Store(st.forcedTrims)
}

// NodeID returns this node's ID.
func (s *Store) NodeID() crdt.NodeID { return s.self }

// Applied returns, per origin, the highest sequence number up to which every
// log entry has been applied. The vector must not be modified.
func (s *Store) Applied() crdt.VersionVector { return *s.applied.Load() }

// LogLen returns the number of entries in the replication log.
func (s *Store) LogLen() int64 { return s.logLen.Load() }

// LogForcedTrims returns Stats.LogForcedTrims without reading the store.
func (s *Store) LogForcedTrims() uint64 { return s.forcedTrims.Load() }

// Close stops accepting calls, applies the writes already queued, stops the
// background goroutines, syncs and closes Badger. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.wg.Wait()
		if s.readers.Add(-closedBias) != -closedBias {
			<-s.noReaders
		}
		var syncErr error
		if !s.cfg.InMemory {
			syncErr = s.db.Sync()
		}
		s.closeErr = errors.Join(syncErr, s.db.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close: %w", s.closeErr)
		}
		s.log.Info("store closed")
	})
	return s.closeErr
}

const closedBias = 1 << 40

// view runs fn in a Badger read transaction unless the store is closed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	defer s.leave()
	if s.readers.Add(1) < 0 {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) leave() {
	if s.readers.Add(-1) == -closedBias {
		s.readersDone.Do(func() { close(s.noReaders) })
	}
}
