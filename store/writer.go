package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
)

// The writer is the one goroutine that mutates Badger. It drains queued
// requests up to MaxBatch operations, stages each operation in one Badger
// transaction (an operation sees the records earlier ones staged, through
// the overlay), commits once and answers every request.
//
// Each operation's Badger writes are first built as items in an arena (the
// bytes must live until commit), then set in the transaction. When a set
// fails part-way (ErrTxnTooBig above all), the transaction is rebuilt from
// the earlier operations' items, committed, and the operation is built again
// in a fresh transaction.
type writer struct {
	s     *Store
	batch []*request
	now   int64 // Unix ms, read once per batch

	txn     *badger.Txn
	ops     []opRef    // operations staged in txn
	items   []item     // their Badger writes, in order
	slots   []metaSlot // meta values filled in at commit
	arena   []byte     // backing bytes of items until commit
	scratch []byte     // encoded records being read or compared
	keyBuf  []byte

	// Records: as committed (cache), as staged in txn (overlay), and as
	// staged by the operation being built (opRecs, moved to the overlay once
	// its writes are set).
	cache   *recordCache // the store's
	overlay map[string]overlayRecord
	opRecs  []opRecord
	// The same for system records (system.go), which have no cache.
	sysOverlay map[string]crdt.Record
	opSys      []opRecord

	committed, pending state
	vvDirty            bool // pending.applied differs from what was published
	trimChunk          int64

	// The dead-record counters' changes: the operation's being built, and
	// the open transaction's, published once it commits.
	opGC, pendingGC gcCounts
}

type overlayRecord struct {
	rec     crdt.Record
	deleted bool
	dead    deadMark
}

type opRecord struct {
	key []byte
	overlayRecord
}

// opRef names one operation of a request.
type opRef struct {
	req    *request
	i      int         // index into the request's writes, entries, index keys or vector
	origin crdt.NodeID // reqTrim: whose log
}

type item struct {
	key, val []byte
	del      bool
}

// metaSlot is an 8-byte meta value (an origin's applied counter, or the HLC
// mark) staged when an operation first needs it and filled in just before
// commit, so that a commit writes each once rather than once per operation.
// Badger reads values only at commit, so filling the staged bytes late is
// safe.
type metaSlot struct {
	origin crdt.NodeID
	hlc    bool
	val    []byte
}

// effect is an operation's change to the writer's state, applied once its
// writes are staged.
type effect struct {
	origin crdt.NodeID
	seq    uint64 // a log entry (origin, seq) was appended
	trimN  int64  // entries trimmed from the front of origin's log
	forced int64  // of those, entries some holder still held
	raise  uint64 // applied[origin] raised to this (its log is empty)
	noop   bool   // nothing was staged: a conditional write was skipped
}

// maxArena bounds the arena kept between commits.
const maxArena = 8 << 20

func newWriter(s *Store, st state) *writer {
	w := &writer{
		s:         s,
		trimChunk: min(1024, s.db.MaxBatchCount()/2),
		cache:     s.cache,
		overlay:   make(map[string]overlayRecord),

		sysOverlay: make(map[string]crdt.Record),
	}
	w.committed.copyFrom(&st)
	w.pending.copyFrom(&st)
	return w
}

func (w *writer) run() {
	defer w.s.wg.Done()
	defer close(w.s.writerDone)
	for {
		select {
		case r := <-w.s.reqs:
			w.collect(r)
		case <-w.s.closing:
			// Apply what was queued before Close; a caller that queues
			// later is answered ErrClosed through writerDone.
			for {
				select {
				case r := <-w.s.reqs:
					w.collect(r)
				default:
					return
				}
			}
		}
	}
}

// collect gathers first and whatever else is queued, up to MaxBatch
// operations, and processes them.
func (w *writer) collect(first *request) {
	n := w.take(first)
fill:
	for n < w.s.cfg.MaxBatch {
		select {
		case r := <-w.s.reqs:
			n += w.take(r)
		default:
			break fill
		}
	}
	w.process()
}

