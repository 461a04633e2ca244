package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// exchange runs rounds of message passing among units: each round takes
// every unit's ready messages and delivers them, encoded and decoded as on
// the wire, to the addressed unit. see, if not nil, is shown every message
// and returns false to lose it. Messages to a node that is not among units
// are lost.
func exchange(t *testing.T, rounds int, see func(from crdt.NodeID, e Envelope) bool, units ...*unit) {
	t.Helper()
	byID := map[crdt.NodeID]*unit{}
	for _, u := range units {
		byID[u.id] = u
	}
	for range rounds {
		for _, u := range units {
			for _, e := range u.ready() {
				to := byID[e.To.ID]
				if to == nil || (see != nil && !see(u.id, e)) {
					continue
				}
				msg, err := UnmarshalMessage(AppendMessage(nil, &e.Msg))
				if err != nil {
					t.Fatal(err)
				}
				to.step(u.id, msg)
			}
		}
	}
}

// chunksOf returns a see function for exchange that collects the sync
// chunks one node sends.
func chunksOf(from crdt.NodeID, into *[]Message) func(crdt.NodeID, Envelope) bool {
	return func(f crdt.NodeID, e Envelope) bool {
		if f == from && e.Msg.Type == MsgSnap {
			*into = append(*into, e.Msg)
		}
		return true
	}
}

