package store

import (
	"context"
	"sync/atomic"

	"github.com/upu/upu/crdt"
)

// WriteOp says what a local write does.
type WriteOp uint8

const (
	OpSet  WriteOp = iota + 1 // write Value with Expiry
	OpDel                     // write a tombstone
	OpIncr                    // add Delta to the key's counter
	// OpExpire sets the visible value's expiry to Expiry (0: none), or
	// deletes it when Expiry is already past. A key with nothing visible is
	// left alone (Result.Skipped).
	OpExpire
	// OpAppend appends Value to the visible value (a counter's decimal
	// text), keeping its expiry; on a key with nothing visible it writes
	// Value. Result.Counter is the new length.
	OpAppend
)

// Cond makes a write conditional on the key's visible value on this
// replica, judged inside the writer so that the check and the write are
// atomic on this node (never across replicas). Conditions combine: every
// one set must hold. A write whose condition fails writes nothing and
// returns Result.Skipped.
type Cond uint8

const (
	CondNone    Cond = 0
	CondAbsent  Cond = 1 << (iota - 1) // nothing visible (SET NX)
	CondPresent                        // a visible value (SET XX; DEL of a key that exists)
	// The rest need a visible value too.
	CondNoExpiry      // without expiry (EXPIRE NX)
	CondHasExpiry     // with an expiry (EXPIRE XX, PERSIST)
	CondLaterExpiry   // whose expiry is before Write.Expiry; none counts as never (EXPIRE GT)
	CondEarlierExpiry // whose expiry is after Write.Expiry, or never (EXPIRE LT)
)

// Write is one local write from a client. The store keeps no reference to
// Key or Value after the call returns.
type Write struct {
	Op     WriteOp
	Key    []byte
	Value  []byte // OpSet
	Expiry int64  // OpSet: absolute Unix ms; 0: never
	Delta  int64  // OpIncr
	ReqID  string // travels in the log entry
	// Context is the causal context the client read; nil supersedes
	// everything this node has seen of the key. Used by OpSet and OpDel.
	// Like all crdt values it is immutable: the store may keep it.
	Context *crdt.Context

	// Cond, when set, makes the write conditional (see Cond).
	Cond Cond
	// KeepTTL makes OpSet keep the visible value's expiry (Expiry is
	// ignored); with nothing visible the value gets none.
	KeepTTL bool
	// WantOld asks for the value visible before the write in Result.Old.
	WantOld bool
	// System addresses the system keyspace (see system.go) instead of the
	// data: OpSet and OpDel only. No data command sets it.
	System bool
}

// Result is the outcome of one Write.
type Result struct {
	// Context is the key's causal context after the write: the token for
	// a following write.
	Context crdt.Context
	// Counter is OpIncr's new value; for OpDel, 1 when a visible value was
	// deleted and 0 otherwise; for OpAppend, the new length.
	Counter int64
	// Old is the value visible before the write (a counter's decimal
	// text), when Write.WantOld asked for it; OldFound says whether there
	// was one. Old must not be modified.
	Old      []byte
	OldFound bool
	// Skipped reports that the write's condition failed (or that OpExpire
	// found nothing visible): nothing was written.
	Skipped bool
	Err     error
}

// Request plumbing. A caller queues a request and waits for the writer's
// answer. A request the writer has not taken yet can be withdrawn when the
// caller's context ends; once taken, the caller waits, because the writer
// reads the caller's buffers and writes its results.

type reqKind uint8

const (
	reqLocal reqKind = iota
	reqRemote
	reqMerge
	reqPurge
	reqTrim
	reqRaise
	reqGC
	reqContact
)

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

type request struct {
	kind      reqKind
	state     atomic.Int32
	writes    []Write       // reqLocal
	results   []Result      // reqLocal
	entries   []LogEntry    // reqRemote
	records   []KeyRecord   // reqMerge
	indexKeys [][]byte      // reqPurge: 'x' keys; reqGC: 'd' keys
	nowMS     int64         // reqPurge
	ret       retention     // reqTrim: the holders' acknowledgements
	contactMS int64         // reqContact
	done      chan struct{} // buffered: the writer never blocks answering

	// reqRaise: what to raise applied to; reqMerge: the peer's seen vector;
	// reqGC: the stable vector.
	vv crdt.VersionVector

	// Answers other than results.
	committed int  // ops committed (remote: entries merged)
	more      bool // reqTrim: more to trim
	err       error

	one    [1]Write // Apply's write and result, to avoid allocating
	oneRes [1]Result
	oneRec [1]KeyRecord // MergeRecord's
}

