package replication

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/store"
)

// BenchmarkDeltaHop measures one delta's hop from the sender's log to the
// receiver's store: ReadLog, a push message encoded for the wire, decoded
// on the receiver, ApplyRemote. allocs/op is per delta.
func BenchmarkDeltaHop(b *testing.B) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	open := func() *store.Store {
		st, err := store.Open(store.Config{InMemory: true}, clk, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	sender, receiver := open(), open()
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