// copyRecords merges every record of from into to, as a merge from
// outside the log would: to's applied vector stays.
func copyRecords(t *testing.T, from, to *unit) {
	t.Helper()
	var recs []store.KeyRecord
	for _, k := range from.st.Keys(nil) {
		recs = append(recs, store.KeyRecord{Key: []byte(k), Record: from.st.Recs[k]})
	}
	if err := to.st.MergeRecords(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

// copyState makes to hold what from holds, records and vector.
func copyState(t *testing.T, from, to *unit) {
	t.Helper()
	copyRecords(t, from, to)
	if err := to.st.RaiseApplied(context.Background(), from.st.Applied()); err != nil {
		t.Fatal(err)
	}
}

func (u *unit) del(key string) {
	u.t.Helper()
	if res, _ := u.st.Write(store.Write{Op: store.OpDel, Key: []byte(key)}); res.Err != nil {
		u.t.Fatal(res.Err)
	}
	u.m.LocalWrite()
}

func (u *unit) found(key string) bool { return u.st.View(key, u.st.Wall()).Found }

// checkTiling checks that the chunks' ranges cover the key space in order,
// without gaps or overlaps, and that only the last is Done.
func checkTiling(t *testing.T, chunks []Message) {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	for i, c := range chunks {
		var want []byte
		if i > 0 {
			want = chunks[i-1].End
		}
		if string(c.Start) != string(want) || c.Done != (i == len(chunks)-1) || (c.Done && c.End != nil) || (!c.Done && c.End == nil) {
			t.Fatalf("chunk %d of %d: [%q, %q) done=%v after [%q, %q)", i, len(chunks), c.Start, c.End, c.Done, want, want)
		}
	}
}

func popcount(bitmap []byte) (n int) {
	for _, b := range bitmap {
		for ; b != 0; b &= b - 1 {
			n++
		}
	}
	return n
}

var syncCfg = Config{ProbeTicks: 1000, RetransmitTicks: 5, DigestBits: 4, MaxBatchEntries: 2}

// newPair returns A and B in a ring of two.
func newPair(t *testing.T, cfg Config) (a, b *unit) {
	a, b = newUnit(t, nA, cfg), newUnit(t, nB, cfg)
	a.m.SetMembers(ringOf(nA, nB))
	b.m.SetMembers(ringOf(nA, nB))
	return a, b
}

// TestMachineDigestSync: A's log of its own writes was trimmed, so B, which
// lacks them, gets the records of the differing buckets in chunks, then
// the log from there on.
func TestMachineDigestSync(t *testing.T) {
	a, b := newPair(t, syncCfg)
	for i := range 5 {
		a.set(fmt.Sprintf("k%d", i), "old")
	}
	a.st.Trim(nA, 1) // the log holds seq 5 only
	b.set("b-own", "x")
	var chunks []Message
	exchange(t, 30, chunksOf(nA, &chunks), a, b)
	if !b.st.Applied().Equal(a.st.Applied()) || a.st.Digest(0) != b.st.Digest(0) {
		t.Fatalf("not converged:\n%s\n%s", a.st, b.st)
	}
	checkTiling(t, chunks)
	var sent int
	for _, c := range chunks {
		sent += len(c.Records)
		if len(c.Records) > syncCfg.MaxBatchEntries || !c.Seen.Equal(chunks[0].Seen) {
			t.Fatalf("chunk %+v", c)
		}
		for _, r := range c.Records {
			if !inBuckets(c.Buckets, c.Bits, r.Key) {
				t.Fatalf("record %q of a bucket that does not differ", r.Key)
			}
		}
	}
	// Seen is A's whole vector, B's origin included (B pushed b-own to A,
	// its successor, first); Applied, for the raise, leaves B out.
	last := chunks[len(chunks)-1]
	if !last.Seen.Equal(vv(uint64(nA), 5, uint64(nB), 1)) || !last.Applied.Equal(vv(uint64(nA), 5)) {
		t.Fatalf("last chunk seen %s applied %s", last.Seen, last.Applied)
	}
	st := a.m.Stats()
	if st.SyncsStarted != 1 || st.SyncsDone != 1 || st.DigestRequestsSent != 1 || st.SyncRecordsSent != uint64(sent) || sent < 5 || st.BucketsDiffering == 0 {
		t.Fatalf("sent %d records, stats %+v", sent, st.Counters)
	}
	if bs := b.m.Stats(); bs.DigestRequestsReceived != 1 || bs.SyncChunksReceived != uint64(len(chunks)) || bs.RecordsMerged != uint64(sent) {
		t.Fatalf("receiver stats %+v", bs.Counters)
	}
	// B's log of A begins after what the sync covered.
	if _, err := b.st.ReadLog(nA, 1, 10); !errors.Is(err, store.ErrLogTrimmed) {
		t.Fatalf("B's log of A: %v", err)
	}
	// New writes flow by the log again.
	a.set("k-new", "new")
	envs := a.ready()
	if p := only(slices.Clone(envs), MsgPush); len(p) != 1 || p[0].Msg.Entries[0].Seq != 6 {
		t.Fatalf("after the sync: %+v", envs)
	}
}

// TestMachineSyncWith: a digest sync begun by peer ID, towards a member
// that is no ring neighbour or towards a contact outside the ring, brings
// the peer to hold what this node holds; a contact gets no push, and an
// unknown node no sync.
func TestMachineSyncWith(t *testing.T) {
	const nD crdt.NodeID = 0x0d
	tests := []struct {
		name  string
		setup func(a, c *unit)
	}{
		{"member, not a neighbour", func(a, c *unit) {
			a.m.SetMembers(ringOf(nA, nB, nC, nD))
			c.m.SetMembers(ringOf(nA, nB, nC, nD))
		}},
		{"contact outside the ring", func(a, c *unit) {
			a.m.SetMembers(ringOf(nA, nB))
			c.m.SetMembers(ringOf(nC))
			a.m.AddContact(Peer{ID: nC, Addr: "addr-" + nC.String()})
			c.m.AddContact(Peer{ID: nA, Addr: "addr-" + nA.String()})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, c := newUnit(t, nA, syncCfg), newUnit(t, nC, syncCfg)
			tt.setup(a, c)
			for i := range 5 {
				a.set(fmt.Sprintf("k%d", i), "v")
			}
			if a.m.SyncWith(0x99) {
				t.Fatal("a sync towards a node neither member nor contact")
			}
			if !a.m.SyncWith(nC) {
				t.Fatal("SyncWith refused")
			}
			var pushes int
			exchange(t, 30, func(from crdt.NodeID, e Envelope) bool {
				if e.To.ID == nC && e.Msg.Type == MsgPush {
					pushes++
				}
				return true
			}, a, c)
			if !c.st.Applied().Equal(a.st.Applied()) || a.st.Digest(0) != c.st.Digest(0) {
				t.Fatalf("not synced:\n%s\n%s", a.st, c.st)
			}
			if pushes != 0 {
				t.Fatalf("%d pushes to C, which is no successor", pushes)
			}
			if st := a.m.Stats(); st.SyncsStarted != 1 || st.SyncsDone != 1 {
				t.Fatalf("stats %+v", st.Counters)
			}
		})
	}
}

// TestMachineDigestsAfterEarlierWrites: a digest request's digests are
// read after the writes asked for before it, in order with them, never
// while one is still to be made; until then the request is unanswered.
func TestMachineDigestsAfterEarlierWrites(t *testing.T) {
	ctx := context.Background()
	a := newUnit(t, nA, syncCfg)
	a.m.SetMembers(ringOf(nA, nB))
	if err := a.m.Step(ctx, nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "b", "x", 0)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.m.Step(ctx, nB, Message{Type: MsgDigestReq, ID: 2, Bits: 4, Seen: vv(uint64(nB), 1)}); err != nil {
		t.Fatal(err)
	}
	rd := a.m.Ready()
	if len(rd.Writes) != 2 || rd.Writes[0].Type() != MsgPush || rd.Writes[1].Type() != MsgDigestReq {
		t.Fatalf("want the push's write, then the digests: %+v", rd.Writes)
	}
	if got := only(rd.Messages, MsgDigest); len(got) != 0 {
		t.Fatalf("digests answered before the earlier write was made: %+v", got)
	}
	for i := range rd.Writes {
		w := &rd.Writes[i]
		a.m.Persisted(w, w.Apply(ctx, a.st))
	}
	want, err := a.st.BucketDigests(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	got := only(a.ready(), MsgDigest)
	if len(got) != 1 || got[0].Msg.ID != 2 || !slices.Equal(got[0].Msg.Digests, want) {
		t.Fatalf("want the digests of the store with the push in it: %+v", got)
	}
}

// TestMachineDigestSyncEqualStores: a sync between equal stores sends one
// empty Done chunk.
func TestMachineDigestSyncEqualStores(t *testing.T) {
	a, b := newPair(t, syncCfg)
	for i := range 20 {
		a.set(fmt.Sprintf("k%02d", i), "v")
	}
	a.del("k03")
	copyState(t, a, b)
	a.step(nB, Message{Type: MsgProbe, Applied: b.st.Applied()})
	a.m.startSync(a.m.byID[nB], 0)
	var chunks []Message
	exchange(t, 10, chunksOf(nA, &chunks), a, b)
	if len(chunks) != 1 || len(chunks[0].Records) != 0 || !chunks[0].Done || chunks[0].Buckets != nil || chunks[0].Start != nil || chunks[0].End != nil {
		t.Fatalf("chunks %+v", chunks)
	}
	if !b.st.Applied().Equal(a.st.Applied()) {
		t.Fatalf("B applied %s, A %s", b.st.Applied(), a.st.Applied())
	}
	if st := a.m.Stats(); st.BucketsDiffering != 0 || st.SyncsDone != 1 || st.SyncRecordsSent != 0 {
		t.Fatalf("stats %+v", st.Counters)
	}
}

// TestMachineDigestSyncOneBucket: the stores differ in one key; only its
// bucket travels, in chunks that still tile the key space.
func TestMachineDigestSyncOneBucket(t *testing.T) {
	a, b := newPair(t, syncCfg)
	for i := range 60 {
		a.set(fmt.Sprintf("k%02d", i), "v")
	}
	copyState(t, a, b)
	a.set("k07", "new")
	a.st.Trim(nA, 0)
	var chunks []Message
	exchange(t, 30, chunksOf(nA, &chunks), a, b)
	checkTiling(t, chunks)
	want := crdt.Bucket([]byte("k07"), uint(syncCfg.DigestBits))
	var keys []string
	for _, c := range chunks {
		if popcount(c.Buckets) != 1 || !inBuckets(c.Buckets, c.Bits, []byte("k07")) {
			t.Fatalf("buckets %x", c.Buckets)
		}
		for _, r := range c.Records {
			if crdt.Bucket(r.Key, uint(syncCfg.DigestBits)) != want {
				t.Fatalf("sent %q of another bucket", r.Key)
			}
			keys = append(keys, string(r.Key))
		}
	}
	if !slices.Contains(keys, "k07") || len(keys) >= 20 {
		t.Fatalf("sent %v", keys)
	}
	// 61 records, 2 per chunk at most and 16 batches' worth looked at per
	// chunk: the scan bound ends chunks too.
	if len(chunks) < 2 {
		t.Fatalf("%d chunks", len(chunks))
	}
	if st := a.m.Stats(); st.BucketsDiffering != 1 {
		t.Fatalf("stats %+v", st.Counters)
	}
	if a.st.Digest(0) != b.st.Digest(0) || b.st.View("k07", 0).Value == nil || string(b.st.View("k07", 0).Value) != "new" {
		t.Fatalf("B reads k07 as %+v", b.st.View("k07", 0))
	}
}

// TestMachineDigestSyncDrops: a chunk lacks keys B holds in its range and
// buckets. B drops what A's Seen vector covers (A saw it and no longer
// holds it: its tombstone was collected) and keeps what A never saw.
func TestMachineDigestSyncDrops(t *testing.T) {
	a, b := newUnit(t, nA, syncCfg), newUnit(t, nB, syncCfg)
	a.m.SetMembers(ringOf(nA, nB))
	b.m.SetMembers(ringOf(nB, nC, nA)) // B pushes to C, absent: A never sees B's writes
	a.set("gone", "v")
	copyRecords(t, a, b) // B holds gone=v, dot A:1
	a.del("gone")
	a.st.SetStable(a.st.Applied()) // A collects the tombstone
	if _, ok := a.st.Recs["gone"]; ok {
		t.Fatal("A kept the collected tombstone")
	}
	b.set("b-own", "x")
	b.step(nC, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nC, 1, "c-only", "x", 0)}})
	a.st.Trim(nA, 0)
	exchange(t, 20, nil, a, b)
	if b.found("gone") {
		t.Fatal("B still shows gone: A saw it deleted")
	}
	if !b.found("b-own") || !b.found("c-only") {
		t.Fatal("B dropped what A never saw")
	}
	if st := b.m.Stats(); st.RecordsDropped != 3 {
		t.Fatalf("receiver stats %+v", st.Counters)
	}
	if !b.st.Applied().Equal(vv(uint64(nA), 2, uint64(nB), 1, uint64(nC), 1)) {
		t.Fatalf("B applied %s", b.st.Applied())
	}
}

