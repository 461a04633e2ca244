package replication

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

const (
	nA crdt.NodeID = 0x0a
	nB crdt.NodeID = 0x0b
	nC crdt.NodeID = 0x0c
)

func vv(pairs ...uint64) crdt.VersionVector {
	var v crdt.VersionVector
	for i := 0; i < len(pairs); i += 2 {
		v = v.With(crdt.NodeID(pairs[i]), pairs[i+1])
	}
	return v
}

// sampleEntry returns origin's seq-th log entry setting key.
func sampleEntry(origin crdt.NodeID, seq uint64, key, value string, expiry int64) store.LogEntry {
	ts := crdt.MakeTimestamp(1_700_000_000_000+int64(seq), 0)
	delta := sampleRecord(origin, seq, value, expiry)
	return store.LogEntry{Origin: origin, Seq: seq, Key: []byte(key), Delta: crdt.AppendRecord(nil, delta), ReqID: "req", TS: ts}
}

// sampleRecord returns the delta of sampleEntry.
func sampleRecord(origin crdt.NodeID, seq uint64, value string, expiry int64) crdt.Record {
	ts := crdt.MakeTimestamp(1_700_000_000_000+int64(seq), 0)
	return crdt.Record{}.Set(crdt.Op{Node: origin, TS: ts}, []byte(value), expiry)
}

// deltaOf decodes e's delta, which the test made.
func deltaOf(e store.LogEntry) crdt.Record {
	r, err := e.Record()
	if err != nil {
		panic(err)
	}
	return r
}

func sampleMessages() map[string]Message {
	tomb := crdt.Record{}.Delete(crdt.Op{Node: nB, TS: 7})
	ctr, _, _ := crdt.Record{}.Incr(crdt.Op{Node: nC, TS: 9}, -3, 0)
	reset := crdt.Merge(crdt.Record{}, ctr).Delete(crdt.Op{Node: nB, TS: 10}) // with the reset of C's count
	return map[string]Message{
		"probe":        {Type: MsgProbe, Applied: vv(uint64(nA), 3, uint64(nB), 1<<40)},
		"probe empty":  {Type: MsgProbe},
		"ack of probe": {Type: MsgAck, Applied: vv(uint64(nC), 1)},
		"ack of push":  {Type: MsgAck, ID: 1 << 33, Applied: vv(uint64(nA), 300)},
		"push": {Type: MsgPush, ID: 5, Entries: []store.LogEntry{
			sampleEntry(nA, 1, "k1", "v1", 0),
			sampleEntry(nA, 2, "k\x00binary", "", 1_800_000_000_000),
			{Origin: nB, Seq: 9, Key: []byte("gone"), Delta: crdt.AppendRecord(nil, tomb), TS: 7},
			{Origin: nC, Seq: 1, Key: []byte("count"), Delta: crdt.AppendRecord(nil, ctr), TS: 9, ReqID: "0123456789abcdef0123456789abcdef"},
			{Origin: nC, Seq: 2, Key: []byte("parent"), Delta: sampleEntry(nC, 2, "parent", "dc-root", 0).Delta, TS: 10, System: true},
			{Origin: nB, Seq: 10, Key: []byte("count"), Delta: crdt.AppendRecord(nil, reset), TS: 10},
		}},
		"snapshot chunk": {Type: MsgSnap, ID: 6, Records: []KeyRecord{
			{Key: []byte("a"), Record: sampleRecord(nA, 1, "x", 0)},
			{Key: []byte("b"), Record: tomb},
			{Key: []byte("parent"), Record: tomb, System: true},
		}},
		"snapshot end":   {Type: MsgSnap, ID: 7, Done: true, Applied: vv(uint64(nA), 2, uint64(nB), 9)},
		"resync probe":   {Type: MsgProbe, Applied: vv(uint64(nA), 3), Resync: 1 << 50, Fence: vv(uint64(nC), 4)},
		"ack resyncing":  {Type: MsgAck, Applied: vv(uint64(nA), 3), Resyncing: true, Fence: vv(uint64(nB), 2)},
		"digest request": {Type: MsgDigestReq, ID: 8, Bits: 10, Seen: vv(uint64(nA), 2, uint64(nB), 9), Resync: 3},
		"digests":        {Type: MsgDigest, ID: 8, Digests: []uint64{0, 1, 1 << 63, 0xdeadbeefcafe}},
		"refusal":        {Type: MsgDigest, ID: 8},
		"sync chunk": {Type: MsgSnap, ID: 9, Sync: 8, Bits: 4, Start: []byte("a"), End: []byte("m\x00"),
			Buckets: []byte{0x81, 0x04}, Seen: vv(uint64(nA), 2, uint64(nB), 9), Resync: 3, Records: []KeyRecord{
				{Key: []byte("b"), Record: sampleRecord(nA, 1, "x", 0)},
				{Key: []byte("c"), Record: tomb},
			}},
		"sync end": {Type: MsgSnap, ID: 10, Sync: 8, Bits: 4, Start: []byte("m\x00"), Buckets: []byte{0x81, 0x04},
			Seen: vv(uint64(nA), 2, uint64(nB), 9), Done: true, Applied: vv(uint64(nA), 2)},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	sz := newSizer()
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b := AppendMessage(nil, &m)
			got, err := UnmarshalMessage(b)
			if err != nil {
				t.Fatalf("decode: %v (% x)", err, b)
			}
			if !reflect.DeepEqual(normalizeMsg(got), normalizeMsg(m)) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
			}
			if again := AppendMessage(nil, &got); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n% x\n% x", again, b)
			}
			if n := sz.message(&m); n != len(b) {
				t.Fatalf("sizer says %d bytes, encoding has %d", n, len(b))
			}
			// Through msgpack's own Marshal, as a protocol body would go.
			b2, err := msgpack.Marshal(&m)
			if err != nil || !bytes.Equal(b2, b) {
				t.Fatalf("msgpack.Marshal: %v\n% x\n% x", err, b2, b)
			}
			var viaLib Message
			if err := msgpack.Unmarshal(b, &viaLib); err != nil || !reflect.DeepEqual(normalizeMsg(viaLib), normalizeMsg(m)) {
				t.Fatalf("msgpack.Unmarshal: %v %+v", err, viaLib)
			}
		})
	}
}

