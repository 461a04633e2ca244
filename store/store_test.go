package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

func TestLocalWrites(t *testing.T) {
	type step struct {
		w       Write
		wantErr error
		counter int64  // expected Result.Counter
		read    string // expected visible value after the step; "" for not found
	}
	key := []byte("k")
	tests := []struct {
		name  string
		steps []step
	}{
		{"set then overwrite", []step{
			{w: Write{Op: OpSet, Key: key, Value: []byte("a")}, read: "a"},
			{w: Write{Op: OpSet, Key: key, Value: []byte("b")}, read: "b"},
		}},
		{"delete", []step{
			{w: Write{Op: OpSet, Key: key, Value: []byte("a")}, read: "a"},
			{w: Write{Op: OpDel, Key: key}, counter: 1, read: ""},
			{w: Write{Op: OpDel, Key: key}, counter: 0, read: ""},
			{w: Write{Op: OpSet, Key: key, Value: []byte("c")}, read: "c"},
		}},
		{"delete missing", []step{
			{w: Write{Op: OpDel, Key: key}, counter: 0, read: ""},
		}},
		{"incr from nothing and from an integer value", []step{
			{w: Write{Op: OpIncr, Key: key, Delta: 5}, counter: 5, read: "5"},
			{w: Write{Op: OpIncr, Key: key, Delta: -7}, counter: -2, read: "-2"},
			{w: Write{Op: OpSet, Key: key, Value: []byte("40")}, read: "40"},
			{w: Write{Op: OpIncr, Key: key, Delta: 2}, counter: 42, read: "42"},
		}},
		{"incr on a non-integer", []step{
			{w: Write{Op: OpSet, Key: key, Value: []byte("x")}, read: "x"},
			{w: Write{Op: OpIncr, Key: key, Delta: 1}, wantErr: crdt.ErrWrongType, read: "x"},
		}},
		{"validation", []step{
			{w: Write{Op: OpSet, Key: nil, Value: []byte("a")}, wantErr: ErrBadRequest},
			{w: Write{Op: OpSet, Key: bytes.Repeat([]byte("k"), 1025)}, wantErr: ErrTooLarge},
			{w: Write{Op: OpSet, Key: key, Value: make([]byte, 1<<20+1)}, wantErr: ErrTooLarge},
			{w: Write{Op: 0, Key: key}, wantErr: ErrBadRequest},
			{w: Write{Op: OpSet, Key: key, Expiry: -1}, wantErr: ErrBadRequest},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMem(t)
			for i, st := range tt.steps {
				res := s.Apply(context.Background(), st.w)
				if !errors.Is(res.Err, st.wantErr) || (st.wantErr == nil) != (res.Err == nil) {
					t.Fatalf("step %d: err = %v, want %v", i, res.Err, st.wantErr)
				}
				if res.Err == nil && res.Counter != st.counter {
					t.Errorf("step %d: counter = %d, want %d", i, res.Counter, st.counter)
				}
				got, found := readValue(t, s, "k")
				if got != st.read || found != (st.read != "") {
					t.Errorf("step %d: read %q (found %v), want %q", i, got, found, st.read)
				}
			}
		})
	}
}

func TestGetMissingAndTombstone(t *testing.T) {
	s, _ := openMem(t)
	if _, err := s.Get([]byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	set(t, s, "k", "v", 0)
	if res := s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("k")}); res.Err != nil {
		t.Fatal(res.Err)
	}
	rec, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatalf("Get tombstoned: %v", err)
	}
	if len(rec.Entries) != 1 || rec.Entries[0].Kind != crdt.KindTomb {
		t.Errorf("record = %+v, want one tombstone", rec)
	}
	_, rec2, err := s.Read([]byte("k"))
	if !errors.Is(err, ErrNotFound) || rec2.Context.IsZero() {
		t.Errorf("Read tombstoned: err %v, context %v; want ErrNotFound with the context", err, rec2.Context)
	}
}

func TestContextWrites(t *testing.T) {
	s, _ := openMem(t)
	first := set(t, s, "k", "a", 0)
	// A write with a stale context (from before "b") keeps "b" as a
	// sibling; the read still shows one winner, the latest.
	set(t, s, "k", "b", 0)
	ctx := first.Context
	res := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte("k"), Value: []byte("c"), Context: &ctx})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	rec, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Live(0)); n != 2 {
		t.Errorf("siblings = %d, want 2 (b and c)", n)
	}
	if got, _ := readValue(t, s, "k"); got != "c" {
		t.Errorf("read %q, want c", got)
	}
	// The returned context covers both: writing with it leaves one value.
	ctx = res.Context
	if res := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte("k"), Value: []byte("d"), Context: &ctx}); res.Err != nil {
		t.Fatal(res.Err)
	}
	rec, _ = s.Get([]byte("k"))
	if n := len(rec.Live(0)); n != 1 {
		t.Errorf("siblings = %d, want 1", n)
	}
}

