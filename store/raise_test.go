package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/upu/upu/crdt"
)

func TestRaiseApplied(t *testing.T) {
	a, b := crdt.NodeID(0xa1), crdt.NodeID(0xb2)
	tests := []struct {
		name        string
		have        map[crdt.NodeID]uint64 // entries applied before, per origin
		raise       crdt.VersionVector
		wantApplied map[crdt.NodeID]uint64
		wantLog     map[crdt.NodeID]int // entries left per origin
	}{
		{"empty store", nil, crdt.VersionVector{{Node: a, Counter: 5}},
			map[crdt.NodeID]uint64{a: 5}, map[crdt.NodeID]int{a: 0}},
		{"log dropped", map[crdt.NodeID]uint64{a: 10}, crdt.VersionVector{{Node: a, Counter: 12}},
			map[crdt.NodeID]uint64{a: 12}, map[crdt.NodeID]int{a: 0}},
		{"lower counter ignored", map[crdt.NodeID]uint64{a: 10}, crdt.VersionVector{{Node: a, Counter: 4}},
			map[crdt.NodeID]uint64{a: 10}, map[crdt.NodeID]int{a: 10}},
		{"equal counter ignored", map[crdt.NodeID]uint64{a: 10}, crdt.VersionVector{{Node: a, Counter: 10}},
			map[crdt.NodeID]uint64{a: 10}, map[crdt.NodeID]int{a: 10}},
		{"per origin", map[crdt.NodeID]uint64{a: 10, b: 3},
			crdt.VersionVector{{Node: a, Counter: 4}, {Node: b, Counter: 7}},
			map[crdt.NodeID]uint64{a: 10, b: 7}, map[crdt.NodeID]int{a: 10, b: 0}},
		{"longer than a chunk", map[crdt.NodeID]uint64{a: 2500}, crdt.VersionVector{{Node: a, Counter: 9000}},
			map[crdt.NodeID]uint64{a: 9000}, map[crdt.NodeID]int{a: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openMem(t)
			for origin, n := range tt.have {
				applyAll(t, s, remoteSets(origin, 1, n))
			}
			// This node's own counter is never raised.
			set(t, s, "own", "v", 0)
			raise := tt.raise.With(s.NodeID(), 99)
			if err := s.RaiseApplied(ctx, raise); err != nil {
				t.Fatal(err)
			}
			if got := s.Applied().Get(s.NodeID()); got != 1 {
				t.Errorf("own counter %d, want 1", got)
			}
			var total int64 = 1 // the own write's entry
			for origin, want := range tt.wantApplied {
				if got := s.Applied().Get(origin); got != want {
					t.Errorf("applied[%s] = %d, want %d", origin, got, want)
				}
				left := tt.wantLog[origin]
				total += int64(left)
				ents, err := s.ReadLog(origin, 1, 1<<20)
				switch {
				case left == 0 && !errors.Is(err, ErrLogTrimmed):
					t.Errorf("ReadLog(%s, 1) = %d entries, %v; want ErrLogTrimmed", origin, len(ents), err)
				case left > 0 && (err != nil || len(ents) != left):
					t.Errorf("ReadLog(%s, 1) = %d entries, %v; want %d", origin, len(ents), err, left)
				}
				if start, err := s.LogStart(origin); err != nil || left == 0 && start != want+1 {
					t.Errorf("LogStart(%s) = %d, %v; want %d", origin, start, err, want+1)
				}
			}
			if got := s.LogLen(); got != total {
				t.Errorf("LogLen = %d, want %d", got, total)
			}
		})
	}
}

