package simkit

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

// Store is a deterministic in-memory store with the semantics of
// store.Store: one crdt.Record per key; a log per origin holding exactly
// the sequence numbers [first, applied]; local writes made with crdt's
// Set, Delete and Incr, logged at applied[self]+1; ApplyRemote applying
// only the next contiguous entry of each origin; MergeRecords writing no
// log entry; ReadLog failing with store.ErrLogTrimmed below the log's
// start. Everything it acknowledged survives a "crash": a simulation drops
// the Machine and keeps the Store, as the real store survives kill -9. Its
// bucket digests differ from the real store's on purpose (see
// crdt.Record.Fingerprint's use in BucketDigests).
//
// Merges and tombstone GC are the real store's, from crdt: every write,
// remote entry and synced record merges through crdt.Apply; a dead record
// goes once crdt.Record.Collectable says so under the stable vector
// (SetStable), when the vector is set and at every purge, and, when
// HorizonMS is set, at a purge past its horizon (crdt.Record.PastHorizon;
// the purge keeps the last write time, as the real store's stub does).
//
// The system keyspace is the real store's too: registers apart from the
// data (Write.System, LogEntry.System, KeyRecord.System), written through
// the same log, read by ReadSystem, scanned by ScanSystem, counted in
// BucketDigests; set and delete only, and never collected.
type Store struct {
	// Recs are the data records by key; a test may read and set them.
	Recs map[string]crdt.Record
	// HorizonMS is the tombstone horizon; 0: none.
	HorizonMS int64
	// Collected counts dead records dropped by stability; PastHorizon,
	// those dropped past the horizon.
	Collected, PastHorizon int
	// FailApply, when set, makes an ApplyRemote, MergeRecord or
	// MergeRecords call fail with ErrInjected after applying a prefix of
	// its work (keep items), as a real commit can fail.
	FailApply func() (fail bool, keep int)
	// DroppedPastHorizon, when set, is told of each record dropped past
	// the horizon, before it goes.
	DroppedPastHorizon func(key string, r crdt.Record)

	self        crdt.NodeID
	hlc         crdt.HLC
	wall        func() int64 // this node's wall clock, Unix ms
	sys         map[string]crdt.Record
	logs        map[crdt.NodeID]*memLog
	applied     crdt.VersionVector
	stable      crdt.VersionVector // nil: unknown
	lastContact time.Time
}

type memLog struct {
	first   uint64 // sequence number of entries[0]
	entries []store.LogEntry
}

// ErrInjected is the failure FailApply injects.
var ErrInjected = errors.New("upu: injected store failure")

// NewStore returns an empty store of the node self, whose wall clock (Unix
// ms) is wall.
func NewStore(self crdt.NodeID, wall func() int64) *Store {
	return &Store{Recs: map[string]crdt.Record{}, self: self, wall: wall, sys: map[string]crdt.Record{}, logs: map[crdt.NodeID]*memLog{}}
}

// NodeID returns the node the store belongs to.
func (s *Store) NodeID() crdt.NodeID { return s.self }

// Wall returns the store's wall clock, Unix ms.
func (s *Store) Wall() int64 { return s.wall() }

func (s *Store) Applied() crdt.VersionVector { return s.applied }

// Write applies one local write, as store.Store.Apply does, and returns
// its result and the log entry it made.
func (s *Store) Write(w store.Write) (store.Result, store.LogEntry) {
	if w.Op < store.OpSet || w.Op > store.OpIncr || len(w.Key) == 0 ||
		w.System && (w.Op == store.OpIncr || w.Expiry != 0 || w.KeepTTL || w.Cond != store.CondNone) {
		return store.Result{Err: store.ErrBadRequest}, store.LogEntry{}
	}
	recs := s.keyspace(w.System)
	now := s.wall()
	old := recs[string(w.Key)]
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
	recs[string(w.Key)] = merged
	e := store.LogEntry{Origin: s.self, Seq: seq, Key: bytes.Clone(w.Key), Delta: crdt.AppendRecord(nil, delta), ReqID: w.ReqID, TS: ts, System: w.System}
	s.appendLog(e)
	return store.Result{Context: merged.Context, Counter: counter}, e
}