func TestApplyBatchSameKey(t *testing.T) {
	s, _ := openMem(t)
	ws := []Write{
		{Op: OpSet, Key: []byte("k"), Value: []byte("1")},
		{Op: OpIncr, Key: []byte("k"), Delta: 10},
		{Op: OpIncr, Key: []byte("k"), Delta: 100},
		{Op: OpSet, Key: []byte("other"), Value: []byte("x")},
		{Op: OpIncr, Key: []byte("other"), Delta: 1}, // not an integer
		{Op: OpIncr, Key: []byte("k"), Delta: 1000},
		{Op: OpDel, Key: []byte("other")},
	}
	out := make([]Result, len(ws))
	s.ApplyBatch(context.Background(), ws, out)
	wantCounter := []int64{0, 11, 111, 0, 0, 1111, 1}
	for i, r := range out {
		if i == 4 {
			if !errors.Is(r.Err, crdt.ErrWrongType) {
				t.Errorf("write %d: err %v, want ErrWrongType", i, r.Err)
			}
			continue
		}
		if r.Err != nil || r.Counter != wantCounter[i] {
			t.Errorf("write %d: %+v, want counter %d", i, r, wantCounter[i])
		}
	}
	if got, _ := readValue(t, s, "k"); got != "1111" {
		t.Errorf("k = %q, want 1111", got)
	}
	if _, found := readValue(t, s, "other"); found {
		t.Error("other still visible")
	}
	// Six writes made six log entries (the failed one none), in order.
	if got := s.Applied().Get(s.NodeID()); got != 6 {
		t.Errorf("own seq = %d, want 6", got)
	}
	log, err := s.ReadLog(s.NodeID(), 1, 100)
	if err != nil || len(log) != 6 {
		t.Fatalf("ReadLog: %d entries, %v", len(log), err)
	}
	for i, e := range log {
		if e.Seq != uint64(i+1) || e.Origin != s.NodeID() || (i > 0 && e.TS <= log[i-1].TS) {
			t.Errorf("entry %d: seq %d origin %s ts %s", i, e.Seq, e.Origin, e.TS)
		}
	}
}

