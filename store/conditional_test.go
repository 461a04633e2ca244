package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

// TestConditionalWrites covers the read-modify-write options that the Redis
// listener needs: conditions, KEEPTTL, the old value, OpExpire, OpAppend.
func TestConditionalWrites(t *testing.T) {
	const base = 1_700_000_000_000 // newFakeClock's time
	key := []byte("k")
	type step struct {
		w        Write
		skipped  bool
		old      string // expected Result.Old ("" with oldFound false: none)
		oldFound bool
		counter  int64
		wantErr  error
		read     string // visible value after the step; "" for not found
		expiry   int64  // its expiry
	}
	set := func(v string, expiry int64) Write {
		return Write{Op: OpSet, Key: key, Value: []byte(v), Expiry: expiry}
	}
	with := func(w Write, f func(*Write)) Write { f(&w); return w }
	tests := []struct {
		name  string
		steps []step
	}{
		{"NX", []step{
			{w: with(set("a", 0), func(w *Write) { w.Cond = CondAbsent }), read: "a"},
			{w: with(set("b", 0), func(w *Write) { w.Cond = CondAbsent }), skipped: true, read: "a"},
		}},
		{"NX on an expired value", []step{
			{w: set("a", base-1)},
			{w: with(set("b", 0), func(w *Write) { w.Cond = CondAbsent }), read: "b"},
		}},
		{"XX", []step{
			{w: with(set("a", 0), func(w *Write) { w.Cond = CondPresent }), skipped: true},
			{w: set("a", 0), read: "a"},
			{w: with(set("b", 0), func(w *Write) { w.Cond = CondPresent }), read: "b"},
		}},
		{"old value and KEEPTTL", []step{
			{w: with(set("a", base+5000), func(w *Write) { w.WantOld = true }), read: "a", expiry: base + 5000},
			{w: with(set("b", 0), func(w *Write) { w.WantOld, w.KeepTTL = true, true }), old: "a", oldFound: true, read: "b", expiry: base + 5000},
			{w: with(set("c", 0), func(w *Write) { w.WantOld, w.Cond = true, CondAbsent }), old: "b", oldFound: true, skipped: true, read: "b", expiry: base + 5000},
		}},
		{"KEEPTTL on a missing key", []step{
			{w: with(set("a", base+5000), func(w *Write) { w.KeepTTL = true }), read: "a"},
		}},
		{"old value of a counter", []step{
			{w: Write{Op: OpIncr, Key: key, Delta: 41}, counter: 41, read: "41"},
			{w: with(set("x", 0), func(w *Write) { w.WantOld = true }), old: "41", oldFound: true, read: "x"},
		}},
		{"delete only what exists", []step{
			{w: Write{Op: OpDel, Key: key, Cond: CondPresent, WantOld: true}, skipped: true},
			{w: set("a", 0), read: "a"},
			{w: Write{Op: OpDel, Key: key, Cond: CondPresent, WantOld: true}, old: "a", oldFound: true, counter: 1},
		}},
		{"expire a value", []step{
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000}, skipped: true},
			{w: set("a", 0), read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000}, read: "a", expiry: base + 1000},
			{w: Write{Op: OpExpire, Key: key, Expiry: 0}, read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base, WantOld: true}, old: "a", oldFound: true},
		}},
		{"expire conditions", []step{
			{w: set("a", 0), read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000, Cond: CondHasExpiry}, skipped: true, read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000, Cond: CondLaterExpiry}, skipped: true, read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000, Cond: CondEarlierExpiry}, read: "a", expiry: base + 1000},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 2000, Cond: CondNoExpiry}, skipped: true, read: "a", expiry: base + 1000},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 2000, Cond: CondEarlierExpiry}, skipped: true, read: "a", expiry: base + 1000},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 2000, Cond: CondLaterExpiry}, read: "a", expiry: base + 2000},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 3000, Cond: CondHasExpiry | CondEarlierExpiry}, skipped: true, read: "a", expiry: base + 2000},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1500, Cond: CondHasExpiry | CondEarlierExpiry}, read: "a", expiry: base + 1500},
			{w: Write{Op: OpExpire, Key: key, Expiry: 0, Cond: CondHasExpiry}, read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1500, Cond: CondHasExpiry | CondEarlierExpiry}, skipped: true, read: "a"},
			{w: Write{Op: OpExpire, Key: key, Expiry: 0, Cond: CondHasExpiry}, skipped: true, read: "a"},
		}},
		{"expire a counter", []step{
			{w: Write{Op: OpIncr, Key: key, Delta: 3}, counter: 3, read: "3"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000}, read: "3", expiry: base + 1000},
			{w: Write{Op: OpIncr, Key: key, Delta: 4}, counter: 7, read: "7", expiry: base + 1000},
			{w: Write{Op: OpExpire, Key: key, Expiry: 0}, read: "7"},
			{w: Write{Op: OpIncr, Key: key, Delta: 1}, counter: 8, read: "8"},
		}},
		{"append", []step{
			{w: Write{Op: OpAppend, Key: key, Value: []byte("ab")}, counter: 2, read: "ab"},
			{w: Write{Op: OpExpire, Key: key, Expiry: base + 1000}, read: "ab", expiry: base + 1000},
			{w: Write{Op: OpAppend, Key: key, Value: []byte("cd")}, counter: 4, read: "abcd", expiry: base + 1000},
		}},
		{"append to a counter", []step{
			{w: Write{Op: OpIncr, Key: key, Delta: 12}, counter: 12, read: "12"},
			{w: Write{Op: OpAppend, Key: key, Value: []byte("x")}, counter: 3, read: "12x"},
			{w: Write{Op: OpIncr, Key: key, Delta: 1}, wantErr: crdt.ErrWrongType, read: "12x"},
		}},
		{"append past the value limit", []step{
			{w: Write{Op: OpAppend, Key: key, Value: []byte(strings.Repeat("v", 100))}, counter: 100, read: strings.Repeat("v", 100)},
			{w: Write{Op: OpAppend, Key: key, Value: []byte("x")}, wantErr: ErrTooLarge, read: strings.Repeat("v", 100)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxValueSize = 100
			s := openStore(t, cfg, newFakeClock())
			for i, st := range tt.steps {
				before := s.LogLen()
				res := s.Apply(context.Background(), st.w)
				if !errors.Is(res.Err, st.wantErr) || (st.wantErr == nil) != (res.Err == nil) {
					t.Fatalf("step %d: err = %v, want %v", i, res.Err, st.wantErr)
				}
				if res.Skipped != st.skipped || string(res.Old) != st.old || res.OldFound != st.oldFound || res.Counter != st.counter {
					t.Errorf("step %d: result skipped=%v old=%q/%v counter=%d; want %v %q/%v %d",
						i, res.Skipped, res.Old, res.OldFound, res.Counter, st.skipped, st.old, st.oldFound, st.counter)
				}
				if wrote := s.LogLen() - before; wrote != 0 && (st.skipped || res.Err != nil) || wrote != 1 && !st.skipped && res.Err == nil {
					t.Errorf("step %d: %d log entries written", i, wrote)
				}
				if st.w.Key == nil || string(st.w.Key) != "k" {
					continue
				}
				v, _, err := s.Read(key)
				if got := string(v.Value); got != st.read || (err == nil) != (st.read != "") || v.Expiry != st.expiry {
					t.Errorf("step %d: read %q expiry %d (err %v), want %q expiry %d", i, got, v.Expiry, err, st.read, st.expiry)
				}
			}
		})
	}
}

