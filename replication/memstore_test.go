package replication

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// memStore is a deterministic in-memory Store with the semantics of
// store.Store: one crdt.Record per key; a log per origin holding exactly
// the sequence numbers [first, applied]; local writes made with crdt's
// Set, Delete and Incr, logged at applied[self]+1; ApplyRemote applying
// only the next contiguous entry of each origin; MergeRecords writing no
// log entry; ReadLog failing with store.ErrLogTrimmed below the log's
// start. Everything it acknowledged survives a "crash": the simulation
// drops the Machine and keeps the memStore, as the real store survives
// kill -9. Its bucket digests differ from the real store's on purpose (see
// fingerprint).
//
// Merges and tombstone GC are the real store's, from crdt: every write,
// remote entry and synced record merges through crdt.Apply; a dead record
// goes once crdt.Record.Collectable says so under the stable vector
// (SetStable), when the vector is set and at every purge, and, when
// horizonMS is set, at a purge past its horizon (crdt.Record.PastHorizon;
// the purge keeps the last write time, as the real store's stub does).
type memStore struct {
	self        crdt.NodeID
	hlc         crdt.HLC
	wall        func() int64 // this node's wall clock, Unix ms
	recs        map[string]crdt.Record
	logs        map[crdt.NodeID]*memLog
	applied     crdt.VersionVector
	stable      crdt.VersionVector // nil: unknown
	horizonMS   int64              // the tombstone horizon; 0: none
	lastContact time.Time
	collected   int // dead records dropped by stability
	pastHorizon int // dead records dropped past the horizon

	// failApply, when set, makes an ApplyRemote, MergeRecord or
	// MergeRecords call fail after applying a prefix of its work, as a real
	// commit can fail.
	failApply func() (fail bool, keep int)
	// droppedPastHorizon, when set, is told of each record dropped past
	// the horizon, before it goes.
	droppedPastHorizon func(key string, r crdt.Record)
}

type memLog struct {
	first   uint64 // sequence number of entries[0]
	entries []store.LogEntry
}

var errInjected = errors.New("upu: injected store failure")

func newMemStore(self crdt.NodeID, wall func() int64) *memStore {
	return &memStore{self: self, wall: wall, recs: map[string]crdt.Record{}, logs: map[crdt.NodeID]*memLog{}}
}

func (s *memStore) Applied() crdt.VersionVector { return s.applied }

// write applies one local write, as store.Store.Apply does, and returns
// its result and the log entry it made.
func (s *memStore) write(w store.Write) (store.Result, store.LogEntry) {
	if w.Op < store.OpSet || w.Op > store.OpIncr || len(w.Key) == 0 {
		return store.Result{Err: store.ErrBadRequest}, store.LogEntry{}
	}
	now := s.wall()
	old := s.recs[string(w.Key)]
	ts := s.hlc.Now(now)
	seq := s.applied.Get(s.self) + 1
	op := crdt.Op{Node: s.self, TS: ts, Seq: seq, Context: w.Context}
	var (
		delta   crdt.Record
		counter int64
		err     error
	)
	switch w.Op {
	case store.OpSet:
		delta = old.Set(op, bytes.Clone(w.Value), w.Expiry)
	case store.OpDel:
		if old.Read(now).Found {
			counter = 1
		}
		delta = old.Delete(op)
	case store.OpIncr:
		if delta, counter, err = old.Incr(op, w.Delta, now); err != nil {
			return store.Result{Err: err}, store.LogEntry{}
		}
	}
	merged := crdt.Apply(old, crdt.Incoming{Record: delta, Origin: s.self, Seq: seq}, s.Applied)
	s.recs[string(w.Key)] = merged
	e := store.LogEntry{Origin: s.self, Seq: seq, Key: bytes.Clone(w.Key), Delta: crdt.AppendRecord(nil, delta), ReqID: w.ReqID, TS: ts}
	s.appendLog(e)
	return store.Result{Context: merged.Context, Counter: counter}, e
}