// normalizeMsg makes empty and nil slices compare equal.
func normalizeMsg(m Message) Message {
	if len(m.Applied) == 0 {
		m.Applied = nil
	}
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	if len(m.Records) == 0 {
		m.Records = nil
	}
	for _, f := range []*[]byte{&m.Start, &m.End, &m.Buckets} {
		if len(*f) == 0 {
			*f = nil
		}
	}
	if len(m.Digests) == 0 {
		m.Digests = nil
	}
	for _, v := range []*crdt.VersionVector{&m.Seen, &m.Fence} {
		if len(*v) == 0 {
			*v = nil
		}
	}
	for i := range m.Records {
		m.Records[i].Record = normalizeRec(m.Records[i].Record)
	}
	return m
}

func normalizeRec(r crdt.Record) crdt.Record {
	return crdt.Merge(crdt.Record{}, r) // canonical slices
}

// TestEntrySize checks the size batching computes from an entry's lengths
// against its encoding, across msgpack's length and integer boundaries.
func TestEntrySize(t *testing.T) {
	delta := func(n int) []byte { return make([]byte, n) }
	tests := []struct {
		name string
		e    store.LogEntry
	}{
		{"small", sampleEntry(nA, 1, "k", "v", 0)},
		{"no request id", store.LogEntry{Origin: 1, Seq: 1, Key: []byte("k"), Delta: delta(1)}},
		{"request id of 31", store.LogEntry{Origin: 1, Seq: 1, Key: []byte("k"), ReqID: string(delta(31)), Delta: delta(1)}},
		{"request id of 32", store.LogEntry{Origin: 1, Seq: 1, Key: []byte("k"), ReqID: string(delta(32)), Delta: delta(1)}},
		{"request id of 256", store.LogEntry{Origin: 1, Seq: 1, Key: []byte("k"), ReqID: string(delta(256)), Delta: delta(1)}},
		{"key of 255", store.LogEntry{Origin: 1, Seq: 1, Key: delta(255), Delta: delta(255)}},
		{"key of 256", store.LogEntry{Origin: 1, Seq: 1, Key: delta(256), Delta: delta(256)}},
		{"delta of 65536", store.LogEntry{Origin: 1, Seq: 1, Key: delta(65535), Delta: delta(65536)}},
		{"counters 127, 128", store.LogEntry{Origin: 127, Seq: 128, TS: 255, Key: []byte("k"), Delta: delta(1)}},
		{"counters 256, 65536", store.LogEntry{Origin: 256, Seq: 1 << 16, TS: 1<<16 - 1, Key: []byte("k"), Delta: delta(1)}},
		{"counters 2^32", store.LogEntry{Origin: 1<<32 - 1, Seq: 1 << 32, TS: 1 << 63, Key: []byte("k"), Delta: delta(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			if err := encodeEntry(enc, &tt.e); err != nil {
				t.Fatal(err)
			}
			if got := entrySize(&tt.e); got != buf.Len() {
				t.Fatalf("entrySize = %d, encoding has %d bytes", got, buf.Len())
			}
		})
	}
}

// TestMessageBytes pins the wire format of a small message.
func TestMessageBytes(t *testing.T) {
	m := Message{Type: MsgAck, ID: 2, Applied: vv(uint64(nA), 3)}
	// map of 3: "t": 2, "i": 2, "a": [0x0a, 3]
	const want = "83 a174 02 a169 02 a161 92 0a 03"
	if got := hex.EncodeToString(AppendMessage(nil, &m)); got != stripSpaces(want) {
		t.Fatalf("got %s, want %s", got, stripSpaces(want))
	}
}

func stripSpaces(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)) }