// keyspace returns the records of the system keyspace or of the data.
func (s *Store) keyspace(system bool) map[string]crdt.Record {
	if system {
		return s.sys
	}
	return s.Recs
}

func (s *Store) appendLog(e store.LogEntry) {
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

func (s *Store) ApplyRemote(_ context.Context, entries []store.LogEntry) (int, error) {
	limit, failErr := len(entries), error(nil)
	if s.FailApply != nil {
		if fail, keep := s.FailApply(); fail {
			limit, failErr = min(keep, len(entries)), ErrInjected
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
			firstErr = cmp(firstErr, fmt.Errorf("%w: log entry %s:%d has an empty key", store.ErrBadRequest, e.Origin, e.Seq))
			continue
		}
		delta, err := e.Record()
		if err != nil {
			firstErr = cmp(firstErr, fmt.Errorf("%w: log entry %s:%d: %w", store.ErrBadRequest, e.Origin, e.Seq, err))
			continue
		}
		s.hlc.Observe(e.TS)
		recs := s.keyspace(e.System)
		recs[string(e.Key)] = crdt.Apply(recs[string(e.Key)], crdt.Incoming{Record: delta, Origin: e.Origin, Seq: e.Seq}, s.Applied)
		s.appendLog(*e)
		n++
	}
	return n, cmp(firstErr, failErr)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *Store) ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]store.LogEntry, error) {
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

// Keys returns the data keys >= start, in order.
func (s *Store) Keys(start []byte) []string { return sortedKeys(s.Recs, start) }

func sortedKeys(recs map[string]crdt.Record, start []byte) []string {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// ReadSystem returns what a read of the system key shows now, and its
// record; store.ErrNotFound, with the record, when nothing is visible.
func (s *Store) ReadSystem(key []byte) (crdt.View, crdt.Record, error) {
	r := s.sys[string(key)]
	v := r.Read(s.wall())
	if !v.Found {
		return v, r, store.ErrNotFound
	}
	return v, r, nil
}

func (s *Store) ScanSystem(ctx context.Context, fn func(key []byte, r crdt.Record) bool) error {
	for _, k := range sortedKeys(s.sys, nil) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn([]byte(k), s.sys[k]) {
			return nil
		}
	}
	return nil
}

func (s *Store) Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error {
	n := 0
	for _, k := range s.Keys(start) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		if !fn([]byte(k), s.Recs[k]) || n == limit {
			return nil
		}
	}
	return nil
}

func (s *Store) MergeRecord(_ context.Context, key []byte, rec crdt.Record, seen crdt.VersionVector) error {
	if s.FailApply != nil {
		if fail, _ := s.FailApply(); fail {
			return ErrInjected
		}
	}
	return s.mergeRecord(s.Recs, key, rec, seen)
}

func (s *Store) mergeRecord(recs map[string]crdt.Record, key []byte, rec crdt.Record, seen crdt.VersionVector) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", store.ErrBadRequest)
	}
	s.hlc.Observe(rec.LastWrite())
	old, found := recs[string(key)]
	merged := crdt.Apply(old, crdt.Incoming{Record: rec, Seen: seen}, s.Applied)
	if !found && len(merged.Entries) == 0 && merged.Context.IsZero() {
		return nil
	}
	recs[string(key)] = merged
	return nil
}

// RaiseApplied is the method the real store needs for snapshots (see
// replication.StoreWriter).
func (s *Store) RaiseApplied(_ context.Context, vv crdt.VersionVector) error {
	for _, e := range vv {
		if e.Node == s.self || e.Counter <= s.applied.Get(e.Node) {
			continue
		}
		s.applied = s.applied.With(e.Node, e.Counter)
		s.logs[e.Node] = &memLog{first: e.Counter + 1}
	}
	return nil
}

