package store

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
)

// due returns when the purger should next look at r: its next expiry, or,
// for a dead record, when its tombstone horizon passes (whichever is first);
// 0 when nothing is due.
func (s *Store) due(r crdt.Record, nowMS int64) int64 {
	d := r.NextExpiry(nowMS)
	if r.Dead(nowMS) {
		if h := r.LastWrite().Millis() + s.horizonMS; d == 0 || h < d {
			d = h
		}
	}
	return d
}

// purgeChunk is how many index entries one purge request handles.
const purgeChunk = 512

// purgeOnce handles every index entry due at or before now, through the
// writer, in chunks. It stops early when a chunk makes no progress (every
// operation failed), so a bad record cannot make it spin.
func (s *Store) purgeOnce(ctx context.Context, now time.Time) error {
	nowMS := now.UnixMilli()
	for {
		keys, err := s.dueIndexKeys(nowMS, purgeChunk)
		if err != nil || len(keys) == 0 {
			return err
		}
		r := s.getRequest(reqPurge)
		r.indexKeys, r.nowMS = keys, nowMS
		if err := s.do(ctx, r); err != nil {
			return err
		}
		progress, err := r.committed, r.err
		s.putRequest(r)
		if err != nil {
			s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("purge")
		}
		if len(keys) < purgeChunk || progress == 0 {
			return nil
		}
	}
}

// dueIndexKeys returns up to limit index keys with a time at or before nowMS.
func (s *Store) dueIndexKeys(nowMS int64, limit int) ([][]byte, error) {
	var keys [][]byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(keys) < limit; it.Next() {
			k := it.Item().Key()
			if t, _, ok := parseIndexKey(k); ok && t > nowMS {
				break
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, err
}

// purger runs purgeOnce every PurgeInterval, then a step of the tombstone
// GC by stability (which finds the records purgeOnce just saw die).
func (s *Store) purger() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	var sweep gcSweep
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			now := s.clk.Now()
			if err := s.purgeOnce(context.Background(), now); err != nil && !errors.Is(err, ErrClosed) {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("purge failed")
			}
			if err := s.collectStable(context.Background(), &sweep, now, gcChunksPerTick); err != nil && !errors.Is(err, ErrClosed) {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("tombstone gc failed")
			}
		}
	}
}