// take adds r to the batch unless its caller withdrew it.
func (w *writer) take(r *request) int {
	if !r.state.CompareAndSwap(reqQueued, reqTaken) {
		return 0
	}
	w.batch = append(w.batch, r)
	return r.ops()
}

func (w *writer) process() {
	if len(w.batch) == 0 {
		return
	}
	w.now = w.s.clk.Now().UnixMilli()
	for _, r := range w.batch {
		switch r.kind {
		case reqLocal:
			for i := range r.writes {
				w.stage(opRef{req: r, i: i})
			}
		case reqRemote:
			for i := range r.entries {
				// Duplicates and entries beyond a gap are skipped.
				if e := &r.entries[i]; e.Seq == w.pending.applied(e.Origin)+1 {
					w.stage(opRef{req: r, i: i})
				}
			}
		case reqMerge:
			for i := range r.records {
				w.stage(opRef{req: r, i: i})
			}
		case reqPurge, reqGC:
			for i := range r.indexKeys {
				w.stage(opRef{req: r, i: i})
			}
		case reqTrim:
			for i := 0; i < len(w.pending.origins); i++ {
				if n, _ := w.trimPlan(&w.pending.origins[i], &r.ret); n > 0 {
					w.stage(opRef{req: r, origin: w.pending.origins[i].node})
				}
			}
		case reqRaise:
			w.stageRaise(r)
		case reqContact:
			w.stage(opRef{req: r})
		}
	}
	w.commit()
	for _, r := range w.batch {
		if r.kind == reqTrim {
			r.more = w.trimDue(&w.committed, &r.ret)
		}
		r.done <- struct{}{}
	}
	clear(w.batch)
	w.batch = w.batch[:0]
}

// stage builds one operation and sets its writes in the transaction.
func (w *writer) stage(ref opRef) {
	for retried := false; ; retried = true {
		if w.txn == nil {
			w.txn = w.s.db.NewTransaction(true)
		}
		w.opRecs, w.opSys = w.opRecs[:0], w.opSys[:0]
		w.opGC = gcCounts{}
		start, slotStart := len(w.items), len(w.slots)
		if start == 0 {
			w.addSlot(metaSlot{hlc: true})
		}
		eff, err := w.build(ref)
		if err == nil && eff.noop {
			// A write whose condition failed: nothing to stage, and no
			// reason to commit.
			w.items, w.slots = w.items[:start], w.slots[:slotStart]
			w.opRecs, w.opSys = w.opRecs[:0], w.opSys[:0]
			return
		}
		if err == nil {
			if err = w.setItems(start); err == nil {
				w.apply(eff)
				w.pendingGC.add(w.opGC)
				w.ops = append(w.ops, ref)
				for _, o := range w.opRecs {
					w.overlay[string(o.key)] = o.overlayRecord
				}
				for _, o := range w.opSys {
					w.sysOverlay[string(o.key)] = o.rec
				}
				w.opRecs, w.opSys = w.opRecs[:0], w.opSys[:0]
				return
			}
			// The transaction holds part of this operation: rebuild it
			// from the earlier ones.
			w.items, w.slots = w.items[:start], w.slots[:slotStart]
			if rerr := w.rebuild(); rerr != nil {
				w.abort(fmt.Errorf("store: rebuild transaction: %w", rerr))
				w.fail(ref, err)
				return
			}
			if errors.Is(err, badger.ErrTxnTooBig) && len(w.ops) > 0 && !retried {
				w.commit() // what fits; then this operation alone
				continue
			}
			err = fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		w.items, w.slots = w.items[:start], w.slots[:slotStart]
		w.fail(ref, err)
		return
	}
}

func (w *writer) build(ref opRef) (effect, error) {
	r := ref.req
	switch r.kind {
	case reqLocal:
		if r.writes[ref.i].System {
			return w.buildSystemLocal(&r.writes[ref.i], &r.results[ref.i])
		}
		return w.buildLocal(&r.writes[ref.i], &r.results[ref.i])
	case reqRemote:
		if r.entries[ref.i].System {
			return w.buildSystemRemote(&r.entries[ref.i])
		}
		return w.buildRemote(&r.entries[ref.i])
	case reqMerge:
		if kr := &r.records[ref.i]; kr.System {
			return w.buildSystemMerge(kr.Key, kr.Record, r.vv)
		}
		return w.buildMerge(r.records[ref.i].Key, r.records[ref.i].Record, r.vv)
	case reqPurge:
		return effect{}, w.buildPurge(r.indexKeys[ref.i], r.nowMS)
	case reqGC:
		return w.buildGC(r.indexKeys[ref.i], r.vv)
	case reqContact:
		w.putContact(r.contactMS)
		return effect{}, nil
	case reqTrim:
		return w.buildTrim(ref.origin, &r.ret), nil
	case reqRaise:
		return w.buildRaise(r.vv[ref.i]), nil
	}
	panic("store: unknown request kind")
}

func (s *Store) checkWrite(wr *Write) error {
	switch {
	case wr.Op < OpSet || wr.Op > OpAppend:
		return fmt.Errorf("%w: unknown op %d", ErrBadRequest, wr.Op)
	case len(wr.Key) == 0:
		return fmt.Errorf("%w: empty key", ErrBadRequest)
	case len(wr.Key) > s.cfg.MaxKeySize:
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(wr.Key), s.cfg.MaxKeySize)
	case len(wr.Value) > s.cfg.MaxValueSize:
		return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(wr.Value), s.cfg.MaxValueSize)
	case wr.Expiry < 0:
		return fmt.Errorf("%w: negative expiry", ErrBadRequest)
	}
	return nil
}