// TestMachineDigestSyncRetransmits: an unanswered digest request and a lost
// chunk are sent again under new IDs; a late answer to the old request is
// ignored.
func TestMachineDigestSyncRetransmits(t *testing.T) {
	cfg := syncCfg
	cfg.RetransmitTicks, cfg.MaxBatchEntries = 2, 1
	a, b := newPair(t, cfg)
	a.set("k1", "x")
	a.set("k2", "x")
	a.st.Trim(nA, 0)
	a.step(nB, Message{Type: MsgProbe})
	req := only(a.ready(), MsgDigestReq)
	if len(req) != 1 || req[0].Msg.Bits != uint8(cfg.DigestBits) {
		t.Fatalf("digest request %+v", req)
	}
	a.m.Tick()
	a.m.Tick()
	again := only(a.ready(), MsgDigestReq)
	if len(again) != 1 || again[0].Msg.ID == req[0].Msg.ID || !a.m.Unresponsive(nB) {
		t.Fatalf("digest request again %+v", again)
	}
	digests, _ := b.st.BucketDigests(context.Background(), uint(cfg.DigestBits))
	a.step(nB, Message{Type: MsgDigest, ID: req[0].Msg.ID, Digests: digests})
	if got := only(a.ready(), MsgSnap); len(got) != 0 {
		t.Fatalf("a late answer started the stream: %+v", got)
	}
	a.step(nB, Message{Type: MsgDigest, ID: again[0].Msg.ID, Digests: digests})
	first := only(a.ready(), MsgSnap)
	if len(first) != 1 || string(first[0].Msg.Records[0].Key) != "k1" || a.m.Unresponsive(nB) {
		t.Fatalf("first chunk %+v", first)
	}
	a.m.Tick()
	a.m.Tick()
	resent := only(a.ready(), MsgSnap)
	if len(resent) != 1 || string(resent[0].Msg.Records[0].Key) != "k1" || resent[0].Msg.ID == first[0].Msg.ID {
		t.Fatalf("resent chunk %+v", resent)
	}
	a.step(nB, Message{Type: MsgAck, ID: resent[0].Msg.ID})
	next := only(a.ready(), MsgSnap)
	if len(next) != 1 || string(next[0].Msg.Records[0].Key) != "k2" || !next[0].Msg.Done || !next[0].Msg.Applied.Equal(vv(uint64(nA), 2)) {
		t.Fatalf("last chunk %+v", next)
	}
	if st := a.m.Stats(); st.Retransmits != 2 || st.DigestRequestsSent != 2 {
		t.Fatalf("stats %+v", st.Counters)
	}
}