// Trim drops origin's oldest log entries, keeping at most keep, as the
// store's trimmer does past MaxLogEntries.
func (s *Store) Trim(origin crdt.NodeID, keep int) {
	l := s.logs[origin]
	if l == nil || len(l.entries) <= keep {
		return
	}
	drop := len(l.entries) - keep
	l.entries = slices.Clone(l.entries[drop:])
	l.first += uint64(drop)
}

// Purge drops entries expired at nowMS, dead records past the horizon, and
// dead records the stable vector covers, as the store's purger does.
func (s *Store) Purge(nowMS int64) {
	for k, r := range s.Recs {
		if s.HorizonMS > 0 && r.PastHorizon(nowMS, s.HorizonMS) {
			if s.DroppedPastHorizon != nil {
				s.DroppedPastHorizon(k, r)
			}
			delete(s.Recs, k)
			s.PastHorizon++
			continue
		}
		if p, changed := r.PurgeKeepingLastWrite(nowMS); changed {
			s.Recs[k] = p
		}
	}
	s.collect(nowMS)
}

// MergeRecords merges each record as MergeRecord does (a system record
// into the system keyspace); on an injected failure a prefix of them is
// merged.
func (s *Store) MergeRecords(ctx context.Context, recs []store.KeyRecord, seen crdt.VersionVector) error {
	limit, failErr := len(recs), error(nil)
	if s.FailApply != nil {
		if fail, keep := s.FailApply(); fail {
			limit, failErr = min(keep, len(recs)), ErrInjected
		}
	}
	for i := range recs[:limit] {
		if err := s.mergeRecord(s.keyspace(recs[i].System), recs[i].Key, recs[i].Record, seen); err != nil {
			return err
		}
	}
	return failErr
}

// systemFingerprint is the prefix a system record is fingerprinted under,
// apart from a data record of the same name, as the real store does.
const systemFingerprint = "\x00upu-system\x00"

// BucketDigests is store.Store.BucketDigests over the records, system
// records included.
func (s *Store) BucketDigests(_ context.Context, bits uint) ([]uint64, error) {
	if bits > store.MaxDigestBits {
		return nil, fmt.Errorf("%w: %d digest bits", store.ErrBadRequest, bits)
	}
	out := make([]uint64, 1<<bits)
	now := s.wall()
	for k, r := range s.Recs {
		out[crdt.Bucket([]byte(k), bits)] ^= r.Fingerprint([]byte(k), now, s.applied)
	}
	for k, r := range s.sys {
		out[crdt.Bucket([]byte(k), bits)] ^= r.Fingerprint([]byte(systemFingerprint+k), now, s.applied)
	}
	return out, nil
}

// SetStable sets the stable vector and drops the dead records it covers.
func (s *Store) SetStable(vv crdt.VersionVector) {
	s.stable = slices.Clone(vv)
	s.collect(s.wall())
}

// Stable returns the stable vector last set.
func (s *Store) Stable() crdt.VersionVector { return s.stable }

// collect drops the records dead at nowMS whose context the stable vector
// covers.
func (s *Store) collect(nowMS int64) {
	if s.stable == nil {
		return
	}
	for k, r := range s.Recs {
		if r.Collectable(nowMS, s.stable) {
			delete(s.Recs, k)
			s.Collected++
		}
	}
}

func (s *Store) LastContact() time.Time { return s.lastContact }

func (s *Store) SetLastContact(_ context.Context, t time.Time) error {
	s.lastContact = t
	return nil
}

// View returns what a read of the data key shows at nowMS.
func (s *Store) View(key string, nowMS int64) crdt.View {
	return s.Recs[key].Read(nowMS)
}

// Digest is store.Digest's hash over the live data at nowMS.
func (s *Store) Digest(nowMS int64) string {
	h := sha256.New()
	var buf []byte
	for _, k := range s.Keys(nil) {
		v := s.Recs[k].Read(nowMS)
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

func (s *Store) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "store %s applied=%s logs:", s.self, s.applied)
	for _, e := range s.applied {
		if l := s.logs[e.Node]; l != nil {
			fmt.Fprintf(&sb, " %s:[%d,+%d)", e.Node, l.first, len(l.entries))
		}
	}
	return sb.String()
}
