package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
)

// Get returns the key's record, or ErrNotFound when there is none (a record
// with nothing visible, such as a tombstone, is returned).
func (s *Store) Get(key []byte) (crdt.Record, error) {
	if len(key) == 0 {
		return crdt.Record{}, ErrNotFound
	}
	if s.readers.Load() < 0 {
		return crdt.Record{}, ErrClosed
	}
	rec, found, known, gen := s.cache.lookup(key)
	if known {
		if !found {
			return crdt.Record{}, ErrNotFound
		}
		return rec, nil
	}
	rec, err := s.get(appendRecordKey, key)
	if err == nil || errors.Is(err, ErrNotFound) {
		s.cache.fill(key, rec, err == nil, gen)
	}
	return rec, err
}

// Read returns what a read of key shows now, and the record it came from.
// When nothing is visible it returns ErrNotFound, with the record (zero if
// there is none) so that the caller can still hand out its context.
func (s *Store) Read(key []byte) (crdt.View, crdt.Record, error) { return s.visible(s.Get(key)) }

// keyspace appends the Badger key of a key of one keyspace (data records,
// system records) to dst.
type keyspace func(dst, key []byte) []byte

// get is Get in the keyspace ks.
func (s *Store) get(ks keyspace, key []byte) (crdt.Record, error) {
	var rec crdt.Record
	err := s.view(func(txn *badger.Txn) error {
		var err error
		rec, err = getStored(txn, ks, key)
		return err
	})
	return rec, err
}

// visible is what a read of rec, a record get returned with err, shows
// now (see Read).
func (s *Store) visible(rec crdt.Record, err error) (crdt.View, crdt.Record, error) {
	if err != nil {
		return crdt.View{}, rec, err
	}
	v := rec.Read(s.clk.Now().UnixMilli())
	if !v.Found {
		return v, rec, ErrNotFound
	}
	return v, rec, nil
}

func getRecord(txn *badger.Txn, key []byte) (crdt.Record, error) {
	return getStored(txn, appendRecordKey, key)
}

// getStored reads key's record in the keyspace ks; ErrNotFound when there
// is none.
func getStored(txn *badger.Txn, ks keyspace, key []byte) (crdt.Record, error) {
	if len(key) == 0 {
		return crdt.Record{}, ErrNotFound
	}
	item, err := txn.Get(ks(make([]byte, 0, 1+len(key)), key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return crdt.Record{}, ErrNotFound
	}
	if err != nil {
		return crdt.Record{}, fmt.Errorf("store: get: %w", err)
	}
	return itemRecord(item)
}

// itemRecord decodes the record an item holds; an error names its key.
func itemRecord(item *badger.Item) (crdt.Record, error) {
	var rec crdt.Record
	err := item.Value(func(v []byte) error {
		var err error
		rec, err = crdt.UnmarshalRecord(v)
		return err
	})
	if err != nil {
		return crdt.Record{}, fmt.Errorf("store: key %q: %w", item.Key()[1:], err)
	}
	return rec, nil
}

// Scan calls fn for every record (tombstones and expired entries included)
// with key >= start, in key order, until fn returns false, limit records
// have been seen (limit <= 0: no limit) or ctx ends. fn may keep key and r,
// and may call the store's other methods (not Close).
func (s *Store) Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error {
	return s.scan(ctx, appendRecordKey, start, limit, fn)
}

// scan is Scan in the keyspace ks.
func (s *Store) scan(ctx context.Context, ks keyspace, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error {
	return s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = ks(nil, nil)
		if limit > 0 {
			opts.PrefetchSize = min(opts.PrefetchSize, limit)
		}
		it := txn.NewIterator(opts)
		defer it.Close()
		n := 0
		for it.Seek(ks(nil, start)); it.Valid(); it.Next() {
			if n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rec, err := itemRecord(it.Item())
			if err != nil {
				return err
			}
			n++
			if !fn(it.Item().KeyCopy(nil)[1:], rec) || n == limit {
				return nil
			}
		}
		return nil
	})
}

// LogStart returns the first sequence number of origin still in the log;
// Applied()[origin]+1 when the log holds none of origin's entries.
func (s *Store) LogStart(origin crdt.NodeID) (uint64, error) {
	first := s.Applied().Get(origin) + 1
	err := s.view(func(txn *badger.Txn) error {
		prefix := appendLogKey(nil, origin, 0)[:9]
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			_, first, _ = parseLogKey(it.Item().Key())
		}
		return nil
	})
	return first, err
}

// ReadLog returns up to limit of origin's log entries from fromSeq on, in
// order. If fromSeq has been trimmed it returns ErrLogTrimmed (LogStart
// says what remains); entries beyond Applied()[origin] do not exist yet.
func (s *Store) ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]LogEntry, error) {
	fromSeq = max(fromSeq, 1)
	if limit <= 0 || fromSeq > s.Applied().Get(origin) {
		return nil, nil
	}
	var out []LogEntry
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = appendLogKey(nil, origin, 0)[:9]
		opts.PrefetchSize = min(opts.PrefetchSize, limit)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(appendLogKey(nil, origin, fromSeq)); it.Valid() && len(out) < limit; it.Next() {
			item := it.Item()
			_, seq, ok := parseLogKey(item.Key())
			if !ok {
				return fmt.Errorf("store: bad log key %x", item.Key())
			}
			if len(out) == 0 && seq != fromSeq {
				return fmt.Errorf("%w: %s from %d: log starts at %d", ErrLogTrimmed, origin, fromSeq, seq)
			}
			e := LogEntry{Origin: origin, Seq: seq}
			if err := item.Value(func(v []byte) error { return decodeLogValue(v, &e) }); err != nil {
				return fmt.Errorf("store: log entry %s:%d: %w", origin, seq, err)
			}
			out = append(out, e)
		}
		if len(out) == 0 {
			return fmt.Errorf("%w: %s from %d: no entries left", ErrLogTrimmed, origin, fromSeq)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LogReader reads a replication log; *Store is one.
type LogReader interface {
	ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]LogEntry, error)
}

// WrittenAfter returns when origin's entry after seq was written, by its
// hybrid-clock timestamp: the age of the oldest entry that a holder of the
// log up to seq lacks. It is false when l holds no such entry (nothing is
// lacking, or the log was trimmed past it).
func WrittenAfter(l LogReader, origin crdt.NodeID, seq uint64) (time.Time, bool) {
	ents, err := l.ReadLog(origin, seq+1, 1)
	if err != nil || len(ents) == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ents[0].TS.Millis()), true
}