// TestMachineBadChunk: a chunk that breaks what the receiver relies on is
// refused, merged not at all and not acknowledged.
func TestMachineBadChunk(t *testing.T) {
	rec := sampleRecord(nA, 1, "v", 0)
	seen := vv(uint64(nB), 3)
	tests := map[string]Message{
		"bitmap size":    {Bits: 4, Buckets: []byte{1}},
		"empty range":    {Start: []byte("b"), End: []byte("a")},
		"record before":  {Start: []byte("m"), Records: []KeyRecord{{Key: []byte("k"), Record: rec}}},
		"record past":    {End: []byte("k"), Records: []KeyRecord{{Key: []byte("k"), Record: rec}}},
		"records order":  {Records: []KeyRecord{{Key: []byte("k2"), Record: rec}, {Key: []byte("k1"), Record: rec}}},
		"record repeats": {Records: []KeyRecord{{Key: []byte("k"), Record: rec}, {Key: []byte("k"), Record: rec}}},
		"raise past":     {Done: true, Applied: vv(uint64(nB), 4)},
		"other seen":     {Seen: vv(uint64(nB), 4), Records: []KeyRecord{{Key: []byte("k"), Record: rec}}},
		"digests count":  {Type: MsgDigest, Digests: []uint64{1, 2, 3}},
	}
	for name, msg := range tests {
		t.Run(name, func(t *testing.T) {
			a, _ := newPair(t, syncCfg)
			if msg.Type == MsgDigest {
				a.set("k", "v")
				a.st.Trim(nA, 0)
				a.step(nB, Message{Type: MsgProbe})
				msg.ID = only(a.ready(), MsgDigestReq)[0].Msg.ID
			} else {
				a.step(nB, Message{Type: MsgDigestReq, ID: 9, Bits: 4, Seen: seen})
				a.ready()
				msg.Type, msg.ID, msg.Sync = MsgSnap, 10, 9
				if msg.Seen == nil {
					msg.Seen = seen
				}
			}
			if err := a.m.Step(context.Background(), nB, msg); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("got %v", err)
			}
			if acks := only(a.ready(), MsgAck); len(acks) != 0 || len(a.st.Recs) > 1 {
				t.Fatalf("acks %+v, records %d", acks, len(a.st.Recs))
			}
		})
	}
}

