package crdt

import (
	"bytes"
	"testing"
)

// benchRecord is a typical small register: two concurrent siblings with
// 100-byte values and a three-node context.
func benchRecord() Record {
	v := bytes.Repeat([]byte{'v'}, 100)
	return Record{
		Entries: []Entry{
			{Dot: Dot{0x1111, 7}, TS: MakeTimestamp(1_700_000_000_000, 0), Kind: KindValue, Value: v},
			{Dot: Dot{0x2222, 3}, TS: MakeTimestamp(1_700_000_000_001, 2), Expiry: 1_700_000_060_000, Kind: KindValue, Value: v},
		},
		Context: Context{VV: VersionVector{{0x1111, 7}, {0x2222, 3}, {0x3333, 12}}},
	}
}

func BenchmarkMerge(b *testing.B) {
	state := benchRecord()
	// A delta from a third node that supersedes one sibling.
	delta := state.Set(Op{Node: 0x3333, TS: MakeTimestamp(1_700_000_000_005, 0), Context: &Context{VV: VersionVector{{0x1111, 7}}}}, []byte("new value"), 0)
	b.ReportAllocs()
	for b.Loop() {
		_ = Merge(state, delta)
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	r := benchRecord()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], r)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkUnmarshalRecord(b *testing.B) {
	enc := AppendRecord(nil, benchRecord())
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalRecord(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	r := benchRecord()
	now := int64(1_700_000_030_000)
	b.ReportAllocs()
	for b.Loop() {
		if !r.Read(now).Found {
			b.Fatal("not found")
		}
	}
}