func (w *writer) buildLocal(wr *Write, res *Result) (effect, error) {
	if err := w.s.checkWrite(wr); err != nil {
		return effect{}, err
	}
	old, found, err := w.get(wr.Key)
	if err != nil {
		return effect{}, err
	}
	// The visible value, for the ops and options that depend on it (a
	// counter's view allocates its decimal text, so only then).
	var view crdt.View
	if wr.Cond != CondNone || wr.WantOld || wr.KeepTTL || wr.Op >= OpDel && wr.Op != OpIncr {
		view = old.Read(w.now)
	}
	*res = Result{}
	if wr.WantOld && view.Found {
		res.Old, res.OldFound = view.Value, true
	}
	if !condMet(wr, view) || wr.Op == OpExpire && !view.Found {
		res.Context, res.Skipped = old.Context, true
		return effect{noop: true}, nil
	}
	ts := w.s.hlc.Now(w.now)
	// The write's log sequence number is also its dot's counter (see
	// crdt.Op).
	seq := w.pending.applied(w.s.self) + 1
	op := crdt.Op{Node: w.s.self, TS: ts, Seq: seq, Context: wr.Context}
	var delta crdt.Record
	switch wr.Op {
	case OpSet:
		expiry := wr.Expiry
		if wr.KeepTTL {
			expiry = view.Expiry
		}
		// The record outlives the call (record cache): own the value.
		delta = old.Set(op, bytes.Clone(wr.Value), expiry)
	case OpDel:
		if view.Found {
			res.Counter = 1
		}
		delta = old.Delete(op)
	case OpIncr:
		if delta, res.Counter, err = old.Incr(op, wr.Delta, w.now); err != nil {
			*res = Result{}
			return effect{}, err
		}
	case OpExpire:
		delta = expireDelta(old, view, crdt.Op{Node: w.s.self, TS: ts, Seq: seq}, wr.Expiry, w.now)
	case OpAppend:
		n := len(view.Value) + len(wr.Value)
		if n > w.s.cfg.MaxValueSize {
			*res = Result{}
			return effect{}, fmt.Errorf("%w: value of %d bytes after append, limit %d", ErrTooLarge, n, w.s.cfg.MaxValueSize)
		}
		v := make([]byte, 0, n)
		v = append(append(v, view.Value...), wr.Value...)
		delta = old.Set(crdt.Op{Node: w.s.self, TS: ts, Seq: seq}, v, view.Expiry)
		res.Counter = int64(n)
	}
	merged := crdt.Apply(old, crdt.Incoming{Record: delta, Origin: w.s.self, Seq: seq}, w.pending.versionVector)
	dead, err := w.markDead(wr.Key, old, found, merged, w.now)
	if err != nil {
		*res = Result{}
		return effect{}, err
	}
	w.putRecord(wr.Key, merged, found, dead)
	w.putLog(seq, wr.Key, delta, wr.ReqID, ts, false)
	w.reindex(wr.Key, old, found, merged)
	w.touchOrigin(w.s.self)
	res.Context = merged.Context
	return effect{origin: w.s.self, seq: seq}, nil
}

