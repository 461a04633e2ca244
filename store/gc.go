package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
)

// Tombstone GC by causal stability. A dead record (nothing visible: only
// tombstones, expired entries, a bare context) must keep its context while a
// replica may still send what the context supersedes. Once every member has
// applied every log entry the context covers (the stable vector, which
// replication reports), none can: the record is dropped. Dots are log
// sequence numbers, so a later write of the key gets a dot no context held,
// and replicas that still hold the old tombstone take it. The tombstone
// horizon (buildPurge) remains the fallback when stability is unknown or
// stuck, and covers records that died before the dead index existed.
//
// The dead index ('d' + key, empty value) lets the purger find dead records
// without reading every record. The writer keeps it: a key has an entry when
// its record was dead when last staged. Records that die by expiring get
// theirs when the purger handles their expiry.

// GCStats counts dead records and the tombstone GC's work since the store
// opened.
type GCStats struct {
	DeadRecords    int64  // entries in the dead-record index
	DroppedStable  uint64 // dead records dropped once causally stable
	DroppedHorizon uint64 // dead records dropped past the tombstone horizon
}

// GCStats returns the dead-record counters without reading the store.
// DeadRecords may be off by a few after the wall clock stepped back; it is
// counted afresh on open.
func (s *Store) GCStats() GCStats {
	return GCStats{
		DeadRecords:    s.deadRecords.Load(),
		DroppedStable:  s.droppedStable.Load(),
		DroppedHorizon: s.droppedHorizon.Load(),
	}
}

// SetStable sets the domain's stable vector: every member has applied every
// log entry it covers. nil means unknown, which stops collection by
// stability. It is kept in memory only: after a restart it is unknown until
// set again.
func (s *Store) SetStable(vv crdt.VersionVector) {
	if vv == nil {
		s.stable.Store(nil)
		return
	}
	c := slices.Clone(vv)
	s.stable.Store(&c)
}

// Stable returns the vector SetStable last set, nil when unknown. It must
// not be modified.
func (s *Store) Stable() crdt.VersionVector {
	if p := s.stable.Load(); p != nil {
		return *p
	}
	return nil
}

// gcCounts are changes to the dead-record counters, staged by the writer
// and published when their transaction commits.
type gcCounts struct {
	records        int64  // records created minus deleted (Stats.Keys)
	dead           int64  // dead-index entries added minus deleted
	added          uint64 // dead-index entries added
	droppedStable  uint64
	droppedHorizon uint64
}

func (c *gcCounts) add(o gcCounts) {
	c.records += o.records
	c.dead += o.dead
	c.added += o.added
	c.droppedStable += o.droppedStable
	c.droppedHorizon += o.droppedHorizon
}

func (s *Store) publishGC(c *gcCounts) {
	if *c == (gcCounts{}) {
		return
	}
	s.records.Add(c.records)
	s.deadRecords.Add(c.dead)
	s.deadAdded.Add(c.added)
	s.droppedStable.Add(c.droppedStable)
	s.droppedHorizon.Add(c.droppedHorizon)
}

// deadMark says whether a key has a dead-index entry, when the writer
// knows it (the record cache and the overlay keep it with the record).
type deadMark uint8

const (
	deadUnknown deadMark = iota
	deadNo
	deadYes
)

func markFor(dead bool) deadMark {
	if dead {
		return deadYes
	}
	return deadNo
}

// markOf returns what the writer knows of key's dead-index entry.
func (w *writer) markOf(key []byte) deadMark {
	if o, ok := w.overlay[string(key)]; ok {
		if o.deleted {
			return deadNo
		}
		return o.dead
	}
	return w.cache.deadMark(key)
}