// TestRaiseAppliedThenLog: after a raise, entries up to the raised counter
// are duplicates, and the log grows again from the next one.
func TestRaiseAppliedThenLog(t *testing.T) {
	ctx := context.Background()
	s, _ := openMem(t)
	origin := crdt.NodeID(0xa1)
	all := remoteSets(origin, 1, 20)
	applyAll(t, s, all[:3])
	if err := s.RaiseApplied(ctx, crdt.VersionVector{{Node: origin, Counter: 15}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ApplyRemote(ctx, all)
	if err != nil || n != 5 {
		t.Fatalf("ApplyRemote after raise applied %d, %v; want 5 (16..20)", n, err)
	}
	ents, err := s.ReadLog(origin, 16, 100)
	if err != nil || len(ents) != 5 || ents[0].Seq != 16 || ents[4].Seq != 20 {
		t.Fatalf("ReadLog(16) = %v, %v", ents, err)
	}
	if _, err := s.ReadLog(origin, 15, 100); !errors.Is(err, ErrLogTrimmed) {
		t.Fatalf("ReadLog(15) = %v, want ErrLogTrimmed", err)
	}
	// Entries before the raise were never merged here; the snapshot that
	// preceded it would have carried their records.
	if _, ok := readValue(t, s, "r10"); ok {
		t.Fatal("r10 present without its entry or a snapshot")
	}
	if v, ok := readValue(t, s, "r17"); !ok || v != "v17" {
		t.Fatalf("r17 = %q, %v", v, ok)
	}
}

// TestRaiseAppliedNoHole raises over a log many chunks long while readers
// walk it and a peer's entries keep arriving: every read is contiguous
// from where it asked, or says the log was trimmed.
func TestRaiseAppliedNoHole(t *testing.T) {
	ctx := context.Background()
	s, _ := openMem(t)
	origin := crdt.NodeID(0xa1)
	all := remoteSets(origin, 1, 6000)
	applyAll(t, s, all[:5000])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from, err := s.LogStart(origin)
				if err != nil {
					errs <- err
					return
				}
				ents, err := s.ReadLog(origin, from, 700)
				if errors.Is(err, ErrLogTrimmed) {
					continue // trimmed between the two calls
				}
				if err != nil {
					errs <- err
					return
				}
				for i, e := range ents {
					if e.Seq != from+uint64(i) {
						errs <- errors.New("a hole in the log")
						return
					}
				}
			}
		}()
	}
	// The peer's entries 5001..6000 race the raise; those at or below
	// 8000 after it are duplicates.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 5000; i < len(all); i += 100 {
			if _, err := s.ApplyRemote(ctx, all[i:i+100]); err != nil {
				errs <- err
				return
			}
		}
	}()
	if err := s.RaiseApplied(ctx, crdt.VersionVector{{Node: origin, Counter: 8000}}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := s.Applied().Get(origin); got != 8000 {
		t.Fatalf("applied = %d, want 8000", got)
	}
	if got := s.LogLen(); got != 0 {
		t.Fatalf("LogLen = %d, want 0", got)
	}
}

// TestRaiseAppliedDurable: the raised vector and the dropped log survive a
// reopen.
func TestRaiseAppliedDurable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	origin := crdt.NodeID(0xa1)
	clk := newFakeClock()
	cfg := Config{Dir: dir, PurgeInterval: testConfig().PurgeInterval}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, s, remoteSets(origin, 1, 1500))
	if err := s.RaiseApplied(ctx, crdt.VersionVector{{Node: origin, Counter: 2000}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg, clk)
	if got := s.Applied().Get(origin); got != 2000 {
		t.Fatalf("applied after reopen = %d, want 2000", got)
	}
	if got := s.LogLen(); got != 0 {
		t.Fatalf("LogLen after reopen = %d, want 0", got)
	}
	if err := s.RaiseApplied(ctx, crdt.VersionVector{{Node: origin, Counter: 2000}}); err != nil {
		t.Fatalf("raise to the same vector again: %v", err)
	}
}

func TestRaiseAppliedClosed(t *testing.T) {
	s, err := Open(testConfig(), newFakeClock(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	err = s.RaiseApplied(context.Background(), crdt.VersionVector{{Node: 0xa1, Counter: 1}})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("RaiseApplied after Close = %v, want ErrClosed", err)
	}
}

// applyAll applies entries in batches and requires every one applied.
func applyAll(t *testing.T, s *Store, entries []LogEntry) {
	t.Helper()
	for i := 0; i < len(entries); i += 500 {
		batch := entries[i:min(i+500, len(entries))]
		n, err := s.ApplyRemote(context.Background(), batch)
		if err != nil || n != len(batch) {
			t.Fatalf("ApplyRemote applied %d of %d: %v", n, len(batch), err)
		}
	}
}