// condMet judges a write's condition against the visible value.
func condMet(wr *Write, v crdt.View) bool {
	c := wr.Cond
	switch {
	case c == CondNone:
		return true
	case c&CondAbsent != 0:
		return !v.Found
	case !v.Found:
		return false
	}
	return (c&CondNoExpiry == 0 || v.Expiry == 0) &&
		(c&CondHasExpiry == 0 || v.Expiry != 0) &&
		(c&CondLaterExpiry == 0 || v.Expiry != 0 && wr.Expiry > v.Expiry) &&
		(c&CondEarlierExpiry == 0 || v.Expiry == 0 || wr.Expiry < v.Expiry)
}

// expireDelta returns the delta that gives old's visible value the expiry
// (0: none), or deletes it when expiry is already past at nowMS.
//
// A register value is written again, under a new dot, with the new expiry.
// A counter cannot be: its value is the sum of every node's count entry, and
// a new entry holding the sum would count twice the increments that another
// node folds concurrently into an entry of its own. So each live count and
// base entry is rewritten in place, same dot and totals, with the new expiry
// and the operation's later timestamp, which is what crdt.Merge keeps when
// it meets two versions of one dot. The delta carries the record's other
// entries too, unchanged, its whole context and its resets, so that it is
// this node's whole state of the key: a replica that merges it drops exactly
// what this node had seen superseded, and no count is ever dropped, doubled
// or brought back. An increment made concurrently elsewhere keeps the expiry
// it was written with.
func expireDelta(old crdt.Record, view crdt.View, op crdt.Op, expiry, nowMS int64) crdt.Record {
	switch {
	case expiry != 0 && expiry <= nowMS:
		return old.Delete(op)
	case view.Kind != crdt.KindCount:
		return old.Set(op, view.Value, expiry)
	}
	entries := make([]crdt.Entry, len(old.Entries))
	for i, e := range old.Entries {
		if e.Counts() && e.Live(nowMS) {
			e.Expiry, e.TS = expiry, op.TS
		}
		entries[i] = e
	}
	return crdt.Record{Entries: entries, Context: old.Context, Resets: old.Resets}
}

func (w *writer) buildRemote(e *LogEntry) (effect, error) {
	if len(e.Key) == 0 || len(e.Key) > MaxKeySizeLimit {
		return effect{}, fmt.Errorf("%w: log entry %s:%d has a key of %d bytes", ErrBadRequest, e.Origin, e.Seq, len(e.Key))
	}
	old, found, err := w.get(e.Key)
	if err != nil {
		return effect{}, err
	}
	// The one decode of the delta on this hop: the log keeps the bytes.
	delta, err := e.Record()
	if err != nil {
		return effect{}, fmt.Errorf("%w: log entry %s:%d: %w", ErrBadRequest, e.Origin, e.Seq, err)
	}
	w.s.hlc.Observe(e.TS)
	merged := crdt.Apply(old, crdt.Incoming{Record: ownValues(delta), Origin: e.Origin, Seq: e.Seq}, w.pending.versionVector)
	dead, err := w.markDead(e.Key, old, found, merged, w.now)
	if err != nil {
		return effect{}, err
	}
	w.putRecord(e.Key, merged, found, dead)
	w.putRemoteLog(e)
	w.reindex(e.Key, old, found, merged)
	w.touchOrigin(e.Origin)
	return effect{origin: e.Origin, seq: e.Seq}, nil
}