func TestMessageUnknownFieldsSkipped(t *testing.T) {
	// {"t": 1, "zz": {"nested": [1, 2]}, "a": [0x0a, 1]}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeMapLen(3)
	_ = enc.EncodeString("t")
	_ = enc.EncodeUint(1)
	_ = enc.EncodeString("zz")
	_ = enc.Encode(map[string]any{"nested": []int{1, 2}})
	_ = enc.EncodeString("a")
	_ = enc.EncodeArrayLen(2)
	_ = enc.EncodeUint(0x0a)
	_ = enc.EncodeUint(1)
	got, err := UnmarshalMessage(buf.Bytes())
	if err != nil || got.Type != MsgProbe || !got.Applied.Equal(vv(uint64(nA), 1)) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestMessageDecodeErrors(t *testing.T) {
	enc := func(f func(e *msgpack.Encoder)) []byte {
		var buf bytes.Buffer
		f(msgpack.NewEncoder(&buf))
		return buf.Bytes()
	}
	entry := func(e *msgpack.Encoder, origin, seq uint64, key []byte) {
		_ = e.EncodeArrayLen(6)
		_ = e.EncodeUint(origin)
		_ = e.EncodeUint(seq)
		_ = e.EncodeBytes(key)
		_ = e.EncodeUint(1)
		_ = e.EncodeString("")
		_ = e.EncodeBytes(sampleEntry(nA, 1, "k", "v", 0).Delta)
	}
	push := func(f func(e *msgpack.Encoder)) []byte {
		return enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(2)
			_ = e.EncodeString("t")
			_ = e.EncodeUint(3)
			_ = e.EncodeString("e")
			_ = e.EncodeArrayLen(1)
			f(e)
		})
	}
	tests := map[string][]byte{
		"empty":          nil,
		"not a map":      {0x91, 0x01},
		"trailing bytes": append(AppendMessage(nil, &Message{Type: MsgProbe}), 0xc0),
		"vector odd length": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("a")
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeUint(1)
		}),
		"vector unsorted": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("a")
			_ = e.EncodeArrayLen(4)
			for _, v := range []uint64{2, 1, 1, 1} {
				_ = e.EncodeUint(v)
			}
		}),
		"vector zero counter": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("a")
			_ = e.EncodeArrayLen(2)
			_ = e.EncodeUint(1)
			_ = e.EncodeUint(0)
		}),
		"type too large":    enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("t"); _ = e.EncodeUint(300) }),
		"entry zero origin": push(func(e *msgpack.Encoder) { entry(e, 0, 1, []byte("k")) }),
		"entry zero seq":    push(func(e *msgpack.Encoder) { entry(e, 1, 0, []byte("k")) }),
		"entry empty key":   push(func(e *msgpack.Encoder) { entry(e, 1, 1, nil) }),
		"entry huge key":    push(func(e *msgpack.Encoder) { entry(e, 1, 1, make([]byte, maxKeyLen+1)) }),
		"entry without a delta": push(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(6)
			_ = e.EncodeUint(1)
			_ = e.EncodeUint(1)
			_ = e.EncodeBytes([]byte("k"))
			_ = e.EncodeUint(1)
			_ = e.EncodeString("")
			_ = e.EncodeBytes([]byte{})
		}),
		"entry delta inline, not a bin": push(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(6)
			_ = e.EncodeUint(1)
			_ = e.EncodeUint(1)
			_ = e.EncodeBytes([]byte("k"))
			_ = e.EncodeUint(1)
			_ = e.EncodeString("")
			d := sampleRecord(nA, 1, "v", 0)
			_ = d.EncodeMsgpack(e)
		}),
		"entry delta claims 4GiB": push(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(6)
			_ = e.EncodeUint(1)
			_ = e.EncodeUint(1)
			_ = e.EncodeBytes([]byte("k"))
			_ = e.EncodeUint(1)
			_ = e.EncodeString("")
			_ = e.EncodeBytesLen(1 << 31)
		}),
		"entry short array": push(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(2); _ = e.EncodeUint(1); _ = e.EncodeUint(1) }),
		"entry claims 4GiB": push(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(6)
			_ = e.EncodeUint(1)
			_ = e.EncodeUint(1)
			_ = e.EncodeBytesLen(1 << 31)
		}),
		"entries claim many": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("e")
			_ = e.EncodeArrayLen(1 << 30)
		}),
		"too many bits": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("b")
			_ = e.EncodeUint(maxBits + 1)
		}),
		"digests of 7 bytes": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("g")
			_ = e.EncodeBytes(make([]byte, 7))
		}),
		"digests claim 4GiB": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("g")
			_ = e.EncodeBytesLen(1 << 31)
		}),
		"bitmap too long": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("k")
			_ = e.EncodeBytes(make([]byte, bitmapLen(maxBits)+1))
		}),
		"start too long": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("s")
			_ = e.EncodeBytes(make([]byte, maxKeyLen+1))
		}),
		"seen unsorted": enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("v")
			_ = e.EncodeArrayLen(4)
			for _, v := range []uint64{2, 1, 1, 1} {
				_ = e.EncodeUint(v)
			}
		}),
		"fence not a vector":  enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("f"); _ = e.EncodeUint(1) }),
		"resync not a number": enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("y"); _ = e.EncodeString("x") }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := UnmarshalMessage(b); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("got %v, want ErrBadMessage", err)
			}
		})
	}
	// Every truncation of a valid message is an error, never a panic.
	for name, m := range sampleMessages() {
		b := AppendMessage(nil, &m)
		for i := range len(b) {
			if _, err := UnmarshalMessage(b[:i]); err == nil {
				t.Fatalf("%s: truncated to %d of %d bytes decoded", name, i, len(b))
			}
		}
	}
}

func TestMsgTypeString(t *testing.T) {
	for typ, want := range map[MsgType]string{
		MsgProbe: "probe", MsgAck: "ack", MsgPush: "push", MsgSnap: "sync-chunk", MsgDigestReq: "digest-request", MsgDigest: "digest",
		0: "msgtype(0)", 99: "msgtype(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %q, want %q", typ, got, want)
		}
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessage(nil, &m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := UnmarshalMessage(AppendMessage(nil, &m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normalizeMsg(again), normalizeMsg(m)) {
			t.Fatalf("unstable: %+v vs %+v", again, m)
		}
	})
}
