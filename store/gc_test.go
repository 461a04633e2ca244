package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
)

// deadKeys returns the keys in the dead index.
func deadKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDead}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, string(it.Item().Key()[1:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// cacheConfigs are the writer's record cache as configured by default, and
// so small that it keeps nothing: the writer then learns from Badger
// whether a key has a dead-index entry.
var cacheConfigs = []struct {
	name string
	size int64
}{{"cached", 0}, {"uncached", 1}}

func openCache(t *testing.T, cacheSize int64) (*Store, *fakeClock) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.RecordCacheSize = cacheSize
	return openStore(t, cfg, clk), clk
}

// collect runs a whole GC sweep with a fresh cursor.
func collect(t *testing.T, s *Store, clk *fakeClock) {
	t.Helper()
	if err := s.collectStable(context.Background(), &gcSweep{}, clk.Now(), 1<<20); err != nil {
		t.Fatalf("collect: %v", err)
	}
}

func del(t testing.TB, s *Store, key string) {
	t.Helper()
	if res := s.Apply(context.Background(), Write{Op: OpDel, Key: []byte(key)}); res.Err != nil {
		t.Fatalf("del %q: %v", key, res.Err)
	}
}

// scanKeys returns the keys Scan shows.
func scanKeys(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	if err := s.Scan(context.Background(), nil, 0, func(k []byte, _ crdt.Record) bool {
		keys[string(k)] = true
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestGCByStability(t *testing.T) {
	peerID := crdt.NodeID(0x5eed)
	tests := []struct {
		name string
		// kill makes key "k" dead and returns the stable vector that
		// covers its context.
		kill func(t *testing.T, s *Store, clk *fakeClock) crdt.VersionVector
	}{
		{"deleted", func(t *testing.T, s *Store, _ *fakeClock) crdt.VersionVector {
			set(t, s, "k", "v", 0)
			del(t, s, "k")
			return s.Applied()
		}},
		{"deleted twice", func(t *testing.T, s *Store, _ *fakeClock) crdt.VersionVector {
			set(t, s, "k", "v", 0)
			del(t, s, "k")
			del(t, s, "k")
			return s.Applied()
		}},
		{"deleted missing key", func(t *testing.T, s *Store, _ *fakeClock) crdt.VersionVector {
			del(t, s, "k")
			return s.Applied()
		}},
		{"expired", func(t *testing.T, s *Store, clk *fakeClock) crdt.VersionVector {
			set(t, s, "k", "v", clk.ms()+1000)
			clk.Add(2 * time.Second)
			if got := deadKeys(t, s); len(got) != 0 {
				t.Fatalf("dead index before the purge saw the expiry: %q", got)
			}
			purge(t, s, clk) // the expiry fires: the record enters the index
			return s.Applied()
		}},
		{"remote tombstone", func(t *testing.T, s *Store, _ *fakeClock) crdt.VersionVector {
			p := newPeer(peerID)
			if _, err := s.ApplyRemote(context.Background(), []LogEntry{p.set("k", "v", 0), p.del("k")}); err != nil {
				t.Fatal(err)
			}
			return s.Applied()
		}},
		{"merged bare context", func(t *testing.T, s *Store, _ *fakeClock) crdt.VersionVector {
			ctx := crdt.Context{VV: crdt.VersionVector{{Node: peerID, Counter: 3}}}
			if err := s.MergeRecord(context.Background(), []byte("k"), crdt.Record{Context: ctx}, nil); err != nil {
				t.Fatal(err)
			}
			return ctx.VV
		}},
	}
	for _, tt := range tests {
		for _, cc := range cacheConfigs {
			t.Run(tt.name+"/"+cc.name, func(t *testing.T) {
				s, clk := openCache(t, cc.size)
				testGCByStability(t, s, clk, tt.kill)
			})
		}
	}
}

// testGCByStability: kill makes "k" dead; its record stays until the stable
// vector covers its context, then goes with its dead-index entry.
func testGCByStability(t *testing.T, s *Store, clk *fakeClock, kill func(*testing.T, *Store, *fakeClock) crdt.VersionVector) {
	set(t, s, "live", "v", 0)
	covering := kill(t, s, clk)
	set(t, s, "after", "v", 0) // stable never covers this one
	if got := deadKeys(t, s); len(got) != 1 || got[0] != "k" {
		t.Fatalf("dead index = %q, want [k]", got)
	}
	if st := s.GCStats(); st.DeadRecords != 1 {
		t.Fatalf("DeadRecords = %d, want 1", st.DeadRecords)
	}

	// Unknown, then short of the context: the record stays.
	var short crdt.VersionVector
	for _, e := range covering {
		short = short.With(e.Node, e.Counter-1)
	}
	for _, stable := range []crdt.VersionVector{nil, short} {
		s.SetStable(stable)
		collect(t, s, clk)
		if _, err := s.Get([]byte("k")); err != nil {
			t.Fatalf("stable %s: record dropped: %v", stable, err)
		}
	}

	s.SetStable(covering)
	if got := s.Stable(); !got.Equal(covering) {
		t.Fatalf("Stable() = %s, want %s", got, covering)
	}
	collect(t, s, clk)
	if _, err := s.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record kept once stable: %v", err)
	}
	if keys := scanKeys(t, s); keys["k"] || !keys["live"] || !keys["after"] {
		t.Errorf("scan after GC = %v", keys)
	}
	if got := deadKeys(t, s); len(got) != 0 {
		t.Errorf("dead index after GC = %q", got)
	}
	if st := s.GCStats(); st != (GCStats{DroppedStable: 1}) {
		t.Errorf("GCStats = %+v, want one dropped by stability", st)
	}
	if st := s.Stats(); st.DroppedStable != 1 || st.Keys != 2 {
		t.Errorf("Stats = %+v", st)
	}
	// The horizon's index entry, left behind, is dropped quietly.
	clk.Add(25 * time.Hour)
	purge(t, s, clk)
	if n := indexLen(t, s); n != 0 {
		t.Errorf("index entries = %d after the horizon", n)
	}
	if st := s.GCStats(); st.DroppedHorizon != 0 {
		t.Errorf("DroppedHorizon = %d for a record already gone", st.DroppedHorizon)
	}
}

func TestGCRevived(t *testing.T) {
	tests := []struct {
		name   string
		revive func(t *testing.T, s *Store, clk *fakeClock)
	}{
		{"set after delete", func(t *testing.T, s *Store, _ *fakeClock) {
			set(t, s, "k", "v1", 0)
			del(t, s, "k")
			if got := deadKeys(t, s); len(got) != 1 {
				t.Fatalf("dead index = %q after delete", got)
			}
			set(t, s, "k", "v2", 0)
		}},
		{"set after expiry", func(t *testing.T, s *Store, clk *fakeClock) {
			set(t, s, "k", "v1", clk.ms()+10)
			clk.Add(time.Second)
			purge(t, s, clk)
			if got := deadKeys(t, s); len(got) != 1 {
				t.Fatalf("dead index = %q after expiry", got)
			}
			set(t, s, "k", "v2", 0)
		}},
		{"set after expiry, before the purge", func(t *testing.T, s *Store, clk *fakeClock) {
			set(t, s, "k", "v1", clk.ms()+10)
			clk.Add(time.Second)
			set(t, s, "k", "v2", 0)
		}},
		{"merge of a newer value", func(t *testing.T, s *Store, _ *fakeClock) {
			p := newPeer(0xabc)
			if _, err := s.ApplyRemote(context.Background(), []LogEntry{p.set("k", "v1", 0), p.del("k")}); err != nil {
				t.Fatal(err)
			}
			p.set("k", "v2", 0)
			if err := s.MergeRecord(context.Background(), []byte("k"), p.recs["k"], crdt.VersionVector{{Node: 0xabc, Counter: 3}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		for _, cc := range cacheConfigs {
			t.Run(tt.name+"/"+cc.name, func(t *testing.T) {
				s, clk := openCache(t, cc.size)
				tt.revive(t, s, clk)
				if got := deadKeys(t, s); len(got) != 0 {
					t.Errorf("dead index = %q after revival", got)
				}
				if st := s.GCStats(); st.DeadRecords != 0 {
					t.Errorf("DeadRecords = %d after revival", st.DeadRecords)
				}
				s.SetStable(s.Applied())
				collect(t, s, clk)
				purge(t, s, clk)
				if got, _ := readValue(t, s, "k"); got != "v2" {
					t.Fatalf("k = %q, want v2", got)
				}
				if st := s.GCStats(); st.DroppedStable != 0 || st.DroppedHorizon != 0 {
					t.Errorf("GCStats = %+v", st)
				}
			})
		}
	}
}

// TestGCHorizonFallback: without a stable vector the horizon drops dead
// records, the dead index's entry with them; a record that died before the
// index existed (no entry) goes the same way.
func TestGCHorizonFallback(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.TombstoneHorizon = time.Hour
	s := openStore(t, cfg, clk)
	set(t, s, "k", "v", 0)
	del(t, s, "k")
	// "old" died before the index existed: a record and its horizon's
	// index entry, as an older version wrote them.
	p := newPeer(0x01d)
	p.set("old", "v", 0)
	p.del("old")
	old := p.recs["old"]
	err := s.db.Update(func(txn *badger.Txn) error {
		return errors.Join(
			txn.Set(appendRecordKey(nil, []byte("old")), crdt.AppendRecord(nil, old)),
			txn.Set(appendIndexKey(nil, old.LastWrite().Millis()+time.Hour.Milliseconds(), []byte("old")), nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	purge(t, s, clk)
	for _, k := range []string{"k", "old"} {
		if _, err := s.Get([]byte(k)); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s kept past the horizon: %v", k, err)
		}
	}
	if got := deadKeys(t, s); len(got) != 0 {
		t.Errorf("dead index = %q", got)
	}
	if st := s.GCStats(); st != (GCStats{DroppedHorizon: 2}) {
		t.Errorf("GCStats = %+v", st)
	}
}

// TestGCStaleEntry: an entry whose record is live or gone is dropped by the
// sweep, the record left alone.
func TestGCStaleEntry(t *testing.T) {
	s, clk := openMem(t)
	set(t, s, "live", "v", 0)
	err := s.db.Update(func(txn *badger.Txn) error {
		return errors.Join(txn.Set(appendDeadKey(nil, []byte("live")), nil), txn.Set(appendDeadKey(nil, []byte("gone")), nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.SetStable(crdt.VersionVector{})
	collect(t, s, clk)
	if got := deadKeys(t, s); len(got) != 0 {
		t.Errorf("dead index = %q", got)
	}
	if got, _ := readValue(t, s, "live"); got != "v" {
		t.Errorf("live = %q", got)
	}
	if st := s.GCStats(); st.DroppedStable != 0 {
		t.Errorf("GCStats = %+v", st)
	}
}

// TestGCSweep: a sweep proceeds in bounded chunks from its cursor, and a new
// one starts only when the stable vector or the dead index changed.
func TestGCSweep(t *testing.T) {
	s, clk := openMem(t)
	const n = 2*gcChunk + 100
	ws := make([]Write, 0, n)
	for i := range n {
		ws = append(ws, Write{Op: OpDel, Key: fmt.Appendf(nil, "k%05d", i)})
	}
	out := make([]Result, n)
	s.ApplyBatch(context.Background(), ws, out)
	if st := s.GCStats(); st.DeadRecords != n {
		t.Fatalf("DeadRecords = %d, want %d", st.DeadRecords, n)
	}
	ctx := context.Background()
	var g gcSweep
	step := func() {
		t.Helper()
		if err := s.collectStable(ctx, &g, clk.Now(), 1); err != nil {
			t.Fatal(err)
		}
	}
	step() // unknown stable vector: nothing
	if g.active || g.done {
		t.Fatalf("sweep without a stable vector: %+v", g)
	}

	s.SetStable(s.Applied())
	for i, want := range []int{n - gcChunk, n - 2*gcChunk, 0} {
		step()
		if got := len(deadKeys(t, s)); got != want {
			t.Fatalf("step %d: %d dead left, want %d", i, got, want)
		}
	}
	if g.active || !g.done {
		t.Fatalf("sweep not complete: %+v", g)
	}
	if st := s.GCStats(); st.DroppedStable != n || st.DeadRecords != 0 {
		t.Fatalf("GCStats = %+v", st)
	}

	// Nothing changed: no sweep. A new dead record: a sweep, which the
	// unchanged vector does not let drop it.
	step()
	if g.active || g.scanned != n {
		t.Fatalf("idle step swept: %+v", g)
	}
	del(t, s, "new")
	step()
	if g.active || g.scanned != 1 {
		t.Fatalf("sweep after a delete: %+v", g)
	}
	if got := deadKeys(t, s); len(got) != 1 {
		t.Fatalf("dead index = %q", got)
	}
	// A vector that covers it: the next sweep drops it.
	s.SetStable(s.Applied())
	step()
	if got := deadKeys(t, s); len(got) != 0 || g.scanned != 1 {
		t.Fatalf("dead index = %q, sweep %+v", got, g)
	}
}

// TestGCWriterRechecks: the writer drops a record the purger picked only if
// it is still dead and covered when the request is applied (a write may
// come between).
func TestGCWriterRechecks(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, s *Store) // "k" is dead and indexed before
		stable   func(s *Store) crdt.VersionVector
		wantKept bool
		wantDead int
	}{
		{"dead and covered", func(*testing.T, *Store) {}, (*Store).Applied, false, 0},
		{"context grew past stable", func(t *testing.T, s *Store) { del(t, s, "k") }, func(s *Store) crdt.VersionVector {
			return crdt.VersionVector{{Node: s.NodeID(), Counter: 2}}
		}, true, 1},
		{"revived", func(t *testing.T, s *Store) { set(t, s, "k", "v2", 0) }, (*Store).Applied, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMem(t)
			set(t, s, "k", "v", 0)
			del(t, s, "k")
			tt.setup(t, s)
			r := s.getRequest(reqGC)
			r.indexKeys, r.vv = [][]byte{appendDeadKey(nil, []byte("k"))}, tt.stable(s)
			if err := s.do(context.Background(), r); err != nil || r.err != nil {
				t.Fatal(err, r.err)
			}
			if _, err := s.Get([]byte("k")); (err == nil) != tt.wantKept {
				t.Errorf("record kept = %v, want %v", err == nil, tt.wantKept)
			}
			if got := deadKeys(t, s); len(got) != tt.wantDead {
				t.Errorf("dead index = %q", got)
			}
			if st := s.GCStats(); st.DeadRecords != int64(tt.wantDead) {
				t.Errorf("DeadRecords = %d", st.DeadRecords)
			}
		})
	}
}

// TestGCCountersOnFailedCommit: counters move only with a commit.
func TestGCCountersOnFailedCommit(t *testing.T) {
	s, failing := openFailing(t)
	set(t, s, "k", "v", 0)
	failing.Store(true)
	if res := s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("k")}); res.Err == nil {
		t.Fatal("delete committed")
	}
	failing.Store(false)
	if st := s.GCStats(); st.DeadRecords != 0 {
		t.Errorf("DeadRecords = %d after a failed commit", st.DeadRecords)
	}
	del(t, s, "k")
	if st := s.GCStats(); st.DeadRecords != 1 {
		t.Errorf("DeadRecords = %d", st.DeadRecords)
	}
}

func TestDeadRecordsCountedOnOpen(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Dir: t.TempDir(), PurgeInterval: time.Hour}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		del(t, s, k)
	}
	set(t, s, "b", "v", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg, clk)
	if st := s.GCStats(); st.DeadRecords != 2 {
		t.Errorf("DeadRecords after reopen = %d, want 2", st.DeadRecords)
	}
	// Not in the writer's cache: it asks Badger.
	set(t, s, "a", "v", 0) // revived
	del(t, s, "c")         // dead already
	del(t, s, "b")         // dies
	if got := deadKeys(t, s); fmt.Sprint(got) != "[b c]" {
		t.Errorf("dead index = %q, want [b c]", got)
	}
	if st := s.GCStats(); st.DeadRecords != 2 {
		t.Errorf("DeadRecords = %d, want 2", st.DeadRecords)
	}
	if s.Stable() != nil {
		t.Errorf("stable vector survived a restart: %s", s.Stable())
	}
}

// ship applies to "to" every log entry of "from" that "to" lacks.
func ship(t *testing.T, from, to *Store) {
	t.Helper()
	for _, e := range from.Applied() {
		have := to.Applied().Get(e.Node)
		if have >= e.Counter {
			continue
		}
		entries, err := from.ReadLog(e.Node, have+1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.ApplyRemote(context.Background(), entries); err != nil {
			t.Fatal(err)
		}
	}
}

// minVV returns the pointwise minimum: what every one of the vectors covers.
func minVV(vvs ...crdt.VersionVector) crdt.VersionVector {
	var out crdt.VersionVector
	for _, e := range vvs[0] {
		c := e.Counter
		for _, o := range vvs[1:] {
			c = min(c, o.Get(e.Node))
		}
		out = out.With(e.Node, c)
	}
	return out
}

func record(t *testing.T, s *Store, key string) crdt.Record {
	t.Helper()
	r, err := s.Get([]byte(key))
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return r
}

// TestDroppedTombstoneThenRewrite is the regression that GC by stability
// depends on: once A dropped a tombstone that B still holds, A's next write
// of the key must reach B, by log and by whole records, and no copy of the
// deleted value may come back.
func TestDroppedTombstoneThenRewrite(t *testing.T) {
	// setup: A set k, B applied it (C too, and stopped there), A deleted
	// k, B applied it, every member of {A, B} saw it, A dropped k.
	setup := func(t *testing.T) (a, b, c *Store) {
		a, clkA := openMem(t)
		b, _ = openMem(t)
		c, _ = openMem(t)
		set(t, a, "k", "old", 0)
		ship(t, a, b)
		ship(t, a, c)
		del(t, a, "k")
		ship(t, a, b)
		a.SetStable(minVV(a.Applied(), b.Applied()))
		collect(t, a, clkA)
		if _, err := a.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A kept k: %v", err)
		}
		if r := record(t, b, "k"); len(r.Entries) == 0 {
			t.Fatal("B holds no tombstone")
		}
		return a, b, c
	}
	want := func(t *testing.T, s *Store, name, value string) {
		t.Helper()
		got, found := readValue(t, s, "k")
		if got != value || found != (value != "") {
			t.Errorf("%s reads %q (found %v), want %q", name, got, found, value)
		}
	}
	merge := func(t *testing.T, to, from *Store) {
		t.Helper()
		if err := to.MergeRecord(context.Background(), []byte("k"), record(t, from, "k"), from.Applied()); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("log", func(t *testing.T) {
		a, b, _ := setup(t)
		set(t, a, "k", "new", 0)
		ship(t, a, b)
		want(t, a, "A", "new")
		want(t, b, "B", "new")
	})
	t.Run("records", func(t *testing.T) {
		a, b, c := setup(t)
		set(t, a, "k", "new", 0)
		merge(t, a, b) // B's tombstone and context
		merge(t, b, a) // A's new value
		merge(t, a, c) // C's copy of the deleted value
		merge(t, b, c)
		want(t, a, "A", "new")
		want(t, b, "B", "new")
		ship(t, a, b) // the log entry of the new value, after the record
		want(t, b, "B", "new")
	})
	t.Run("records before the rewrite", func(t *testing.T) {
		a, b, c := setup(t)
		merge(t, a, b) // B's tombstone
		merge(t, b, a) // nothing, with A's applied vector
		merge(t, a, c) // C's copy of the deleted value
		merge(t, b, c)
		want(t, a, "A", "")
		want(t, b, "B", "")
		set(t, a, "k", "new", 0)
		ship(t, a, b)
		want(t, b, "B", "new")
	})
}

// TestDeltaAfterHorizonDrop: a counter increment made on C concurrently
// with B's delete converts the register under its writer's dot, so C's delta
// carries that old dot. When it reaches B after B dropped the tombstone at
// the horizon, the old value must not come back as the counter's base: only
// C's own increment shows.
func TestDeltaAfterHorizonDrop(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.TombstoneHorizon = time.Minute
	b := openStore(t, cfg, clk)
	a, c := newPeer(0xa), newPeer(0xc)
	set := a.set("k", "10", 0)
	c.recs["k"] = a.recs["k"]
	incr := c.incr("k", 4) // concurrent with the delete below
	if _, err := b.ApplyRemote(context.Background(), []LogEntry{set}); err != nil {
		t.Fatal(err)
	}
	del(t, b, "k")
	clk.Add(time.Minute)
	purge(t, b, clk)
	if _, err := b.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tombstone kept past the horizon: %v", err)
	}
	if _, err := b.ApplyRemote(context.Background(), []LogEntry{incr}); err != nil {
		t.Fatal(err)
	}
	if v, ok := readValue(t, b, "k"); !ok || v != "4" {
		t.Fatalf("k = %q, %v; want the concurrent increment alone, 4", v, ok)
	}
}