func (w *writer) buildMerge(key []byte, rec crdt.Record, seen crdt.VersionVector) (effect, error) {
	if len(key) == 0 || len(key) > MaxKeySizeLimit {
		return effect{}, fmt.Errorf("%w: key of %d bytes", ErrBadRequest, len(key))
	}
	old, found, err := w.get(key)
	if err != nil {
		return effect{}, err
	}
	w.s.hlc.Observe(rec.LastWrite())
	merged := crdt.Apply(old, crdt.Incoming{Record: ownValues(rec), Seen: seen}, w.pending.versionVector)
	// Anti-entropy mostly merges what is already here: skip the write then
	// (and the commit, when nothing else changed).
	if found {
		w.scratch = crdt.AppendRecord(w.scratch[:0], old)
		n := len(w.scratch)
		w.scratch = crdt.AppendRecord(w.scratch, merged)
		if bytes.Equal(w.scratch[:n], w.scratch[n:]) {
			return effect{noop: true}, nil
		}
	} else if len(merged.Entries) == 0 && merged.Context.IsZero() {
		return effect{noop: true}, nil
	}
	dead, err := w.markDead(key, old, found, merged, w.now)
	if err != nil {
		return effect{}, err
	}
	w.putRecord(key, merged, found, dead)
	w.reindex(key, old, found, merged)
	return effect{}, nil
}

// buildPurge handles one index entry: drop it, purge the key's expired
// entries, delete the record once it is dead past the tombstone horizon,
// otherwise index the key again at its next due time.
func (w *writer) buildPurge(indexKey []byte, nowMS int64) error {
	w.items = append(w.items, item{key: indexKey, del: true})
	_, key, ok := parseIndexKey(indexKey)
	if !ok {
		return nil
	}
	old, found, err := w.get(key)
	if err != nil || !found {
		return err
	}
	if old.PastHorizon(nowMS, w.s.horizonMS) {
		if err := w.unmarkDead(key); err != nil {
			return err
		}
		w.deleteRecord(key)
		w.opGC.droppedHorizon++
		return nil
	}
	p, changed := old.PurgeKeepingLastWrite(nowMS)
	// Also when unchanged: a record that died by expiring since it was
	// staged enters the dead index here.
	dead, err := w.markDead(key, old, found, p, nowMS)
	if err != nil {
		return err
	}
	if changed {
		w.putRecord(key, p, true, dead)
	} else {
		w.opRecs = append(w.opRecs, opRecord{key: key, overlayRecord: overlayRecord{rec: old, dead: dead}})
	}
	if d := w.s.due(p, nowMS); d != 0 {
		w.putIndex(d, key)
	}
	return nil
}

func (w *writer) buildTrim(origin crdt.NodeID, r *retention) effect {
	o := w.pending.origin(origin)
	due, held := w.trimPlan(o, r)
	n := min(due, w.trimChunk)
	// The acknowledged entries come first; this chunk reaches into the held
	// ones past them, if at all.
	forced := max(0, n-(due-held))
	for seq := o.logFirst; seq < o.logFirst+uint64(n); seq++ {
		start := len(w.arena)
		w.arena = appendLogKey(w.arena, origin, seq)
		w.items = append(w.items, item{key: w.since(start), del: true})
	}
	return effect{origin: origin, trimN: n, forced: forced}
}

// get returns key's record as staged in the open transaction.
func (w *writer) get(key []byte) (crdt.Record, bool, error) {
	if o, ok := w.overlay[string(key)]; ok {
		return o.rec, !o.deleted, nil
	}
	if rec, ok := w.cache.get(key); ok {
		return rec, true, nil
	}
	w.keyBuf = appendRecordKey(w.keyBuf[:0], key)
	item, err := w.txn.Get(w.keyBuf)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return crdt.Record{}, false, nil
	}
	if err == nil {
		w.scratch, err = item.ValueCopy(w.scratch[:0])
	}
	if err != nil {
		return crdt.Record{}, false, fmt.Errorf("store: read %q: %w", key, err)
	}
	rec, err := crdt.UnmarshalRecord(w.scratch)
	if err != nil {
		w.s.log.WithError(err).WithField("key", fmt.Sprintf("%q", key)).WithField(logging.FieldEvent, logging.EventCorruptRecord).Error("corrupt record")
		return crdt.Record{}, false, fmt.Errorf("store: key %q: %w", key, err)
	}
	// Not in the overlay, so this is the committed record.
	w.cache.put(string(key), rec, deadUnknown)
	return rec, true, nil
}