func (r *request) ops() int {
	switch r.kind {
	case reqLocal:
		return len(r.writes)
	case reqRemote:
		return len(r.entries)
	case reqMerge:
		return len(r.records)
	case reqPurge, reqGC:
		return len(r.indexKeys)
	}
	return 1
}

func (s *Store) getRequest(kind reqKind) *request {
	r := s.reqPool.Get().(*request)
	r.kind = kind
	r.state.Store(reqQueued)
	return r
}

// putRequest returns an answered request to the pool, dropping references
// to callers' data.
func (s *Store) putRequest(r *request) {
	done := r.done
	*r = request{done: done}
	s.reqPool.Put(r)
}

// do queues r and waits for its answer. On an error, r was not applied and
// must not be reused (the writer may still hold it).
func (s *Store) do(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return ctx.Err()
		}
		<-r.done // taken: the answer is on its way
		return nil
	case <-s.writerDone:
		// The writer answers everything it took before it exits.
		select {
		case <-r.done:
			return nil
		default:
			return ErrClosed
		}
	}
}

// Apply applies one local write and returns its result once committed.
func (s *Store) Apply(ctx context.Context, w Write) Result {
	r := s.getRequest(reqLocal)
	r.one[0] = w
	r.writes, r.results = r.one[:], r.oneRes[:]
	if err := s.do(ctx, r); err != nil {
		return Result{Err: err}
	}
	res := r.oneRes[0]
	s.putRequest(r)
	return res
}

// ApplyBatch applies a pipeline's writes in order, in one round trip to the
// writer; out[i] receives ws[i]'s result. out must be at least as long as ws.
func (s *Store) ApplyBatch(ctx context.Context, ws []Write, out []Result) {
	if len(ws) == 0 {
		return
	}
	out = out[:len(ws)]
	r := s.getRequest(reqLocal)
	r.writes, r.results = ws, out
	if err := s.do(ctx, r); err != nil {
		for i := range out {
			out[i] = Result{Err: err}
		}
		return
	}
	s.putRequest(r)
}

// ApplyRemote applies log entries received from peers, in order. An entry
// already applied (Seq <= Applied()[Origin]) is skipped; one that would
// leave a gap is not applied (the applied vector stays a contiguous prefix;
// the sender re-sends). It returns how many entries were merged; on an
// error, those were committed and the rest were not.
func (s *Store) ApplyRemote(ctx context.Context, entries []LogEntry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	r := s.getRequest(reqRemote)
	r.entries = entries
	if err := s.do(ctx, r); err != nil {
		return 0, err
	}
	n, err := r.committed, r.err
	s.putRequest(r)
	return n, err
}

// KeyRecord is one key's whole record, as MergeRecords takes them.
type KeyRecord struct {
	Key    []byte
	Record crdt.Record
	// System says Key is a system key (see system.go).
	System bool
}

// MergeRecord merges a whole record of a peer into the key's (anti-entropy,
// snapshot transfer). seen is the peer's applied vector when it read the
// record (nil: unknown): whatever it covers that the record does not hold,
// the peer saw superseded, so this store drops it too (crdt.MergeSeen); a
// zero record with a seen vector so drops what the peer no longer has at
// all. The store's own applied vector works the same way against the
// record. It writes no log entry. A record with System set merges into the
// system keyspace.
func (s *Store) MergeRecord(ctx context.Context, key []byte, rec crdt.Record, seen crdt.VersionVector) error {
	r := s.getRequest(reqMerge)
	r.oneRec[0] = KeyRecord{Key: key, Record: rec}
	r.records = r.oneRec[:]
	return s.merge(ctx, r, seen)
}

// MergeRecords is MergeRecord for many records read under one seen vector,
// in one round trip to the writer: they commit together, in as few
// transactions as fit. A record that changes nothing costs no write. On an
// error (the first one is returned) the other records may have been merged;
// merging again is harmless. The store keeps no reference to the keys or the
// entries' values after the call.
func (s *Store) MergeRecords(ctx context.Context, recs []KeyRecord, seen crdt.VersionVector) error {
	if len(recs) == 0 {
		return nil
	}
	r := s.getRequest(reqMerge)
	r.records = recs
	return s.merge(ctx, r, seen)
}

func (s *Store) merge(ctx context.Context, r *request, seen crdt.VersionVector) error {
	r.vv = seen
	if err := s.do(ctx, r); err != nil {
		return err
	}
	err := r.err
	s.putRequest(r)
	return err
}