// markDead keeps the dead index in step with the record staged for key: old
// (found: it existed) becomes rec, dead-ness judged at nowMS. It returns
// whether the key then has an entry. A write that finds and leaves the
// record live costs nothing more: a record live now was live when last
// staged (expiry only kills), so it has no entry. Otherwise the entry's
// presence comes from the record cache, or from Badger when the cache does
// not know: a dead record may lack one, having died by expiring since it was
// staged, or before the index existed.
func (w *writer) markDead(key []byte, old crdt.Record, found bool, rec crdt.Record, nowMS int64) (deadMark, error) {
	dead := rec.Dead(nowMS)
	oldDead := found && old.Dead(nowMS)
	if !dead && !oldDead {
		return deadNo, nil
	}
	has, err := w.deadEntry(key, found, oldDead)
	switch {
	case err != nil:
		return deadUnknown, err
	case dead && !has:
		w.putDead(key)
	case !dead && has:
		w.delDead(key)
	}
	return markFor(dead), nil
}

// deadEntry reports whether key, whose record is as found and oldDead say,
// has a dead-index entry.
func (w *writer) deadEntry(key []byte, found, oldDead bool) (bool, error) {
	if !found {
		return false, nil
	}
	switch w.markOf(key) {
	case deadYes:
		return true, nil
	case deadNo:
		return false, nil
	}
	if !oldDead {
		return false, nil
	}
	return w.hasDead(key)
}

// unmarkDead deletes the dead-index entry of key, whose dead record is
// being deleted.
func (w *writer) unmarkDead(key []byte) error {
	has, err := w.deadEntry(key, true, true)
	if has {
		w.delDead(key)
	}
	return err
}

// hasDead reports whether key has a dead-index entry, as staged.
func (w *writer) hasDead(key []byte) (bool, error) {
	w.keyBuf = appendDeadKey(w.keyBuf[:0], key)
	_, err := w.txn.Get(w.keyBuf)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("store: read dead index %q: %w", key, err)
}

func (w *writer) putDead(key []byte) {
	start := len(w.arena)
	w.arena = appendDeadKey(w.arena, key)
	w.items = append(w.items, item{key: w.since(start)})
	w.opGC.dead++
	w.opGC.added++
}

func (w *writer) delDead(key []byte) {
	start := len(w.arena)
	w.arena = appendDeadKey(w.arena, key)
	w.items = append(w.items, item{key: w.since(start), del: true})
	w.opGC.dead--
}

// buildGC handles one dead-index entry: the record goes, with the entry, if
// it is still dead and its context is covered by the stable vector; a stale
// entry (the record is live again, or gone) goes alone. Any 'x' entry of the
// key stays: buildPurge drops it when it finds no record.
func (w *writer) buildGC(deadKey []byte, stable crdt.VersionVector) (effect, error) {
	key, ok := parseDeadKey(deadKey)
	if !ok {
		return effect{noop: true}, nil
	}
	rec, found, err := w.get(key)
	if err != nil {
		return effect{}, err
	}
	dead := found && rec.Dead(w.now)
	if dead && !rec.Collectable(w.now, stable) {
		return effect{noop: true}, nil
	}
	has := w.markOf(key) == deadYes
	if !has {
		if has, err = w.hasDead(key); err != nil {
			return effect{}, err
		}
	}
	switch {
	case dead:
		if has {
			w.delDead(key)
		}
		w.deleteRecord(key)
		w.opGC.droppedStable++
	case !has:
		return effect{noop: true}, nil
	default:
		w.delDead(key)
		if found {
			w.opRecs = append(w.opRecs, opRecord{key: key, overlayRecord: overlayRecord{rec: rec, dead: deadNo}})
		}
	}
	return effect{}, nil
}

// putContact stages the last-contact time.
func (w *writer) putContact(ms int64) {
	start := len(w.arena)
	w.arena = binary.BigEndian.AppendUint64(w.arena, uint64(ms))
	w.items = append(w.items, item{key: contactKey, val: w.since(start)})
}

const (
	// gcChunk is how many dead-index entries the purger reads per step, and
	// so the most records it hands the writer at once.
	gcChunk = 512
	// gcChunksPerTick bounds a purger tick's GC work.
	gcChunksPerTick = 8
)