// since returns what was appended to the arena from start on.
func (w *writer) since(start int) []byte {
	return w.arena[start:len(w.arena):len(w.arena)]
}

// deleteRecord stages the deletion of key's record, which exists.
func (w *writer) deleteRecord(key []byte) {
	w.opGC.records--
	start := len(w.arena)
	w.arena = appendRecordKey(w.arena, key)
	w.items = append(w.items, item{key: w.since(start), del: true})
	w.opRecs = append(w.opRecs, opRecord{key: key, overlayRecord: overlayRecord{deleted: true}})
}

// putRecord stages key's record, which found says existed before; dead
// says whether the key now has a dead-index entry (markDead).
func (w *writer) putRecord(key []byte, rec crdt.Record, found bool, dead deadMark) {
	if !found {
		w.opGC.records++
	}
	start := len(w.arena)
	w.arena = appendRecordKey(w.arena, key)
	k := w.since(start)
	start = len(w.arena)
	w.arena = crdt.AppendRecord(w.arena, rec)
	w.items = append(w.items, item{key: k, val: w.since(start)})
	w.opRecs = append(w.opRecs, opRecord{key: key, overlayRecord: overlayRecord{rec: rec, dead: dead}})
}

// putLog stages this node's log entry seq, encoding its delta.
func (w *writer) putLog(seq uint64, key []byte, delta crdt.Record, reqID string, ts crdt.Timestamp, system bool) {
	start := len(w.arena)
	w.arena = appendLogKey(w.arena, w.s.self, seq)
	k := w.since(start)
	start = len(w.arena)
	w.arena = crdt.AppendRecord(appendLogHead(w.arena, key, reqID, ts, system), delta)
	w.items = append(w.items, item{key: k, val: w.since(start)})
}

// putRemoteLog stages a peer's log entry with its delta as it came: the
// encoding its origin made.
func (w *writer) putRemoteLog(e *LogEntry) {
	start := len(w.arena)
	w.arena = appendLogKey(w.arena, e.Origin, e.Seq)
	k := w.since(start)
	start = len(w.arena)
	w.arena = append(appendLogHead(w.arena, e.Key, e.ReqID, e.TS, e.System), e.Delta...)
	w.items = append(w.items, item{key: k, val: w.since(start)})
}

func (w *writer) putIndex(ms int64, key []byte) {
	start := len(w.arena)
	w.arena = appendIndexKey(w.arena, ms, key)
	w.items = append(w.items, item{key: w.since(start)})
}

// reindex keeps the index invariant after a write: a record with something
// due (an expiry, or a dead record's horizon) has an index entry at or before
// that time. If the old record's entry comes no later, it will do: when it
// fires, the purger indexes the key again.
func (w *writer) reindex(key []byte, old crdt.Record, found bool, merged crdt.Record) {
	d := w.s.due(merged, w.now)
	if d == 0 {
		return
	}
	if found {
		if d0 := w.s.due(old, w.now); d0 != 0 && d0 <= d {
			return
		}
	}
	w.putIndex(d, key)
}

// touchOrigin makes sure the transaction writes origin's applied counter.
func (w *writer) touchOrigin(origin crdt.NodeID) {
	for i := range w.slots {
		if !w.slots[i].hlc && w.slots[i].origin == origin {
			return
		}
	}
	w.addSlot(metaSlot{origin: origin})
}

func (w *writer) addSlot(sl metaSlot) {
	start := len(w.arena)
	w.arena = append(w.arena, make([]byte, 8)...)
	sl.val = w.since(start)
	key := hlcKey
	if !sl.hlc {
		start = len(w.arena)
		w.arena = appendAppliedKey(w.arena, sl.origin)
		key = w.since(start)
	}
	w.slots = append(w.slots, sl)
	w.items = append(w.items, item{key: key, val: sl.val})
}

