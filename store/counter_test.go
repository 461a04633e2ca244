package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

// counterValue returns key's counter as the store reads it, and whether it
// is found.
func counterValue(t *testing.T, s *Store, key string) (int64, bool) {
	t.Helper()
	v, _, err := s.Read([]byte(key))
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, false
	case err != nil:
		t.Fatalf("read %q: %v", key, err)
	case v.Kind != crdt.KindCount:
		t.Fatalf("%q reads %+v, not a counter", key, v)
	}
	return v.Counter, true
}

// TestCounterDeleteRace: a DEL on this store races an INCR on a peer that
// had counted 100. However the peer's increment arrives (its log entry, or
// its whole record in a digest sync), and whatever the store did meanwhile
// (collect dead records, reopen, rewrite the expiry), what remains is the
// one increment the delete did not see.
func TestCounterDeleteRace(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		between func(t *testing.T, s *Store, clk *fakeClock) // after the delete, before the increment arrives
		arrive  func(t *testing.T, s *Store, p *peer, e LogEntry)
	}{
		{"by log", nil, applyEntry},
		{"by whole record", nil, mergeWhole},
		{"after a GC by stability", func(t *testing.T, s *Store, clk *fakeClock) {
			s.SetStable(s.Applied())
			collect(t, s, clk)
			if st := s.GCStats(); st.DroppedStable != 0 {
				t.Fatalf("the deleted counter, whose resets an increment in flight needs, was collected: %+v", st)
			}
		}, applyEntry},
		{"after a purge", func(t *testing.T, s *Store, clk *fakeClock) {
			clk.Add(time.Minute)
			purge(t, s, clk)
		}, mergeWhole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := openMem(t)
			p := newPeer(0x0b)
			applyEntry(t, s, p, p.incr("c", 100))
			del(t, s, "c")
			if tt.between != nil {
				tt.between(t, s, clk)
			}
			p.now += 10                        // later by the clock: the increment shows
			tt.arrive(t, s, p, p.incr("c", 1)) // the peer had not seen the delete
			if n, ok := counterValue(t, s, "c"); !ok || n != 1 {
				t.Fatalf("counter = %d, %v; want the increment the delete did not see (1)", n, ok)
			}
			if res := s.Apply(ctx, Write{Op: OpIncr, Key: []byte("c"), Delta: 2}); res.Err != nil || res.Counter != 3 {
				t.Fatalf("INCR after the race = %d, %v; want 3", res.Counter, res.Err)
			}
		})
	}
}

func applyEntry(t *testing.T, s *Store, _ *peer, e LogEntry) {
	t.Helper()
	if _, err := s.ApplyRemote(context.Background(), []LogEntry{e}); err != nil {
		t.Fatal(err)
	}
}

func mergeWhole(t *testing.T, s *Store, p *peer, e LogEntry) {
	t.Helper()
	seen := crdt.VersionVector{{Node: p.id, Counter: p.seq}}
	if err := s.MergeRecords(context.Background(), []KeyRecord{{Key: e.Key, Record: p.recs[string(e.Key)]}}, seen); err != nil {
		t.Fatal(err)
	}
}

// TestCounterResetsPersist: a counter's resets survive a restart (they are
// part of the stored record) and an EXPIRE, whose delta carries them to a
// replica that has not seen the delete.
func TestCounterResetsPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newFakeClock()
	cfg := Config{Dir: dir, PurgeInterval: time.Hour}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(0x0b)
	applyEntry(t, s, p, p.incr("c", 100))
	del(t, s, "c")
	p.now += 10
	applyEntry(t, s, p, p.incr("c", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg, clk)
	if n, ok := counterValue(t, s, "c"); !ok || n != 1 {
		t.Fatalf("counter after a restart = %d, %v; want 1", n, ok)
	}

	expiry := clk.ms() + 1000
	if res := s.Apply(ctx, Write{Op: OpExpire, Key: []byte("c"), Expiry: expiry}); res.Err != nil || res.Skipped {
		t.Fatalf("EXPIRE: %+v", res)
	}
	if v, _, err := s.Read([]byte("c")); err != nil || v.Counter != 1 || v.Expiry != expiry {
		t.Fatalf("after EXPIRE: %+v, %v; want 1 expiring at %d", v, err, expiry)
	}
	// A replica that holds only the peer's counts (101) takes the EXPIRE's
	// delta, the store's whole state of the key.
	other, _ := openMem(t)
	mergeWhole(t, other, p, LogEntry{Key: []byte("c")})
	if n, _ := counterValue(t, other, "c"); n != 101 {
		t.Fatalf("the peer's counts read %d, want 101", n)
	}
	for _, e := range s.Applied() {
		if e.Node == p.id {
			continue
		}
		entries, err := s.ReadLog(e.Node, e.Counter, 1) // the EXPIRE, this store's last write
		if err != nil || len(entries) != 1 {
			t.Fatalf("ReadLog: %v, %v", entries, err)
		}
		delta, err := entries[0].Record()
		if err != nil {
			t.Fatal(err)
		}
		if err := other.MergeRecord(ctx, entries[0].Key, delta, nil); err != nil {
			t.Fatal(err)
		}
	}
	if v, _, err := other.Read([]byte("c")); err != nil || v.Counter != 1 || v.Expiry != expiry {
		t.Fatalf("a replica that merged the EXPIRE reads %+v, %v; want 1 expiring at %d", v, err, expiry)
	}
	clk.Add(2 * time.Second)
	purge(t, s, clk)
	if n, ok := counterValue(t, s, "c"); ok {
		t.Fatalf("expired counter still reads %d", n)
	}
}

// TestMergeRecordOwnsResets: a merged record's resets are copied, so a
// caller that reuses its buffers cannot change what the store (and its
// record cache) holds.
func TestMergeRecordOwnsResets(t *testing.T) {
	s, _ := openMem(t)
	p := newPeer(0x0b)
	p.incr("c", 100)
	p.del("c")
	p.incr("c", 0)
	p.write("c", func(r crdt.Record, op crdt.Op) crdt.Record { d, _, _ := r.Incr(op, 5, p.now); return d })
	rec := p.recs["c"]
	if len(rec.Resets) == 0 {
		t.Fatalf("no resets to test with: %+v", rec)
	}
	if err := s.MergeRecord(context.Background(), []byte("c"), rec, nil); err != nil {
		t.Fatal(err)
	}
	rec.Resets[0].Inc = 0
	if n, ok := counterValue(t, s, "c"); !ok || n != 5 {
		t.Fatalf("counter = %d, %v after the caller changed its resets; want 5", n, ok)
	}
}