// TestSkippedWriteCommitsNothing checks that a batch of failed conditions
// does not commit (the applied vector stays put) while a batch mixing them
// with real writes answers each one.
func TestSkippedWriteCommitsNothing(t *testing.T) {
	s, _ := openMem(t)
	set(t, s, "a", "1", 0)
	applied := s.Applied().String()
	ws := []Write{
		{Op: OpSet, Key: []byte("a"), Value: []byte("2"), Cond: CondAbsent},
		{Op: OpDel, Key: []byte("missing"), Cond: CondPresent},
		{Op: OpExpire, Key: []byte("missing"), Expiry: 0},
	}
	out := make([]Result, len(ws))
	s.ApplyBatch(context.Background(), ws, out)
	for i, r := range out {
		if r.Err != nil || !r.Skipped {
			t.Errorf("write %d: %+v, want skipped", i, r)
		}
	}
	if got := s.Applied().String(); got != applied || s.LogLen() != 1 {
		t.Fatalf("applied %s -> %s, log %d: skipped writes were committed", applied, got, s.LogLen())
	}
	ws = append(ws, Write{Op: OpSet, Key: []byte("b"), Value: []byte("x"), Cond: CondAbsent})
	out = make([]Result, len(ws))
	s.ApplyBatch(context.Background(), ws, out)
	if !out[0].Skipped || !out[1].Skipped || !out[2].Skipped || out[3].Skipped || out[3].Err != nil {
		t.Fatalf("mixed batch: %+v", out)
	}
	if got, _ := readValue(t, s, "b"); got != "x" || s.LogLen() != 2 {
		t.Fatalf("b = %q, log %d", got, s.LogLen())
	}
}