// gcSweep is the purger's progress through the dead index. A sweep reads
// the whole index, a few chunks per tick, and hands the writer the records
// the stable vector covers. A new sweep starts only when the stable vector
// or the index changed since the last complete one.
type gcSweep struct {
	active bool
	cursor []byte             // next dead-index key to read; nil: the first
	stable crdt.VersionVector // when the sweep under way started
	added  uint64             // deadAdded when it started

	done       bool // a sweep completed; doneStable and doneAdded are its
	doneStable crdt.VersionVector
	doneAdded  uint64

	scanned int
	dropped uint64 // droppedStable when the sweep started
	started time.Time
}

// collectStable runs up to maxChunks steps of the dead-index sweep.
func (s *Store) collectStable(ctx context.Context, g *gcSweep, now time.Time, maxChunks int) error {
	stable := s.Stable()
	if stable == nil {
		return nil
	}
	if !g.active {
		added := s.deadAdded.Load()
		if g.done && added == g.doneAdded && stable.Equal(g.doneStable) {
			return nil
		}
		*g = gcSweep{
			active: true, stable: stable, added: added,
			done: g.done, doneStable: g.doneStable, doneAdded: g.doneAdded,
			dropped: s.droppedStable.Load(), started: now,
		}
	}
	nowMS := now.UnixMilli()
	for range maxChunks {
		// The newest vector; the sweep still counts as one under the
		// vector it started with. Unknown again: pause.
		if stable = s.Stable(); stable == nil {
			return nil
		}
		keys, next, n, err := s.gcCandidates(g.cursor, stable, nowMS)
		if err != nil {
			return err
		}
		g.scanned += n
		if len(keys) > 0 {
			r := s.getRequest(reqGC)
			r.indexKeys, r.vv = keys, stable
			if err := s.do(ctx, r); err != nil {
				return err
			}
			err := r.err
			s.putRequest(r)
			if err != nil {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("tombstone gc")
			}
		}
		if next == nil {
			g.active, g.done = false, true
			g.doneStable, g.doneAdded = g.stable, g.added
			g.cursor = nil
			s.log.WithFields(logrus.Fields{
				"scanned": g.scanned, "dropped": s.droppedStable.Load() - g.dropped,
				"stable": g.stable.String(), "duration": s.clk.Now().Sub(g.started).String(),
			}).Debug("tombstone gc sweep")
			return nil
		}
		g.cursor = next
	}
	return nil
}

// gcCandidates reads up to gcChunk dead-index entries from cursor on and
// returns those the writer should look at: records dead and covered by
// stable at nowMS, and stale entries. next is the key to resume from, nil
// at the end of the index; n is how many entries were read.
func (s *Store) gcCandidates(cursor []byte, stable crdt.VersionVector, nowMS int64) (keys [][]byte, next []byte, n int, err error) {
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDead}})
		defer it.Close()
		seek := cursor
		if seek == nil {
			seek = []byte{prefixDead}
		}
		for it.Seek(seek); it.Valid(); it.Next() {
			k := it.Item().Key()
			if n == gcChunk {
				next = it.Item().KeyCopy(nil)
				return nil
			}
			n++
			key, ok := parseDeadKey(k)
			if !ok {
				continue
			}
			rec, err := getRecord(txn, key)
			switch {
			case errors.Is(err, ErrNotFound):
			case errors.Is(err, crdt.ErrBadEncoding):
				continue // the writer reports it when the key is written
			case err != nil:
				return err
			case rec.Dead(nowMS) && !rec.Collectable(nowMS, stable):
				continue
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, next, n, err
}

// countDead counts the dead-index entries (a key-only scan, on open).
func countDead(txn *badger.Txn) int64 { return countPrefix(txn, prefixDead) }

// countRecords counts the data records (a key-only scan, on open).
func countRecords(txn *badger.Txn) int64 { return countPrefix(txn, prefixRecord) }

func countPrefix(txn *badger.Txn, prefix byte) int64 {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
	defer it.Close()
	var n int64
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}
