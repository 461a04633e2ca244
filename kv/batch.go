package kv

import (
	"context"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/store"
)

// Op is what a Write does.
type Op uint8

const (
	OpSet    = Op(store.OpSet)    // write Value with Expiry
	OpDel    = Op(store.OpDel)    // write a tombstone
	OpIncr   = Op(store.OpIncr)   // add Delta to the key's counter
	OpExpire = Op(store.OpExpire) // set the visible value's expiry (0: none)
	OpAppend = Op(store.OpAppend) // append Value to the visible value
)

// Cond makes a write conditional on the key's visible value on this node;
// conditions combine (see store.Cond for each one's meaning).
type Cond uint8

const (
	CondNone          = Cond(store.CondNone)
	CondAbsent        = Cond(store.CondAbsent)        // SET NX
	CondPresent       = Cond(store.CondPresent)       // SET XX, DEL of an existing key
	CondNoExpiry      = Cond(store.CondNoExpiry)      // EXPIRE NX
	CondHasExpiry     = Cond(store.CondHasExpiry)     // EXPIRE XX, PERSIST
	CondLaterExpiry   = Cond(store.CondLaterExpiry)   // EXPIRE GT
	CondEarlierExpiry = Cond(store.CondEarlierExpiry) // EXPIRE LT
)

// Write is one client write. The service keeps no reference to Key or
// Value once its batch is applied.
type Write struct {
	Op     Op
	Key    []byte
	Value  []byte // OpSet, OpAppend
	Expiry int64  // OpSet, OpExpire: absolute Unix ms; 0: never
	Delta  int64  // OpIncr
	ReqID  string // travels in the replication log
	// Context is the causal context the client read (OpSet, OpDel); nil
	// supersedes everything this node has seen of the key.
	Context *crdt.Context
	Cond    Cond
	KeepTTL bool // OpSet keeps the visible value's expiry
	WantOld bool // Result.Old gets the value visible before the write
}

// Result is the outcome of one Write (see store.Result).
type Result struct {
	Context  crdt.Context
	Counter  int64 // OpIncr: new value; OpDel: 1 if a value was deleted; OpAppend: new length
	Old      []byte
	OldFound bool
	Skipped  bool // the condition failed: nothing was written
	Err      error
}

// Batch queues one connection's writes until Apply sends them to the store
// as one commit request. It is not safe for concurrent use; its buffers
// are reused from one Apply to the next.
type Batch struct {
	s       *Service
	proto   Protocol
	writes  []store.Write
	results []store.Result
	out     []Result
	now     time.Time // read once per batch, zero until asked
	reads   uint32    // reads made through the batch, for sampling their latency
}

// readSample is how many of a connection's reads make one latency sample:
// reading the clock twice costs more than a cached read itself.
const readSample = 16

// NewBatch returns an empty batch for one connection of protocol p.
func (s *Service) NewBatch(p Protocol) *Batch { return &Batch{s: s, proto: p} }

// Len is the number of writes queued.
func (b *Batch) Len() int { return len(b.writes) }

// Now is the batch's time: the clock is read once per batch, so every
// relative expiry in it is computed from the same instant.
func (b *Batch) Now() time.Time {
	if b.now.IsZero() {
		b.now = b.s.clk.Now()
	}
	return b.now
}

// ExpiryAfter is the absolute expiry of a TTL in milliseconds counted from
// the batch's time: 0 for none, ErrNegativeTTL below zero.
func (b *Batch) ExpiryAfter(ttlMS int64) (int64, error) {
	switch {
	case ttlMS < 0:
		return 0, ErrNegativeTTL
	case ttlMS == 0:
		return 0, nil
	}
	return b.Now().UnixMilli() + ttlMS, nil
}

// Add checks w against the limits and queues it; a refused write is not
// queued and its error is returned at once (and counted).
func (b *Batch) Add(w Write) error {
	err := b.s.CheckKey(w.Key)
	if err == nil {
		err = b.s.CheckValue(w.Value)
	}
	if err != nil {
		b.s.metrics.observe(b.proto, op(w.Op), err)
		return err
	}
	b.writes = append(b.writes, store.Write{
		Op: store.WriteOp(w.Op), Key: w.Key, Value: w.Value, Expiry: w.Expiry, Delta: w.Delta, ReqID: w.ReqID,
		Context: w.Context, Cond: store.Cond(w.Cond), KeepTTL: w.KeepTTL, WantOld: w.WantOld,
	})
	return nil
}

// Read returns the key's visible value and its record, as far as scope
// looks; rid is the request's ID, which travels up the tree with it. A
// miss is ErrNotFound, with the Answer still naming the domain that
// answered. Every read counts in the metrics, but only one in readSample
// is timed. It does not apply the queued writes: the caller does, when the
// read must see them.
func (b *Batch) Read(ctx context.Context, key []byte, scope Scope, rid reqid.ID) (Answer, error) {
	b.reads++
	timed := b.reads%readSample == 0
	var start time.Time
	if timed {
		start = b.s.clk.Now()
	}
	a, err := b.s.read(ctx, key, scope, rid)
	if timed {
		b.s.metrics.time(b.proto, opGet, b.s.clk.Now().Sub(start))
	}
	b.s.metrics.observe(b.proto, opGet, err)
	return a, err
}

// Scan calls fn with every record's key and its view at the service's
// time, dead records included (View.Found is false for them), in key order
// from start, until fn returns false, limit records have been seen (limit
// <= 0: no limit) or ctx ends. fn may keep key.
func (b *Batch) Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, v crdt.View) bool) error {
	s := b.s
	begin := s.clk.Now()
	now := begin.UnixMilli()
	err := s.store.Scan(ctx, start, limit, func(key []byte, r crdt.Record) bool { return fn(key, r.Read(now)) })
	s.metrics.time(b.proto, opScan, s.clk.Now().Sub(begin))
	s.metrics.observe(b.proto, opScan, err)
	return err
}

// Key is the key of the i-th queued write.
func (b *Batch) Key(i int) []byte { return b.writes[i].Key }

// Apply commits the queued writes as one batch and returns their results
// in order. The results, and the keys Key returns, stay valid until Reset.
func (b *Batch) Apply(ctx context.Context) []Result {
	n := len(b.writes)
	if n == 0 {
		return nil
	}
	if cap(b.results) < n {
		b.results = make([]store.Result, n)
		b.out = make([]Result, n)
	}
	res := b.results[:n]
	start := b.s.clk.Now()
	ctx, cancel := context.WithTimeout(ctx, b.s.cfg.WriteTimeout)
	b.s.store.ApplyBatch(ctx, b.writes, res)
	cancel()
	took := b.s.clk.Now().Sub(start)
	m := b.s.metrics
	out := b.out[:n]
	for i := range res {
		r := &res[i]
		out[i] = Result{Context: r.Context, Counter: r.Counter, Old: r.Old, OldFound: r.OldFound, Skipped: r.Skipped, Err: r.Err}
		o := op(b.writes[i].Op)
		m.observe(b.proto, o, r.Err)
		m.time(b.proto, o, took)
		*r = store.Result{}
	}
	return out
}

// Reset empties the batch, dropping its references to request buffers.
func (b *Batch) Reset() {
	clear(b.writes)
	clear(b.out[:min(len(b.writes), len(b.out))])
	b.writes = b.writes[:0]
	b.now = time.Time{}
}