func (w *writer) setItems(from int) error {
	for i := from; i < len(w.items); i++ {
		it := &w.items[i]
		var err error
		if it.del {
			err = w.txn.Delete(it.key)
		} else {
			err = w.txn.Set(it.key, it.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) rebuild() error {
	w.txn.Discard()
	w.txn = w.s.db.NewTransaction(true)
	return w.setItems(0)
}

func (w *writer) apply(e effect) {
	if e.seq != 0 {
		o := w.pending.origin(e.origin)
		o.applied = e.seq
		if o.logCount == 0 {
			o.logFirst = e.seq
		}
		o.logCount++
		w.pending.logLen++
		w.vvDirty = true
	}
	if e.trimN != 0 {
		o := w.pending.origin(e.origin)
		o.logFirst += uint64(e.trimN)
		o.logCount -= e.trimN
		w.pending.logLen -= e.trimN
		w.pending.forcedTrims += uint64(e.forced)
	}
	if e.raise != 0 {
		w.pending.origin(e.origin).applied = e.raise
		w.vvDirty = true
	}
}

// fail records err as the outcome of one operation.
func (w *writer) fail(ref opRef, err error) {
	r := ref.req
	if r.kind == reqLocal {
		r.results[ref.i] = Result{Err: err}
		return
	}
	if r.err == nil {
		r.err = err
	}
}

// commit commits the open transaction. Its operations succeed or fail
// together; none is acknowledged before the commit returned.
func (w *writer) commit() {
	if w.txn == nil {
		return
	}
	if len(w.ops) == 0 {
		w.txn.Discard()
		w.txn = nil
		w.reset()
		return
	}
	for _, sl := range w.slots {
		v := uint64(w.s.hlc.Last())
		if !sl.hlc {
			v = w.pending.applied(sl.origin)
		}
		binary.BigEndian.PutUint64(sl.val, v)
	}
	err := w.s.commitTxn(w.txn)
	w.txn = nil
	if err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		w.s.log.WithError(err).WithField("ops", len(w.ops)).WithField(logging.FieldEvent, logging.EventStoreError).Error("commit failed")
		for _, ref := range w.ops {
			w.fail(ref, err)
		}
		w.pending.copyFrom(&w.committed)
		w.reset()
		return
	}
	for k, o := range w.overlay {
		if o.deleted {
			w.cache.remove(k)
		} else {
			w.cache.put(k, o.rec, o.dead)
		}
	}
	for _, ref := range w.ops {
		if ref.req.kind == reqLocal {
			continue
		}
		ref.req.committed++
		if ref.req.kind == reqContact {
			w.s.lastContact.Store(ref.req.contactMS)
		}
	}
	w.s.publishGC(&w.pendingGC)
	w.committed.copyFrom(&w.pending)
	if w.vvDirty {
		w.s.publish(&w.committed)
		w.vvDirty = false
		w.s.feeds.wake()
	} else {
		w.s.logLen.Store(w.committed.logLen)
		w.s.forcedTrims.Store(w.committed.forcedTrims)
	}
	if w.committed.overLog(w.s.cfg.MaxLogEntries) {
		w.s.kickTrim()
	}
	w.reset()
}

// abort discards the open transaction and fails its operations.
func (w *writer) abort(err error) {
	w.txn.Discard()
	w.txn = nil
	w.s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Error("transaction aborted")
	for _, ref := range w.ops {
		w.fail(ref, err)
	}
	w.pending.copyFrom(&w.committed)
	w.reset()
}

func (w *writer) reset() {
	clear(w.overlay)
	clear(w.sysOverlay)
	w.pendingGC = gcCounts{}
	w.ops = w.ops[:0]
	clear(w.items) // drop references to callers' buffers
	w.items = w.items[:0]
	w.slots = w.slots[:0]
	if cap(w.arena) > maxArena {
		w.arena = nil
	}
	w.arena = w.arena[:0]
	if cap(w.scratch) > maxArena {
		w.scratch = nil
	}
}
