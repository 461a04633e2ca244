package replication

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/store"
)

// openHopStore opens an in-memory store for a hop's sender or receiver.
func openHopStore(tb testing.TB, clk clock.Clock) *store.Store {
	st, err := store.Open(store.Config{InMemory: true}, clk, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// TestDeltaHopBytes follows deltas from the sender's log to the receiver's:
// the wire carries each delta's bytes as the sender's log holds them, not
// encoded again, and the receiver's log holds the same bytes.
func TestDeltaHopBytes(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	sender, receiver := openHopStore(t, clk), openHopStore(t, clk)
	ctx := context.Background()
	writes := []store.Write{
		{Op: store.OpSet, Key: []byte("k"), Value: []byte("v")},
		{Op: store.OpIncr, Key: []byte("c"), Delta: 7},
		{Op: store.OpDel, Key: []byte("k")},
		{Op: store.OpSet, Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 70_000)},
	}
	for _, w := range writes {
		if r := sender.Apply(ctx, w); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	origin := sender.NodeID()
	ents, err := sender.ReadLog(origin, 1, len(writes))
	if err != nil || len(ents) != len(writes) {
		t.Fatalf("read log: %d entries, %v", len(ents), err)
	}
	wire := AppendMessage(nil, &Message{Type: MsgPush, ID: 1, Entries: ents})
	for i := range ents {
		if !bytes.Contains(wire, ents[i].Delta) {
			t.Errorf("entry %d: the wire does not carry the log's delta bytes", i)
		}
	}
	got, err := UnmarshalMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := receiver.ApplyRemote(ctx, got.Entries); err != nil || n != len(writes) {
		t.Fatalf("apply remote: %d, %v", n, err)
	}
	again, err := receiver.ReadLog(origin, 1, len(writes))
	if err != nil || len(again) != len(writes) {
		t.Fatalf("receiver's log: %d entries, %v", len(again), err)
	}
	for i := range again {
		if !bytes.Equal(again[i].Delta, ents[i].Delta) {
			t.Errorf("entry %d: the receiver's log holds other bytes than the sender's", i)
		}
	}
	sd, err := sender.BucketDigests(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := receiver.BucketDigests(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sd, rd) {
		t.Errorf("digests differ after the hop: %x, %x", sd, rd)
	}
}

// BenchmarkDeltaHop measures one delta's hop from the sender's log to the
// receiver's store: ReadLog, a push message encoded for the wire, decoded
// on the receiver, ApplyRemote. allocs/op is per delta. The delta itself is
// encoded once, by the sender's write, and decoded once, by the receiver's
// ApplyRemote (TestDeltaHopBytes).
func BenchmarkDeltaHop(b *testing.B) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	sender, receiver := openHopStore(b, clk), openHopStore(b, clk)
	ctx := context.Background()
	const batch = 256
	ws := make([]store.Write, 0, batch)
	res := make([]store.Result, batch)
	for i := 0; i < b.N; i += batch {
		ws = ws[:0]
		for j := i; j < min(i+batch, b.N); j++ {
			ws = append(ws, store.Write{Op: store.OpSet, Key: fmt.Appendf(nil, "key-%d", j), Value: []byte("a value of some thirty bytes..")})
		}
		sender.ApplyBatch(ctx, ws, res)
		for _, r := range res[:len(ws)] {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	origin := sender.NodeID()
	var wire []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ents, err := sender.ReadLog(origin, uint64(i+1), 1)
		if err != nil || len(ents) != 1 {
			b.Fatalf("read log: %d entries, %v", len(ents), err)
		}
		msg := Message{Type: MsgPush, ID: uint64(i + 1), Entries: ents}
		wire = AppendMessage(wire[:0], &msg)
		got, err := UnmarshalMessage(wire)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := receiver.ApplyRemote(ctx, got.Entries); err != nil || n != 1 {
			b.Fatalf("apply remote: %d, %v", n, err)
		}
	}
}

// TestWireLeavesDeltasEncoded: putting a push on the wire and taking it off
// again costs as many allocations for a delta of one entry as for one of
// many, which it could not if either side encoded or decoded the record:
// the wire carries each delta as the log's bytes, and the one decode is the
// receiving store's.
func TestWireLeavesDeltasEncoded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items at random)")
	}
	small := sampleEntry(nA, 1, "k", "v", 0)
	var wide crdt.Record
	for i := range 64 {
		op := crdt.Op{Node: crdt.NodeID(i + 1), TS: crdt.MakeTimestamp(1_700_000_000_000+int64(i), 0), Seq: 1}
		delta, _, err := wide.Incr(op, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		wide = crdt.Merge(wide, delta)
	}
	if len(wide.Entries) < 64 {
		t.Fatalf("the wide delta has %d entries, want 64", len(wide.Entries))
	}
	big := small
	big.Key, big.Delta = []byte("c"), crdt.AppendRecord(nil, wide)
	allocs := func(e store.LogEntry) float64 {
		var wire []byte
		return testing.AllocsPerRun(100, func() {
			wire = AppendMessage(wire[:0], &Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{e}})
			if _, err := UnmarshalMessage(wire); err != nil {
				t.Fatal(err)
			}
		})
	}
	if a, b := allocs(small), allocs(big); a != b {
		t.Fatalf("a push of a 1-entry delta costs %v allocations, of a %d-entry one %v: the wire handles records, not bytes", a, len(wide.Entries), b)
	}
}