// TestTxnTooBig writes a batch far larger than one Badger transaction: the
// writer commits what fits and goes on; every write lands.
func TestTxnTooBig(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.MemTableSize = 4 << 20 // a transaction holds about 600 KiB
	cfg.MaxBatch = 1000
	s := openStore(t, cfg, clk)
	value := bytes.Repeat([]byte("v"), 100<<10)
	const n = 64 // ~13 MiB with the log entries
	ws := make([]Write, n)
	for i := range ws {
		ws[i] = Write{Op: OpSet, Key: fmt.Appendf(nil, "key-%03d", i), Value: value}
	}
	// One value too large for any transaction on its own fails alone.
	ws[10].Value = bytes.Repeat([]byte("x"), 900<<10)
	out := make([]Result, n)
	s.ApplyBatch(context.Background(), ws, out)
	for i, r := range out {
		if i == 10 {
			if !errors.Is(r.Err, ErrTooLarge) {
				t.Errorf("write 10: %v, want ErrTooLarge", r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Fatalf("write %d: %v", i, r.Err)
		}
	}
	for i := range ws {
		v, _, err := s.Read(ws[i].Key)
		if i == 10 {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("write 10 stored: %v", err)
			}
			continue
		}
		if err != nil || !bytes.Equal(v.Value, value) {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if got := s.Applied().Get(s.NodeID()); got != n-1 {
		t.Errorf("own seq = %d, want %d", got, n-1)
	}
	if got := s.LogLen(); got != n-1 {
		t.Errorf("LogLen = %d, want %d", got, n-1)
	}
}

func TestConcurrentApply(t *testing.T) {
	s, _ := openMem(t)
	const goroutines, perG = 50, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				key := fmt.Appendf(nil, "g%d-%d", g, i)
				if res := s.Apply(context.Background(), Write{Op: OpSet, Key: key, Value: key}); res.Err != nil {
					errs <- res.Err
					return
				}
				if res := s.Apply(context.Background(), Write{Op: OpIncr, Key: []byte("shared"), Delta: 1}); res.Err != nil {
					errs <- res.Err
					return
				}
				if _, _, err := s.Read(key); err != nil {
					errs <- fmt.Errorf("read own write %s: %w", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, _, err := s.Read([]byte("shared"))
	if err != nil || v.Counter != goroutines*perG {
		t.Fatalf("shared = %d, %v; want %d", v.Counter, err, goroutines*perG)
	}
	if got := s.Applied().Get(s.NodeID()); got != 2*goroutines*perG {
		t.Errorf("own seq = %d, want %d", got, 2*goroutines*perG)
	}
	_, keys, err := s.Digest(context.Background())
	if err != nil || keys != goroutines*perG+1 {
		t.Errorf("digest keys = %d, %v", keys, err)
	}
}

// TestCloseWithWritesInFlight closes while writers are busy: every write
// either succeeded (and is durable: it is readable after reopening) or got
// ErrClosed; none hangs.
func TestCloseWithWritesInFlight(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	cfg := Config{Dir: dir, PurgeInterval: time.Hour}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	const goroutines = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   [][]byte
		started = make(chan struct{}, goroutines)
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signalled := false
			signal := func() {
				if !signalled {
					signalled = true
					started <- struct{}{}
				}
			}
			defer signal()
			for i := range 100_000 {
				key := fmt.Appendf(nil, "g%d-%d", g, i)
				res := s.Apply(context.Background(), Write{Op: OpSet, Key: key, Value: key})
				if i == 10 {
					signal()
				}
				if errors.Is(res.Err, ErrClosed) {
					return
				}
				if res.Err != nil {
					t.Errorf("apply: %v", res.Err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		}()
	}
	for range goroutines {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wg.Wait()
	if res := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte("late")}); !errors.Is(res.Err, ErrClosed) {
		t.Errorf("Apply after Close: %v", res.Err)
	}
	if _, err := s.Get([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}

	s2 := openStore(t, cfg, clk)
	for _, k := range acked {
		if _, _, err := s2.Read(k); err != nil {
			t.Fatalf("acknowledged %s lost: %v", k, err)
		}
	}
	if got := s2.Applied().Get(s2.NodeID()); got != uint64(len(acked)) {
		t.Errorf("own seq after reopen = %d, acknowledged %d", got, len(acked))
	}
	t.Logf("%d writes acknowledged before Close", len(acked))
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	cfg := Config{Dir: dir, PurgeInterval: time.Hour}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	id := s.NodeID()
	set(t, s, "a", "1", 0)
	set(t, s, "b", "2", 0)
	s.Apply(context.Background(), Write{Op: OpIncr, Key: []byte("n"), Delta: 7})
	s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("a")})
	remote := crdt.NodeID(0xabcdef)
	if _, err := s.ApplyRemote(context.Background(), remoteSets(remote, 1, 3)); err != nil {
		t.Fatal(err)
	}
	applied, lastTS := s.Applied(), s.hlc.Last()
	digest, _, err := s.Digest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Add(-time.Hour) // the wall clock went back: timestamps must not
	s2 := openStore(t, cfg, clk)
	clk.Add(time.Hour)
	if s2.NodeID() != id {
		t.Errorf("node id %s, was %s", s2.NodeID(), id)
	}
	if !s2.Applied().Equal(applied) {
		t.Errorf("applied %s, was %s", s2.Applied(), applied)
	}
	if s2.hlc.Last() < lastTS {
		t.Errorf("hlc %s went back from %s", s2.hlc.Last(), lastTS)
	}
	if got, _, _ := s2.Digest(context.Background()); got != digest {
		t.Errorf("digest changed across reopen")
	}
	if got := s2.LogLen(); got != 4+3 {
		t.Errorf("LogLen = %d, want 7", got)
	}
	// The next own write continues the sequence.
	set(t, s2, "c", "3", 0)
	if got := s2.Applied().Get(id); got != 5 {
		t.Errorf("own seq = %d, want 5", got)
	}
}

func TestOpenLockedDir(t *testing.T) {
	dir := t.TempDir()
	openStore(t, Config{Dir: dir}, newFakeClock())
	_, err := Open(Config{Dir: dir}, newFakeClock(), testLog(t))
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Open: %v, want a directory lock error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"in memory", Config{InMemory: true}, true},
		{"dir", Config{Dir: "/tmp/x"}, true},
		{"no dir", Config{}, false},
		{"both", Config{Dir: "/tmp/x", InMemory: true}, false},
		{"negative interval", Config{InMemory: true, PurgeInterval: -1}, false},
		{"huge key limit", Config{InMemory: true, MaxKeySize: 1 << 20}, false},
		{"tiny memtable", Config{InMemory: true, MemTableSize: 1000}, false},
		{"negative log bound", Config{InMemory: true, MaxLogEntries: -1}, false},
		{"tiny memory", Config{InMemory: true, MaxMemory: MinMaxMemory - 1}, false},
		{"negative memory", Config{InMemory: true, MaxMemory: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
	if err := DefaultConfig().withDefaults().Validate(); err == nil {
		t.Error("DefaultConfig without Dir validated")
	}
}

// TestMemoryBudget: MaxMemory is divided among the sizes left at zero, an
// explicit size wins, and the parts never add up to more than MaxMemory.
func TestMemoryBudget(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want Budget
	}{
		{"default", Config{Dir: "d"}, Budget{MemTables: 48 << 20, BlockCache: 32 << 20, IndexCache: 8 << 20, RecordCache: 128 << 20}},
		{"1 GiB", Config{Dir: "d", MaxMemory: 1 << 30}, Budget{MemTables: 192 << 20, BlockCache: 128 << 20, IndexCache: 32 << 20, RecordCache: 512 << 20}},
		{"explicit cache", Config{Dir: "d", MaxMemory: 1 << 30, RecordCacheSize: 1 << 20}, Budget{MemTables: 192 << 20, BlockCache: 128 << 20, IndexCache: 32 << 20, RecordCache: 1 << 20}},
	}
	for _, tt := range tests {
		c := tt.cfg.withDefaults()
		got := Budget{MemTables: c.MemTableSize * numMemtables, BlockCache: c.BlockCacheSize, IndexCache: c.IndexCacheSize, RecordCache: c.RecordCacheSize}
		if got != tt.want {
			t.Errorf("%s: budget %+v, want %+v", tt.name, got, tt.want)
		}
		if tt.cfg.RecordCacheSize == 0 && got.Total() > c.MaxMemory {
			t.Errorf("%s: parts add up to %d, over MaxMemory %d", tt.name, got.Total(), c.MaxMemory)
		}
	}
}

// TestApplyCancelled: a write whose context has ended is not applied.
func TestApplyCancelled(t *testing.T) {
	s, _ := openMem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := s.Apply(ctx, Write{Op: OpSet, Key: []byte("k"), Value: []byte("v")})
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("err = %v", res.Err)
	}
	if _, found := readValue(t, s, "k"); found {
		t.Fatal("cancelled write applied")
	}
}

func TestScan(t *testing.T) {
	s, _ := openMem(t)
	for _, k := range []string{"c", "a", "e", "b", "d"} {
		set(t, s, k, "v"+k, 0)
	}
	var got []string
	err := s.Scan(context.Background(), []byte("b"), 3, func(key []byte, r crdt.Record) bool {
		got = append(got, string(key)+"="+string(r.Read(0).Value))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "b=vb c=vc d=vd"; strings.Join(got, " ") != want {
		t.Errorf("scan = %v, want %s", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Scan(ctx, nil, 0, func([]byte, crdt.Record) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("scan with cancelled ctx: %v", err)
	}
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := openStore(t, Config{Dir: dir, PurgeInterval: time.Hour}, clk)
	set(t, s, "a", "1", 0)
	set(t, s, "b", "2", clk.ms()+1000)
	s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("a")})
	set(t, s, "c", "3", 0)
	clk.Add(2 * time.Second)
	// Counted, not scanned: the expired key counts until the purger finds
	// it dead.
	if st := s.Stats(); st.Keys != 2 || st.LogLen != 4 || st.Applied.Get(s.NodeID()) != 4 || st.DiskBytes <= 0 {
		t.Errorf("stats = %+v", st)
	}
	if err := s.purgeOnce(context.Background(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Keys != 1 {
		t.Errorf("after the purge: Keys = %d, want 1", st.Keys)
	}
	// Overwrites and writes of a deleted key create no record.
	set(t, s, "c", "4", 0)
	set(t, s, "a", "5", 0)
	if st := s.Stats(); st.Keys != 2 {
		t.Errorf("after rewriting c and a: Keys = %d, want 2", st.Keys)
	}
	// The counts are taken again from the store on open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, Config{Dir: dir, PurgeInterval: time.Hour}, clk)
	if st := s.Stats(); st.Keys != 2 {
		t.Errorf("after reopening: Keys = %d, want 2", st.Keys)
	}
}

// TestCommitFailure: a failed commit fails every write in it, and the state
// (own sequence, log length) stays as committed.
func TestCommitFailure(t *testing.T) {
	s, failing := openFailing(t)

	set(t, s, "a", "1", 0)
	failing.Store(true)
	ws := []Write{
		{Op: OpSet, Key: []byte("a"), Value: []byte("2")},
		{Op: OpSet, Key: []byte("b"), Value: []byte("2")},
		{Op: OpIncr, Key: []byte("c"), Delta: 1},
	}
	out := make([]Result, len(ws))
	s.ApplyBatch(context.Background(), ws, out)
	for i, r := range out {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "injected") {
			t.Errorf("write %d: %v, want the commit error", i, r.Err)
		}
	}
	remote := remoteSets(0x99, 1, 2)
	if n, err := s.ApplyRemote(context.Background(), remote); n != 0 || err == nil {
		t.Errorf("ApplyRemote during failure: %d, %v", n, err)
	}
	failing.Store(false)
	if got, _ := readValue(t, s, "a"); got != "1" {
		t.Errorf("a = %q, want 1", got)
	}
	if _, found := readValue(t, s, "b"); found {
		t.Error("b visible after a failed commit")
	}
	if s.Applied().Get(s.NodeID()) != 1 || s.Applied().Get(0x99) != 0 || s.LogLen() != 1 {
		t.Errorf("state moved: applied %s, log %d", s.Applied(), s.LogLen())
	}
	set(t, s, "b", "3", 0)
	if n, err := s.ApplyRemote(context.Background(), remote); n != 2 || err != nil {
		t.Errorf("ApplyRemote after failure: %d, %v", n, err)
	}
	// The writer's cache did not keep the failed increment.
	if r := s.Apply(context.Background(), Write{Op: OpIncr, Key: []byte("c"), Delta: 1}); r.Err != nil || r.Counter != 1 {
		t.Errorf("incr after failure: %+v, want 1", r)
	}
	log, err := s.ReadLog(s.NodeID(), 1, 10)
	if err != nil || len(log) != 3 || log[1].Seq != 2 || string(log[1].Key) != "b" {
		t.Errorf("own log after failure: %+v, %v", log, err)
	}
}

// TestCallerBuffersNotRetained: the writer's record cache must not keep a
// caller's value buffer, which the caller may reuse after Apply returns.
func TestCallerBuffersNotRetained(t *testing.T) {
	s, _ := openMem(t)
	key, value := []byte("k"), []byte("aaa")
	if r := s.Apply(context.Background(), Write{Op: OpSet, Key: key, Value: value}); r.Err != nil {
		t.Fatal(r.Err)
	}
	copy(key, "x")
	copy(value, "zzz")
	// An empty context supersedes nothing: the first value stays as a
	// sibling, re-encoded from the writer's cache.
	if r := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte("k"), Value: []byte("b"), Context: &crdt.Context{}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	rec, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.Live(0) {
		got = append(got, string(e.Value))
	}
	if strings.Join(got, ",") != "aaa,b" {
		t.Errorf("siblings = %v, want [aaa b]", got)
	}
}

// TestStatsKeysMatchAScan: after random sets, deletes, increments, remote
// writes and expiries, the kept count equals a scan's once the purger ran.
func TestStatsKeysMatchAScan(t *testing.T) {
	clk := newFakeClock()
	s := openStore(t, Config{Dir: t.TempDir(), PurgeInterval: time.Hour}, clk)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 2000 {
		key := []byte(fmt.Sprintf("k%d", rng.IntN(200)))
		var w Write
		switch rng.IntN(5) {
		case 0, 1:
			w = Write{Op: OpSet, Key: key, Value: []byte("v")}
		case 2:
			w = Write{Op: OpDel, Key: key}
		case 3:
			w = Write{Op: OpIncr, Key: key, Delta: 1}
		default:
			w = Write{Op: OpSet, Key: key, Value: []byte("t"), Expiry: clk.ms() + int64(rng.IntN(3000))}
		}
		s.Apply(context.Background(), w) // a wrong type is refused, which is fine here
		if i%100 == 0 {
			clk.Add(time.Second)
		}
	}
	clk.Add(5 * time.Second)
	if err := s.purgeOnce(context.Background(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	var live int
	now := clk.ms()
	if err := s.Scan(context.Background(), nil, 0, func(_ []byte, r crdt.Record) bool {
		if r.Read(now).Found {
			live++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Keys != live {
		t.Fatalf("Stats.Keys = %d, a scan finds %d live keys", st.Keys, live)
	}
}