// TestMachineSyncFence: a node takes one sync at a time; until it ends it
// refuses the log entries the sync's Seen covers, says so in its acks and
// probes, and pushers hold those back; a chunk of a sync it does not take
// makes the sender start over; a quiet sender's sync is given up.
func TestMachineSyncFence(t *testing.T) {
	cfg := Config{ProbeTicks: 1000, RetransmitTicks: 2, DigestBits: 4}
	r := newUnit(t, nA, cfg)
	r.m.SetMembers(ringOf(nA, nB, nC))
	fence := vv(uint64(nC), 2)
	r.step(nB, Message{Type: MsgDigestReq, ID: 7, Bits: 4, Seen: fence})
	if d := only(r.ready(), MsgDigest); len(d) != 1 || len(d[0].Msg.Digests) != 16 {
		t.Fatalf("answer %+v", d)
	}
	// C's request is refused while B's sync is taken.
	r.step(nC, Message{Type: MsgDigestReq, ID: 3, Bits: 4, Seen: vv(uint64(nC), 9)})
	if d := only(r.ready(), MsgDigest); len(d) != 1 || d[0].To.ID != nC || d[0].Msg.ID != 3 || d[0].Msg.Digests != nil {
		t.Fatalf("refusal %+v", d)
	}
	// C's entries up to 2 wait for the sync; 3 is beyond a gap anyway.
	r.step(nC, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nC, 1, "c", "x", 0), sampleEntry(nC, 2, "c", "y", 0)}})
	ack := only(r.ready(), MsgAck)
	if len(ack) != 1 || r.st.Applied().Get(nC) != 0 || !ack[0].Msg.Fence.Equal(fence) || r.m.Stats().EntriesFenced != 2 {
		t.Fatalf("ack %+v, applied %s", ack, r.st.Applied())
	}
	// A chunk of another sync of B's: B must start over.
	r.step(nB, Message{Type: MsgSnap, ID: 8, Sync: 5, Done: true, Seen: fence})
	if d := only(r.ready(), MsgDigest); len(d) != 1 || d[0].Msg.ID != 5 || d[0].Msg.Digests != nil || r.m.Stats().SyncChunksRefused != 1 {
		t.Fatalf("refusal of a chunk %+v", d)
	}
	// The sync's Done: the fence falls, and C's entries apply.
	r.step(nB, Message{Type: MsgSnap, ID: 9, Sync: 7, Done: true, Seen: fence, Applied: fence})
	if ack := only(r.ready(), MsgAck); len(ack) != 1 || ack[0].Msg.Fence != nil || !r.st.Applied().Equal(fence) {
		t.Fatalf("after the sync: ack %+v, applied %s", ack, r.st.Applied())
	}
	// A copy of a chunk of the sync that ended is acknowledged, not
	// refused.
	r.step(nB, Message{Type: MsgSnap, ID: 9, Sync: 7, Done: true, Seen: fence, Applied: fence})
	if ack := only(r.ready(), MsgAck); len(ack) != 1 || ack[0].Msg.ID != 9 || r.m.Stats().SyncChunksRefused != 1 {
		t.Fatalf("copy of the last chunk: %+v", ack)
	}
	// C is taken now; it goes quiet, and the sync is given up.
	r.step(nC, Message{Type: MsgDigestReq, ID: 4, Bits: 4, Seen: vv(uint64(nC), 9)})
	r.ready()
	for range staleRounds * cfg.RetransmitTicks {
		r.m.Tick()
	}
	if st := r.m.Stats(); st.SyncsAbandoned != 1 || r.m.fence() != nil {
		t.Fatalf("stats %+v", st.Counters)
	}

	// The pusher's side: B learns C's fence from C's ack and holds back
	// what it covers, probing now and then until the fence is down.
	b := newUnit(t, nB, cfg)
	b.m.SetMembers(ringOf(nB, nC))
	b.step(nA, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nA, 1, "a", "x", 0), sampleEntry(nA, 2, "a", "y", 0)}})
	b.ready()
	b.step(nC, Message{Type: MsgAck, Fence: vv(uint64(nA), 5)})
	if got := b.ready(); len(got) != 0 {
		t.Fatalf("pushed through the fence: %+v", got)
	}
	b.m.Tick()
	b.m.Tick()
	probe := only(b.ready(), MsgProbe)
	if len(probe) != 1 {
		t.Fatalf("want a probe to see the fence, got %+v", probe)
	}
	b.step(nC, Message{Type: MsgAck})
	if p := only(b.ready(), MsgPush); len(p) != 1 || len(p[0].Msg.Entries) != 2 {
		t.Fatalf("fence down, pushes %+v", p)
	}
}

