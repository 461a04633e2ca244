package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/replication/simkit"
	"github.com/upu/upu/store"
)

// The real store is a replication Store.
var _ Store = (*store.Store)(nil)

func openStore(t *testing.T, clk store.Clock) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{InMemory: true}, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestMemStoreMatchesStore runs one random sequence of local writes, remote
// entries (duplicated, reordered, with gaps) and record merges (with and
// without a seen vector, zero records included) on a simkit.Store and on a real
// store, and requires identical records, vectors and logs: the
// simulation's store is the real one's model.
func TestMemStoreMatchesStore(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.UnixMilli(1_700_000_000_000))
	real := openStore(t, clk)
	mem := simkit.NewStore(real.NodeID(), func() int64 { return clk.Now().UnixMilli() })
	rng := rand.New(rand.NewPCG(1, 2))

	// Two other nodes make deltas, as peers would.
	peers := []*simkit.Store{
		simkit.NewStore(0x1111, func() int64 { return clk.Now().UnixMilli() - 5 }),
		simkit.NewStore(0x2222, func() int64 { return clk.Now().UnixMilli() + 5 }),
	}
	made := make([][]store.LogEntry, len(peers)) // per peer, every entry in order
	keys := []string{"a", "b", "c", "n"}
	randWrite := func() store.Write {
		key := keys[rng.IntN(len(keys))]
		w := store.Write{Key: []byte(key), ReqID: fmt.Sprint("r", rng.IntN(100))}
		switch {
		case key == "n":
			w.Op, w.Delta = store.OpIncr, int64(rng.IntN(9))-3
		case rng.IntN(4) == 0:
			w.Op = store.OpDel
		default:
			w.Op, w.Value = store.OpSet, fmt.Appendf(nil, "v%d", rng.IntN(1000))
			if rng.IntN(3) == 0 {
				w.Expiry = clk.Now().UnixMilli() + int64(rng.IntN(200))
			}
		}
		return w
	}
	for i := range 600 {
		clk.Advance(time.Duration(rng.IntN(20)) * time.Millisecond)
		switch r := rng.IntN(10); {
		case r < 3: // local write on both
			w := randWrite()
			got := real.Apply(ctx, w)
			want, _ := mem.Write(w)
			if (got.Err == nil) != (want.Err == nil) || got.Counter != want.Counter || !got.Context.Equal(want.Context) {
				t.Fatalf("op %d: local write %+v: real %+v, mem %+v", i, w, got, want)
			}
		case r < 6: // a peer writes
			p := rng.IntN(len(peers))
			w := randWrite()
			if w.Op == store.OpIncr {
				w.Op, w.Value = store.OpSet, []byte("7") // Incr on a peer's stale view may fail its type check
			}
			if res, e := peers[p].Write(w); res.Err == nil {
				made[p] = append(made[p], e)
			}
		case r < 9: // a batch of a peer's entries arrives: a window with gaps and repeats
			p := rng.IntN(len(peers))
			if len(made[p]) == 0 {
				continue
			}
			// Around what is applied: mostly new entries, some repeats, some
			// beyond a gap.
			from := max(0, min(len(made[p])-1, int(real.Applied().Get(peers[p].NodeID()))+rng.IntN(5)-2))
			to := min(len(made[p]), from+1+rng.IntN(6))
			batch := append([]store.LogEntry(nil), made[p][from:to]...)
			if rng.IntN(3) == 0 {
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			}
			gn, gerr := real.ApplyRemote(ctx, batch)
			wn, werr := mem.ApplyRemote(ctx, batch)
			if gn != wn || (gerr == nil) != (werr == nil) {
				t.Fatalf("op %d: ApplyRemote: real %d %v, mem %d %v", i, gn, gerr, wn, werr)
			}
		default: // whole records from a peer merge in, as a sync chunk's do
			p := peers[rng.IntN(len(peers))]
			var recs []store.KeyRecord
			for _, key := range keys {
				switch rec, ok := p.Recs[key]; {
				case ok && rng.IntN(2) == 0:
					recs = append(recs, store.KeyRecord{Key: []byte(key), Record: rec})
				case !ok && rng.IntN(2) == 0:
					recs = append(recs, store.KeyRecord{Key: []byte(key)}) // what the peer lacks
				}
			}
			var seen crdt.VersionVector // unknown, or the peer's applied vector
			if rng.IntN(3) > 0 {
				seen = p.Applied()
			}
			if err := real.MergeRecords(ctx, recs, seen); err != nil {
				t.Fatal(err)
			}
			if err := mem.MergeRecords(ctx, recs, seen); err != nil {
				t.Fatal(err)
			}
		}
		if !real.Applied().Equal(mem.Applied()) {
			t.Fatalf("op %d: applied: real %s, mem %s", i, real.Applied(), mem.Applied())
		}
	}

	if a := real.Applied(); a.Get(0x1111) < 20 || a.Get(0x2222) < 20 || a.Get(real.NodeID()) < 20 {
		t.Fatalf("too little happened to compare: applied %s", a)
	}

	// Records (the purger may have run on the real store:
	// compare what both show, and the contexts).
	now := clk.Now().UnixMilli()
	seen := 0
	err := real.Scan(ctx, nil, 0, func(key []byte, r crdt.Record) bool {
		seen++
		m := mem.Recs[string(key)]
		if !sameView(r.Read(now), m.Read(now)) || !r.Context.Equal(m.Context) {
			t.Errorf("key %q: real %+v, mem %+v", key, r, m)
		}
		return true
	})
	if err != nil || seen != len(mem.Recs) {
		t.Fatalf("scan: %v, %d records, mem has %d", err, seen, len(mem.Recs))
	}
	if d, _, _ := real.Digest(ctx); d != mem.Digest(now) {
		t.Fatalf("digest: real %s, mem %s", d, mem.Digest(now))
	}
	// Logs: every window, including past the end and from zero.
	for _, e := range real.Applied() {
		for from := uint64(0); from <= e.Counter+1; from++ {
			for _, limit := range []int{0, 1, 3, 1000} {
				got, gerr := real.ReadLog(e.Node, from, limit)
				want, werr := mem.ReadLog(e.Node, from, limit)
				if (gerr == nil) != (werr == nil) || (gerr != nil && !errors.Is(gerr, store.ErrLogTrimmed)) || len(got) != len(want) {
					t.Fatalf("ReadLog(%s, %d, %d): real %d %v, mem %d %v", e.Node, from, limit, len(got), gerr, len(want), werr)
				}
				for i := range got {
					g, w := got[i], want[i]
					if g.Origin != w.Origin || g.Seq != w.Seq || !bytes.Equal(g.Key, w.Key) || g.TS != w.TS || g.ReqID != w.ReqID ||
						!bytes.Equal(g.Delta, w.Delta) {
						t.Fatalf("ReadLog(%s, %d): entry %d: real %+v, mem %+v", e.Node, from, i, g, w)
					}
				}
			}
		}
	}
}