func (s *memStore) appendLog(e store.LogEntry) {
	l := s.logs[e.Origin]
	if l == nil {
		l = &memLog{}
		s.logs[e.Origin] = l
	}
	if len(l.entries) == 0 {
		l.first = e.Seq
	}
	l.entries = append(l.entries, e)
	s.applied = s.applied.With(e.Origin, e.Seq)
}

func (s *memStore) ApplyRemote(_ context.Context, entries []store.LogEntry) (int, error) {
	limit, failErr := len(entries), error(nil)
	if s.failApply != nil {
		if fail, keep := s.failApply(); fail {
			limit, failErr = min(keep, len(entries)), errInjected
		}
	}
	n := 0
	var firstErr error
	for i := range entries[:limit] {
		e := &entries[i]
		if e.Seq != s.applied.Get(e.Origin)+1 {
			continue // a duplicate, or beyond a gap
		}
		if len(e.Key) == 0 {
			firstErr = cmpErr(firstErr, fmt.Errorf("%w: log entry %s:%d has an empty key", store.ErrBadRequest, e.Origin, e.Seq))
			continue
		}
		delta, err := e.Record()
		if err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("%w: log entry %s:%d: %w", store.ErrBadRequest, e.Origin, e.Seq, err))
			continue
		}
		s.hlc.Observe(e.TS)
		s.recs[string(e.Key)] = crdt.Apply(s.recs[string(e.Key)], crdt.Incoming{Record: delta, Origin: e.Origin, Seq: e.Seq}, s.Applied)
		s.appendLog(*e)
		n++
	}
	return n, cmpErr(firstErr, failErr)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *memStore) ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]store.LogEntry, error) {
	fromSeq = max(fromSeq, 1)
	if limit <= 0 || fromSeq > s.applied.Get(origin) {
		return nil, nil
	}
	l := s.logs[origin]
	if l == nil || len(l.entries) == 0 || fromSeq < l.first {
		return nil, fmt.Errorf("%w: %s from %d", store.ErrLogTrimmed, origin, fromSeq)
	}
	i := int(fromSeq - l.first)
	return slices.Clone(l.entries[i:min(i+limit, len(l.entries))]), nil
}

func (s *memStore) sortedKeys(start []byte) []string {
	keys := make([]string, 0, len(s.recs))
	for k := range s.recs {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// ScanSystem finds nothing: the simulation writes no system keys.
func (s *memStore) ScanSystem(context.Context, func([]byte, crdt.Record) bool) error { return nil }

func (s *memStore) Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error {
	n := 0
	for _, k := range s.sortedKeys(start) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		if !fn([]byte(k), s.recs[k]) || n == limit {
			return nil
		}
	}
	return nil
}

func (s *memStore) MergeRecord(_ context.Context, key []byte, rec crdt.Record, seen crdt.VersionVector) error {
	if s.failApply != nil {
		if fail, _ := s.failApply(); fail {
			return errInjected
		}
	}
	return s.mergeRecord(key, rec, seen)
}

func (s *memStore) mergeRecord(key []byte, rec crdt.Record, seen crdt.VersionVector) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", store.ErrBadRequest)
	}
	s.hlc.Observe(rec.LastWrite())
	old, found := s.recs[string(key)]
	merged := crdt.Apply(old, crdt.Incoming{Record: rec, Seen: seen}, s.Applied)
	if !found && len(merged.Entries) == 0 && merged.Context.IsZero() {
		return nil
	}
	s.recs[string(key)] = merged
	return nil
}

// RaiseApplied is the method the real store needs for snapshots (see the
// Store interface).
func (s *memStore) RaiseApplied(_ context.Context, vv crdt.VersionVector) error {
	for _, e := range vv {
		if e.Node == s.self || e.Counter <= s.applied.Get(e.Node) {
			continue
		}
		s.applied = s.applied.With(e.Node, e.Counter)
		s.logs[e.Node] = &memLog{first: e.Counter + 1}
	}
	return nil
}

