package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
)

// The system keyspace holds the domain's own settings (such as its parent,
// for the cascade), apart from the data: records under their own Badger
// prefix, which Read, Scan, Digest and Stats never look at, so no data
// command can see or address them. They are written like data (Write.System)
// through the same writer and log, so every member gets them by the ring,
// and BucketDigests covers them, so a digest sync repairs them. A system key
// is a register: OpSet and OpDel only, no expiry or conditions, and the
// write with the latest HLC timestamp wins. Settings are few, so their
// tombstones are kept: no index entries, no tombstone GC.

// ReadSystem returns what a read of the system key shows now, and its
// record; ErrNotFound, with the record, when nothing is visible.
func (s *Store) ReadSystem(key []byte) (crdt.View, crdt.Record, error) {
	return s.visible(s.get(appendSystemKey, key))
}

// ScanSystem calls fn for every system record (tombstones included), in
// key order, until fn returns false or ctx ends. fn may keep key and r.
func (s *Store) ScanSystem(ctx context.Context, fn func(key []byte, r crdt.Record) bool) error {
	return s.scan(ctx, appendSystemKey, nil, 0, fn)
}

func getSystemRecord(txn *badger.Txn, key []byte) (crdt.Record, error) {
	return getStored(txn, appendSystemKey, key)
}

// systemFingerprintKey is the key a system record is fingerprinted under in
// BucketDigests (it is bucketed by its own key): apart from a data record of
// the same name, whose fingerprint would otherwise cancel it out.
func systemFingerprintKey(dst, key []byte) []byte {
	return append(append(dst, "\x00upu-system\x00"...), key...)
}

// checkSystemWrite bounds a system write by what the store can hold, not
// by the configured limits, which are the clients': a small
// --max-value-size must not stop a node from keeping its own settings.
func (s *Store) checkSystemWrite(wr *Write) error {
	switch {
	case wr.Op != OpSet && wr.Op != OpDel:
		return fmt.Errorf("%w: system keys take set and delete only, not op %d", ErrBadRequest, wr.Op)
	case wr.Expiry != 0 || wr.KeepTTL || wr.Cond != CondNone:
		return fmt.Errorf("%w: system keys take no expiry or condition", ErrBadRequest)
	case len(wr.Key) == 0:
		return fmt.Errorf("%w: empty key", ErrBadRequest)
	case len(wr.Key) > MaxKeySizeLimit:
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(wr.Key), MaxKeySizeLimit)
	case len(wr.Value) > MaxValueSizeLimit:
		return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(wr.Value), MaxValueSizeLimit)
	}
	return nil
}

// buildSystemLocal is buildLocal for a system key.
func (w *writer) buildSystemLocal(wr *Write, res *Result) (effect, error) {
	if err := w.s.checkSystemWrite(wr); err != nil {
		return effect{}, err
	}
	old, err := w.getSystem(wr.Key)
	if err != nil {
		return effect{}, err
	}
	*res = Result{}
	view := old.Read(w.now)
	if wr.WantOld && view.Found {
		res.Old, res.OldFound = view.Value, true
	}
	ts := w.s.hlc.Now(w.now)
	seq := w.pending.applied(w.s.self) + 1
	op := crdt.Op{Node: w.s.self, TS: ts, Seq: seq, Context: wr.Context}
	var delta crdt.Record
	if wr.Op == OpSet {
		delta = old.Set(op, bytes.Clone(wr.Value), 0)
	} else {
		if view.Found {
			res.Counter = 1
		}
		delta = old.Delete(op)
	}
	merged := crdt.Apply(old, crdt.Incoming{Record: delta, Origin: w.s.self, Seq: seq}, w.pending.versionVector)
	w.putSystem(wr.Key, merged)
	w.putLog(seq, wr.Key, delta, wr.ReqID, ts, true)
	w.touchOrigin(w.s.self)
	res.Context = merged.Context
	return effect{origin: w.s.self, seq: seq}, nil
}

// buildSystemRemote is buildRemote for a peer's system entry.
func (w *writer) buildSystemRemote(e *LogEntry) (effect, error) {
	if len(e.Key) == 0 || len(e.Key) > MaxKeySizeLimit {
		return effect{}, fmt.Errorf("%w: system log entry %s:%d has a key of %d bytes", ErrBadRequest, e.Origin, e.Seq, len(e.Key))
	}
	old, err := w.getSystem(e.Key)
	if err != nil {
		return effect{}, err
	}
	delta, err := e.Record()
	if err != nil {
		return effect{}, fmt.Errorf("%w: system log entry %s:%d: %w", ErrBadRequest, e.Origin, e.Seq, err)
	}
	w.s.hlc.Observe(e.TS)
	merged := crdt.Apply(old, crdt.Incoming{Record: ownValues(delta), Origin: e.Origin, Seq: e.Seq}, w.pending.versionVector)
	w.putSystem(e.Key, merged)
	w.putRemoteLog(e)
	w.touchOrigin(e.Origin)
	return effect{origin: e.Origin, seq: e.Seq}, nil
}

// buildSystemMerge is buildMerge for a peer's whole system record.
func (w *writer) buildSystemMerge(key []byte, rec crdt.Record, seen crdt.VersionVector) (effect, error) {
	if len(key) == 0 || len(key) > MaxKeySizeLimit {
		return effect{}, fmt.Errorf("%w: system key of %d bytes", ErrBadRequest, len(key))
	}
	old, err := w.getSystem(key)
	if err != nil {
		return effect{}, err
	}
	w.s.hlc.Observe(rec.LastWrite())
	merged := crdt.Apply(old, crdt.Incoming{Record: ownValues(rec), Seen: seen}, w.pending.versionVector)
	w.scratch = crdt.AppendRecord(w.scratch[:0], old)
	n := len(w.scratch)
	w.scratch = crdt.AppendRecord(w.scratch, merged)
	if bytes.Equal(w.scratch[:n], w.scratch[n:]) {
		return effect{noop: true}, nil
	}
	w.putSystem(key, merged)
	return effect{}, nil
}

// getSystem returns the system key's record as staged in the open
// transaction (zero when there is none). System records bypass the record
// cache: they are few and rarely written.
func (w *writer) getSystem(key []byte) (crdt.Record, error) {
	if rec, ok := w.sysOverlay[string(key)]; ok {
		return rec, nil
	}
	rec, err := getSystemRecord(w.txn, key)
	if errors.Is(err, ErrNotFound) {
		return crdt.Record{}, nil
	}
	return rec, err
}

// putSystem stages the system key's record. It reaches the overlay with
// the operation's other writes (opSys), once they are all set.
func (w *writer) putSystem(key []byte, rec crdt.Record) {
	start := len(w.arena)
	w.arena = appendSystemKey(w.arena, key)
	k := w.since(start)
	start = len(w.arena)
	w.arena = crdt.AppendRecord(w.arena, rec)
	w.items = append(w.items, item{key: k, val: w.since(start)})
	w.opSys = append(w.opSys, opRecord{key: key, overlayRecord: overlayRecord{rec: rec}})
}