// TestMachineStableVector: the reports over every member gossip knows,
// live or down (with its last report), whole vectors only; the stable
// vector follows them in two phases, a round at a time.
func TestMachineStableVector(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	low := func() crdt.VersionVector {
		t.Helper()
		v, _, ok := a.m.reported()
		if !ok {
			return nil
		}
		return v
	}
	a.m.advanceStable() // a round
	if v := a.m.StableVector(); v != nil {
		t.Fatalf("no members yet, stable %s", v)
	}
	a.set("k", "v")
	a.set("k", "v2")
	a.m.SetMembers(ringOf(nA, nB, nC))
	if v := low(); v != nil {
		t.Fatalf("B and C unheard, reports %s", v)
	}
	a.step(nB, Message{Type: MsgProbe, Applied: vv(uint64(nA), 2, uint64(nB), 7)})
	a.step(nC, Message{Type: MsgAck, Applied: vv(uint64(nA), 1, uint64(nB), 3, uint64(nC), 1)})
	// An ack of a push speaks of some origins only: not a whole vector.
	a.step(nC, Message{Type: MsgAck, ID: 9, Applied: vv(uint64(nA), 2)})
	if v, want := low(), vv(uint64(nA), 1); !v.Equal(want) {
		t.Fatalf("reports %s, want %s", v, want)
	}
	a.m.advanceStable() // a round
	if v := a.m.StableVector(); v != nil {
		t.Fatalf("stable %s before the writes concurrent with it reached everyone", v)
	}
	// Every member catches up with the writes any had: {A:1} is stable.
	var ents []store.LogEntry
	for i := range uint64(7) {
		ents = append(ents, sampleEntry(nB, i+1, "b", "x", 0))
	}
	a.step(nB, Message{Type: MsgPush, ID: 1, Entries: ents})
	a.step(nC, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nC, 1, "c", "x", 0)}})
	all := vv(uint64(nA), 2, uint64(nB), 7, uint64(nC), 1)
	a.step(nB, Message{Type: MsgProbe, Applied: all})
	a.step(nC, Message{Type: MsgProbe, Applied: all})
	a.m.advanceStable() // a round
	if v, want := a.m.StableVector(), vv(uint64(nA), 1); !v.Equal(want) {
		t.Fatalf("stable %s, want %s", v, want)
	}
	a.m.advanceStable() // a round
	if v := a.m.StableVector(); !v.Equal(all) {
		t.Fatalf("stable %s, want %s", v, all)
	}
	// C fails: its last report still counts, and holds the vector back.
	a.m.SetMembers(ringOf(nA, nB))
	a.m.SetDown([]crdt.NodeID{nC})
	a.set("k", "v3")
	a.step(nB, Message{Type: MsgProbe, Applied: all.With(nA, 3)})
	if v := low(); !v.Equal(all) {
		t.Fatalf("C down: reports %s, want %s", v, all)
	}
	if st := a.m.Stats(); !slices.Equal(st.Down, []crdt.NodeID{nC}) || !st.Stable.Equal(all) {
		t.Fatalf("stats down %v stable %s", st.Down, st.Stable)
	}
	// C is back: unknown until it reports again.
	a.m.SetMembers(ringOf(nA, nB, nC))
	a.m.SetDown(nil)
	a.m.advanceStable() // a round
	if v := a.m.StableVector(); v != nil || low() != nil {
		t.Fatalf("C back and unheard, stable %s", v)
	}
	a.step(nC, Message{Type: MsgProbe, Applied: all.With(nA, 3)})
	if v, want := low(), all.With(nA, 3); !v.Equal(want) {
		t.Fatalf("reports %s, want %s", v, want)
	}
	// C fails, then leaves: forgotten.
	a.m.SetMembers(ringOf(nA, nB))
	a.m.SetDown([]crdt.NodeID{nC})
	a.m.SetDown(nil)
	if v, want := low(), all.With(nA, 3); !v.Equal(want) {
		t.Fatalf("C left: reports %s, want %s", v, want)
	}
	// A down member never heard from since this node started: unknown.
	a.m.SetDown([]crdt.NodeID{0x0d, nA})
	a.m.advanceStable() // a round
	if v := a.m.StableVector(); v != nil || low() != nil {
		t.Fatalf("D down and never heard, stable %s", v)
	}
}