// trim drops origin's oldest log entries, keeping at most keep, as the
// store's trimmer does past MaxLogEntries.
func (s *memStore) trim(origin crdt.NodeID, keep int) {
	l := s.logs[origin]
	if l == nil || len(l.entries) <= keep {
		return
	}
	drop := len(l.entries) - keep
	l.entries = slices.Clone(l.entries[drop:])
	l.first += uint64(drop)
}

// purge drops entries expired at nowMS, dead records past the horizon, and
// dead records the stable vector covers, as the store's purger does.
func (s *memStore) purge(nowMS int64) {
	for k, r := range s.recs {
		if s.horizonMS > 0 && r.PastHorizon(nowMS, s.horizonMS) {
			if s.droppedPastHorizon != nil {
				s.droppedPastHorizon(k, r)
			}
			delete(s.recs, k)
			s.pastHorizon++
			continue
		}
		if p, changed := r.PurgeKeepingLastWrite(nowMS); changed {
			s.recs[k] = p
		}
	}
	s.collect(nowMS)
}

// MergeRecords merges each record as MergeRecord does; on an injected
// failure a prefix of them is merged.
func (s *memStore) MergeRecords(ctx context.Context, recs []store.KeyRecord, seen crdt.VersionVector) error {
	limit, failErr := len(recs), error(nil)
	if s.failApply != nil {
		if fail, keep := s.failApply(); fail {
			limit, failErr = min(keep, len(recs)), errInjected
		}
	}
	for i := range recs[:limit] {
		if err := s.mergeRecord(recs[i].Key, recs[i].Record, seen); err != nil {
			return err
		}
	}
	return failErr
}

// BucketDigests is store.Store.BucketDigests over the records.
func (s *memStore) BucketDigests(_ context.Context, bits uint) ([]uint64, error) {
	if bits > store.MaxDigestBits {
		return nil, fmt.Errorf("%w: %d digest bits", store.ErrBadRequest, bits)
	}
	out := make([]uint64, 1<<bits)
	now := s.wall()
	for k, r := range s.recs {
		out[crdt.Bucket([]byte(k), bits)] ^= r.Fingerprint([]byte(k), now, s.applied)
	}
	return out, nil
}

// SetStable sets the stable vector and drops the dead records it covers.
func (s *memStore) SetStable(vv crdt.VersionVector) {
	s.stable = slices.Clone(vv)
	s.collect(s.wall())
}

func (s *memStore) Stable() crdt.VersionVector { return s.stable }

// collect drops the records dead at nowMS whose context the stable vector
// covers.
func (s *memStore) collect(nowMS int64) {
	if s.stable == nil {
		return
	}
	for k, r := range s.recs {
		if r.Collectable(nowMS, s.stable) {
			delete(s.recs, k)
			s.collected++
		}
	}
}

func (s *memStore) LastContact() time.Time { return s.lastContact }

func (s *memStore) SetLastContact(_ context.Context, t time.Time) error {
	s.lastContact = t
	return nil
}

func (s *memStore) read(key string, nowMS int64) crdt.View {
	return s.recs[key].Read(nowMS)
}

// digest is store.Digest's hash over the live data at nowMS.
func (s *memStore) digest(nowMS int64) string {
	h := sha256.New()
	var buf []byte
	for _, k := range s.sortedKeys(nil) {
		v := s.recs[k].Read(nowMS)
		if !v.Found {
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(k)))
		buf = append(buf, k...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v.Value)))
		buf = append(buf, v.Value...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(v.Expiry))
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *memStore) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "store %s applied=%s logs:", s.self, s.applied)
	for _, e := range s.applied {
		if l := s.logs[e.Node]; l != nil {
			fmt.Fprintf(&sb, " %s:[%d,+%d)", e.Node, l.first, len(l.entries))
		}
	}
	return sb.String()
}