// TestRealStoreRing runs three Machines over real stores, delivering
// messages by hand, and requires equal digests once all is quiet.
func TestRealStoreRing(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.UnixMilli(1_700_000_000_000))
	type node struct {
		st *store.Store
		m  *Machine
	}
	var nodes []*node
	var ring []Peer
	for range 3 {
		st := openStore(t, clk)
		m, err := NewMachine(Config{Self: st.NodeID(), ProbeTicks: 5, RetransmitTicks: 4}, st)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &node{st: st, m: m})
		ring = append(ring, Peer{ID: st.NodeID(), Addr: "n" + st.NodeID().String()})
	}
	byID := map[crdt.NodeID]*node{}
	for _, n := range nodes {
		n.m.SetMembers(ring)
		byID[n.st.NodeID()] = n
	}
	for i := range 90 {
		n := nodes[i%3]
		key := []byte(fmt.Sprintf("k%d", i%20))
		var w store.Write
		switch i % 5 {
		case 0:
			w = store.Write{Op: store.OpIncr, Key: []byte("counter"), Delta: int64(i)}
		case 1:
			w = store.Write{Op: store.OpDel, Key: key}
		default:
			w = store.Write{Op: store.OpSet, Key: key, Value: fmt.Appendf(nil, "v%d", i)}
		}
		if res := n.st.Apply(ctx, w); res.Err != nil {
			t.Fatal(res.Err)
		}
		n.m.LocalWrite()
	}
	// A system key goes around the ring like data.
	if res := nodes[0].st.Apply(ctx, store.Write{Op: store.OpSet, Key: []byte("parent"), Value: []byte("dc-root"), System: true}); res.Err != nil {
		t.Fatal(res.Err)
	}
	nodes[0].m.LocalWrite()
	converged := func() bool {
		for _, n := range nodes[1:] {
			if !n.st.Applied().Equal(nodes[0].st.Applied()) {
				return false
			}
		}
		return len(nodes[0].st.Applied()) == 3
	}
	for tick := 0; !converged(); tick++ {
		if tick == 200 {
			t.Fatalf("no convergence: %v %v %v", nodes[0].st.Applied(), nodes[1].st.Applied(), nodes[2].st.Applied())
		}
		for _, n := range nodes {
			n.m.Tick()
			for _, env := range drive(n.m, n.st) {
				// Through the wire encoding, which carries the system flag.
				msg, err := UnmarshalMessage(AppendMessage(nil, &env.Msg))
				if err != nil {
					t.Fatal(err)
				}
				if err := byID[env.To.ID].m.Step(ctx, n.st.NodeID(), msg); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var digests []string
	for _, n := range nodes {
		d, _, err := n.st.Digest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Fatalf("digests differ: %v", digests)
	}
	for _, n := range nodes {
		if v, _, err := n.st.ReadSystem([]byte("parent")); err != nil || string(v.Value) != "dc-root" {
			t.Fatalf("%s: system key parent %q, %v", n.st.NodeID(), v.Value, err)
		}
		if _, _, err := n.st.Read([]byte("parent")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: the system key is visible to data reads: %v", n.st.NodeID(), err)
		}
	}
	v, _, err := nodes[2].st.Read([]byte("counter"))
	if want := int64(0 + 5 + 10 + 15 + 20 + 25 + 30 + 35 + 40 + 45 + 50 + 55 + 60 + 65 + 70 + 75 + 80 + 85); err != nil || v.Counter != want {
		t.Fatalf("counter %+v %v, want %d", v, err, want)
	}
}

// TestRealStoreResync runs a resync between Machines over real stores: the
// full digest sync goes through the store's digests, record merges under a
// seen vector and RaiseApplied.
func TestRealStoreResync(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.UnixMilli(1_700_000_000_000))
	stores := []*store.Store{openStore(t, clk), openStore(t, clk)}
	machines := map[crdt.NodeID]*Machine{}
	var ring []Peer
	var ids []crdt.NodeID
	for _, st := range stores {
		ids = append(ids, st.NodeID())
		m, err := NewMachine(Config{Self: st.NodeID(), ProbeTicks: 5, RetransmitTicks: 4, DigestBits: 6, MaxBatchEntries: 8}, st)
		if err != nil {
			t.Fatal(err)
		}
		machines[st.NodeID()] = m
		ring = append(ring, Peer{ID: st.NodeID(), Addr: "n" + st.NodeID().String()})
	}
	for _, m := range machines {
		m.SetMembers(ring)
	}
	a, b := stores[0], stores[1]
	mb, ma := machines[b.NodeID()], machines[a.NodeID()]
	run := func(what string, until func() bool) {
		t.Helper()
		for tick := 0; !until(); tick++ {
			if tick == 300 {
				t.Fatalf("%s: not after %d ticks", what, tick)
			}
			for i, id := range ids {
				m := machines[id]
				m.Tick()
				for _, env := range drive(m, stores[i]) {
					if env.Msg.Type == MsgPush && env.To.ID == b.NodeID() && mb.Resyncing() {
						continue // A's records reach B by the sync alone
					}
					msg, err := UnmarshalMessage(AppendMessage(nil, &env.Msg))
					if err != nil {
						t.Fatal(err)
					}
					if err := machines[env.To.ID].Step(ctx, id, msg); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	// System keys travel in the sync too: one set, one set and deleted.
	for _, w := range []store.Write{
		{Op: store.OpSet, Key: []byte("parent"), Value: []byte("dc-root"), System: true},
		{Op: store.OpSet, Key: []byte("k03"), Value: []byte("sys"), System: true},
		{Op: store.OpDel, Key: []byte("k03"), System: true},
	} {
		if res := a.Apply(ctx, w); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	for i := range 60 {
		w := store.Write{Op: store.OpSet, Key: fmt.Appendf(nil, "k%02d", i), Value: []byte("v")}
		if i%7 == 0 {
			w = store.Write{Op: store.OpDel, Key: fmt.Appendf(nil, "k%02d", i-1)}
		}
		if res := a.Apply(ctx, w); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	// B resyncs before it heard anything: A's records reach it in the
	// sync's chunks, and the log takes over from there.
	mb.Resync()
	run("B's resync", func() bool { return !mb.Resyncing() && ma.Stats().SyncsDone == 1 })
	if st := ma.Stats(); st.ResyncsServed != 1 || st.BucketsDiffering == 0 || st.SyncRecordsSent == 0 {
		t.Fatalf("A %+v", st.Counters)
	}
	if st := mb.Stats(); st.ResyncsDone != 1 || st.RecordsMerged != ma.Stats().SyncRecordsSent {
		t.Fatalf("B %+v", st.Counters)
	}
	da, _, err := a.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if db, _, err := b.Digest(ctx); err != nil || db != da || !b.Applied().Equal(a.Applied()) {
		t.Fatalf("digests %s %s (%v), applied %s %s", da, db, err, a.Applied(), b.Applied())
	}
	ba, err := a.BucketDigests(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if bb, err := b.BucketDigests(ctx, 6); err != nil || !slices.Equal(ba, bb) {
		t.Fatalf("bucket digests differ after the sync (%v)", err)
	}
	if v, _, err := b.ReadSystem([]byte("parent")); err != nil || string(v.Value) != "dc-root" {
		t.Fatalf("B's system key parent: %q, %v", v.Value, err)
	}
	if _, _, err := b.ReadSystem([]byte("k03")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("B's deleted system key k03: %v, want not found", err)
	}
}