// TestMachineResync: A holds a record the domain collected (B saw it
// deleted, and its tombstone is gone) although its vector lacks nothing.
// Resync makes B, its predecessor, run a full sync towards it, which drops
// the record; meanwhile A begins no sync of its own.
func TestMachineResync(t *testing.T) {
	cfg := syncCfg
	cfg.MaxBatchEntries = 512
	a, b := newPair(t, cfg)
	b.set("x", "old")
	b.del("x")
	b.set("y", "live")
	exchange(t, 10, nil, a, b)
	// What a stale replica holds: x as it was before the delete, which the
	// domain has since collected.
	b.st.SetStable(b.st.Applied())
	a.st.Recs["x"] = sampleRecord(nB, 1, "old", 0)
	if !a.found("x") || !a.st.Applied().Equal(b.st.Applied()) {
		t.Fatalf("setup: A %s, B %s", a.st, b.st)
	}
	// A's own write, its log trimmed: B lacks it, but A must not sync it
	// the digest way while resyncing.
	a.set("a-own", "v")
	a.st.Trim(nA, 0)

	a.m.Resync()
	if !a.m.Resyncing() || !a.m.Stats().Resyncing {
		t.Fatal("not resyncing")
	}
	var asked []Message
	var digestReqsFromA int
	see := func(from crdt.NodeID, e Envelope) bool {
		if from == nA && e.Msg.Type == MsgProbe && e.Msg.Resync != 0 {
			asked = append(asked, e.Msg)
		}
		if from == nA && e.Msg.Type == MsgDigestReq && a.m.Resyncing() {
			digestReqsFromA++
		}
		return true
	}
	for range 5 {
		a.m.Tick()
		b.m.Tick()
		exchange(t, 5, see, a, b)
	}
	if a.m.Resyncing() || len(asked) != 1 || digestReqsFromA != 0 {
		t.Fatalf("resyncing=%v asked %+v, %d digest requests from A while resyncing", a.m.Resyncing(), asked, digestReqsFromA)
	}
	if a.found("x") || !a.found("y") {
		t.Fatalf("after the resync A reads x %v, y %v", a.found("x"), a.found("y"))
	}
	if st := b.m.Stats(); st.ResyncsServed != 1 || st.SyncsDone == 0 {
		t.Fatalf("B stats %+v", st.Counters)
	}
	if st := a.m.Stats(); st.ResyncsStarted != 1 || st.ResyncsDone != 1 || st.ResyncRequestsSent != 1 || st.Resyncing {
		t.Fatalf("A stats %+v", st.Counters)
	}
	// Resync over, A syncs its trimmed log to B.
	for range 5 {
		a.m.Tick()
		exchange(t, 5, nil, a, b)
	}
	if !b.found("a-own") || a.m.Stats().SyncsDone != 1 {
		t.Fatalf("B lacks A's write: %s", b.st)
	}
}

