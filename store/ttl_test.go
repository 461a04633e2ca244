package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
)

// indexLen returns the number of 'x' entries.
func indexLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func purge(t *testing.T, s *Store, clk *fakeClock) {
	t.Helper()
	if err := s.purgeOnce(context.Background(), clk.Now()); err != nil {
		t.Fatalf("purge: %v", err)
	}
}

func TestTTL(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.TombstoneHorizon = time.Minute
	s := openStore(t, cfg, clk)

	set(t, s, "ttl", "v", clk.ms()+1000)
	set(t, s, "keep", "v", 0)
	clk.Add(999 * time.Millisecond)
	if _, found := readValue(t, s, "ttl"); !found {
		t.Fatal("expired early")
	}
	clk.Add(time.Millisecond)
	if _, found := readValue(t, s, "ttl"); found {
		t.Fatal("visible at its expiry")
	}

	// The purge drops the value bytes; the record keeps its context until
	// the horizon.
	purge(t, s, clk)
	rec, err := s.Get([]byte("ttl"))
	if err != nil {
		t.Fatalf("record gone before the horizon: %v", err)
	}
	for _, e := range rec.Entries {
		if e.Value != nil {
			t.Errorf("expired value still on disk: %+v", e)
		}
	}
	if rec.Context.IsZero() {
		t.Error("context dropped before the horizon")
	}
	if n := indexLen(t, s); n != 1 {
		t.Errorf("index entries = %d, want 1 (the horizon)", n)
	}

	clk.Add(time.Minute - 1001*time.Millisecond)
	purge(t, s, clk)
	if _, err := s.Get([]byte("ttl")); err != nil {
		t.Fatalf("record gone before the horizon: %v", err)
	}
	clk.Add(time.Millisecond)
	purge(t, s, clk)
	if _, err := s.Get([]byte("ttl")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record still there after the horizon: %v", err)
	}
	if n := indexLen(t, s); n != 0 {
		t.Errorf("index entries = %d, want 0", n)
	}
	if _, found := readValue(t, s, "keep"); !found {
		t.Error("purge removed a live key")
	}
	// Purge writes no log entries.
	if got := s.LogLen(); got != 2 {
		t.Errorf("LogLen = %d, want 2", got)
	}
}

func TestTombstoneHorizon(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.TombstoneHorizon = time.Hour
	s := openStore(t, cfg, clk)
	set(t, s, "k", "v", 0)
	stale, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("k")})
	clk.Add(59 * time.Minute)
	purge(t, s, clk)
	if _, err := s.Get([]byte("k")); err != nil {
		t.Fatalf("tombstone dropped before the horizon: %v", err)
	}
	// A lagging replica's copy from before the delete stays deleted.
	if err := s.MergeRecord(context.Background(), []byte("k"), stale, nil); err != nil {
		t.Fatal(err)
	}
	if _, found := readValue(t, s, "k"); found {
		t.Fatal("deleted value came back")
	}
	clk.Add(time.Minute)
	purge(t, s, clk)
	if _, err := s.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tombstone kept past the horizon: %v", err)
	}
	if n := indexLen(t, s); n != 0 {
		t.Errorf("index entries = %d, want 0", n)
	}
}

// TestRewriteWithTTL: rewriting a key with a sliding TTL
// does not add an index entry per write; the old one fires and re-indexes.
func TestRewriteWithTTL(t *testing.T) {
	s, clk := openMem(t)
	for range 10 {
		set(t, s, "k", "v", clk.ms()+1000)
		clk.Add(500 * time.Millisecond)
	}
	if n := indexLen(t, s); n != 1 {
		t.Errorf("index entries = %d, want 1", n)
	}
	purge(t, s, clk) // fires the first entry: the key is live, re-indexed
	if _, found := readValue(t, s, "k"); !found {
		t.Fatal("live key lost")
	}
	if n := indexLen(t, s); n != 1 {
		t.Errorf("index entries = %d, want 1", n)
	}
	clk.Add(time.Second)
	if _, found := readValue(t, s, "k"); found {
		t.Fatal("visible after expiry")
	}
}

func TestDigestIgnoresExpired(t *testing.T) {
	a, clkA := openMem(t)
	b, clkB := openMem(t)
	set(t, a, "k", "v", 0)
	set(t, b, "k", "v", 0)
	set(t, a, "gone", "x", clkA.ms()+10)
	b.Apply(context.Background(), Write{Op: OpDel, Key: []byte("gone")})
	clkA.Add(time.Second)
	clkB.Add(time.Second)
	da, na, _ := a.Digest(context.Background())
	db, nb, _ := b.Digest(context.Background())
	if da != db || na != 1 || nb != 1 {
		t.Errorf("digests %s/%d and %s/%d differ", da, na, db, nb)
	}
	set(t, b, "k", "w", 0)
	if db2, _, _ := b.Digest(context.Background()); db2 == da {
		t.Error("digest did not change with the value")
	}
}

func TestPurgeRecord(t *testing.T) {
	n := crdt.NodeID(1)
	entry := func(c uint64, ts crdt.Timestamp, expiry int64, v string) crdt.Entry {
		return crdt.Entry{Dot: crdt.Dot{Node: n, Counter: c}, TS: ts, Expiry: expiry, Value: []byte(v)}
	}
	ctx := crdt.Context{VV: crdt.VersionVector{{Node: n, Counter: 3}}}
	tests := []struct {
		name        string
		entries     []crdt.Entry
		wantChanged bool
		wantDots    []uint64
		wantValues  []string
	}{
		{"nothing expired", []crdt.Entry{entry(1, 10, 0, "a"), entry(2, 20, 500, "b")}, false, []uint64{1, 2}, []string{"a", "b"}},
		{"older expired: dropped", []crdt.Entry{entry(1, 10, 50, "a"), entry(2, 20, 0, "b")}, true, []uint64{2}, []string{"b"}},
		{"latest expired: stub kept", []crdt.Entry{entry(1, 10, 0, "a"), entry(2, 20, 50, "b"), entry(3, 5, 50, "c")}, true, []uint64{1, 2}, []string{"a", ""}},
		{"all expired", []crdt.Entry{entry(1, 10, 50, "a"), entry(2, 20, 50, "b")}, true, []uint64{2}, []string{""}},
		{"only a stub", []crdt.Entry{entry(2, 20, 50, "")}, false, []uint64{2}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := crdt.Record{Entries: tt.entries, Context: ctx}
			p, changed := r.PurgeKeepingLastWrite(100)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v", changed)
			}
			if len(p.Entries) != len(tt.wantDots) {
				t.Fatalf("entries = %+v", p.Entries)
			}
			for i, e := range p.Entries {
				if e.Dot.Counter != tt.wantDots[i] || string(e.Value) != tt.wantValues[i] {
					t.Errorf("entry %d = %+v", i, e)
				}
			}
			if p.LastWrite() != r.LastWrite() && len(p.Entries) > 0 {
				t.Errorf("LastWrite %d, was %d", p.LastWrite(), r.LastWrite())
			}
			if !p.Context.Equal(ctx) {
				t.Errorf("context changed")
			}
			if p.Read(100).Found != r.Read(100).Found {
				t.Errorf("visibility changed")
			}
		})
	}
}