// TestExpireCounterConcurrentIncr expires a counter on one replica while
// another increments it: after the replicas exchange their logs both hold
// the exact sum, the same data, and the increment made concurrently keeps
// the expiry it was written with.
func TestExpireCounterConcurrentIncr(t *testing.T) {
	clk := newFakeClock()
	open := func(id crdt.NodeID) *Store {
		cfg := testConfig()
		cfg.NodeID = id
		return openStore(t, cfg, clk)
	}
	a, b := open(0xa), open(0xb)
	ctx := context.Background()
	var shipped [2]uint64 // entries of a and b already shipped
	ship := func(from, to *Store, i int) {
		t.Helper()
		n := from.Applied().Get(from.NodeID())
		if n == shipped[i] {
			return
		}
		entries, err := from.ReadLog(from.NodeID(), shipped[i]+1, 100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.ApplyRemote(ctx, entries); err != nil {
			t.Fatal(err)
		}
		shipped[i] = n
	}
	incr := func(s *Store, n int64) {
		t.Helper()
		if res := s.Apply(ctx, Write{Op: OpIncr, Key: []byte("c"), Delta: n}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	incr(a, 5)
	ship(a, b, 0)
	incr(b, 3)
	ship(b, a, 1)
	// Concurrently: a expires the counter, b increments it again.
	expiry := clk.ms() + 1000
	if res := a.Apply(ctx, Write{Op: OpExpire, Key: []byte("c"), Expiry: expiry}); res.Err != nil || res.Skipped {
		t.Fatalf("expire: %+v", res)
	}
	incr(b, 2)
	ship(a, b, 0)
	ship(b, a, 1)

	for _, s := range []*Store{a, b} {
		v, _, err := s.Read([]byte("c"))
		if err != nil || v.Counter != 10 {
			t.Fatalf("node %s: counter %d, %v; want 10", s.NodeID(), v.Counter, err)
		}
	}
	da, _, _ := a.Digest(ctx)
	db, _, _ := b.Digest(ctx)
	if da != db {
		t.Fatal("replicas differ")
	}
	// a's rewrite covers what a had seen; b's concurrent entry (its 3 and
	// 2, folded) keeps no expiry.
	clk.Add(time.Second)
	for _, s := range []*Store{a, b} {
		v, _, err := s.Read([]byte("c"))
		if err != nil || v.Counter != 5 {
			t.Fatalf("node %s after the expiry: counter %d, %v; want 5", s.NodeID(), v.Counter, err)
		}
	}
}