// TestMachineResyncTargets: the resyncing node asks its predecessor, then
// another member when that one does not answer or is resyncing; a
// resyncing node serves no resync; when every member is resyncing, the
// resync ends.
func TestMachineResyncTargets(t *testing.T) {
	cfg := Config{ProbeTicks: 1000, RetransmitTicks: 2}
	a, b, c := newUnit(t, nA, cfg), newUnit(t, nB, cfg), newUnit(t, nC, cfg)
	ring := ringOf(nA, nB, nC) // A's predecessor is C
	for _, u := range []*unit{a, b, c} {
		u.m.SetMembers(ring)
	}
	a.step(nB, Message{Type: MsgProbe})
	a.step(nC, Message{Type: MsgProbe})
	a.ready()

	a.m.Resync()
	a.m.Tick()
	req := only(a.ready(), MsgProbe)
	if len(req) != 1 || req[0].To.ID != nC || req[0].Msg.Resync == 0 {
		t.Fatalf("first request %+v", req)
	}
	// C does not answer: after the probe's timeout, B is asked, under a
	// new ID.
	a.m.Tick()
	a.m.Tick()
	req2 := only(a.ready(), MsgProbe)
	if len(req2) != 1 || req2[0].To.ID != nB || req2[0].Msg.Resync <= req[0].Msg.Resync {
		t.Fatalf("second request %+v", req2)
	}
	// B is resyncing: it serves nothing and says so.
	b.m.Resync()
	b.step(nA, req2[0].Msg)
	ack := only(b.ready(), MsgAck)
	if len(ack) != 1 || !ack[0].Msg.Resyncing || only(b.ready(), MsgDigestReq) != nil || b.m.Stats().ResyncsServed != 0 {
		t.Fatalf("B answered %+v", ack)
	}
	a.step(nB, ack[0].Msg)
	// C answers again, resyncing too: nobody is fresher, the resync ends.
	a.step(nC, Message{Type: MsgAck, Resyncing: true})
	a.m.Tick()
	if a.m.Resyncing() {
		t.Fatal("still resyncing with every member resyncing")
	}
	if st := a.m.Stats(); st.ResyncsDone != 1 || st.Peers[0].Resyncing != true {
		t.Fatalf("stats %+v", st)
	}
}

// TestDigestSyncBytes measures what a digest sync costs against sending
// every record: 10,000 keys, of which the peer lacks 10 (one write each
// after the log was trimmed), with the default 1024 buckets.
func TestDigestSyncBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 keys")
	}
	const keys, changed = 10_000, 10
	cost := func(t *testing.T, copyFirst bool) (bytes, records uint64) {
		a, b := newPair(t, Config{ProbeTicks: 1000, RetransmitTicks: 5})
		for i := range keys {
			a.set(fmt.Sprintf("key:%05d", i), "a value of some thirty bytes..")
		}
		if copyFirst {
			copyState(t, a, b)
			for i := range changed {
				a.set(fmt.Sprintf("key:%05d", i*997), "changed")
			}
		}
		a.st.Trim(nA, 0)
		before := a.m.Stats()
		exchange(t, 2000, nil, a, b)
		after := a.m.Stats()
		if a.st.Digest(0) != b.st.Digest(0) {
			t.Fatal("digests differ after the sync")
		}
		return after.BytesSent - before.BytesSent, after.SyncRecordsSent - before.SyncRecordsSent
	}
	fullBytes, fullRecords := cost(t, false)
	syncBytes, syncRecords := cost(t, true)
	t.Logf("peer lacking everything: %d records, %d bytes; lacking %d keys: %d records, %d bytes (%.2f%%)",
		fullRecords, fullBytes, changed, syncRecords, syncBytes, 100*float64(syncBytes)/float64(fullBytes))
	if fullRecords != keys || syncRecords > 20*changed || syncBytes*10 > fullBytes {
		t.Fatalf("a sync of %d changed keys sent %d records, %d bytes; all %d keys: %d records, %d bytes", changed, syncRecords, syncBytes, keys, fullRecords, fullBytes)
	}
}

// A chunk's system records lead the first chunk of a sync, in key order;
// anywhere else they are a bad message.
func TestCheckChunkSystemRecords(t *testing.T) {
	sys := func(k string) KeyRecord { return KeyRecord{Key: []byte(k), System: true} }
	data := func(k string) KeyRecord { return KeyRecord{Key: []byte(k)} }
	for _, tc := range []struct {
		name  string
		start string
		recs  []KeyRecord
		ok    bool
	}{
		{"first chunk leads with them", "", []KeyRecord{sys("z"), sys("zz"), data("a")}, true},
		{"only system records", "", []KeyRecord{sys("parent")}, true},
		{"in a later chunk", "m", []KeyRecord{sys("parent"), data("n")}, false},
		{"after data records", "", []KeyRecord{data("a"), sys("parent")}, false},
		{"out of order", "", []KeyRecord{sys("b"), sys("a")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := &Message{Type: MsgSnap, Start: []byte(tc.start), Records: tc.recs}
			if err := checkChunk(msg); (err == nil) != tc.ok {
				t.Errorf("checkChunk = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
