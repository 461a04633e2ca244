package crdt

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func TestPropRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRecord().Draw(t, "record")
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "prefix")
		enc := AppendRecord(slices.Clone(prefix), r)
		if !bytes.Equal(enc[:len(prefix)], prefix) {
			t.Fatal("AppendRecord overwrote dst")
		}
		body := enc[len(prefix):]
		got, err := UnmarshalRecord(body)
		if err != nil {
			t.Fatalf("UnmarshalRecord: %v", err)
		}
		if !recordsEqual(got, r) {
			t.Fatalf("round trip:\n%s\n%s", fmtRecord(r), fmtRecord(got))
		}
		// The result does not alias the input.
		want := fmtRecord(got)
		for i := range body {
			body[i] = 0xff
		}
		if fmtRecord(got) != want {
			t.Fatal("decoded record aliases its input")
		}
	})
}

func TestPropContextRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Tokens may carry a cloud in any shape; decoding normalizes it.
		raw := genRawContext().Draw(t, "context")
		got, err := DecodeContext(EncodeContext(raw))
		if err != nil {
			t.Fatalf("DecodeContext: %v", err)
		}
		if err := checkContext(got); err != nil {
			t.Fatal(err)
		}
		if !contextsEqual(got, raw) {
			t.Fatalf("round trip %v %v -> %v %v", raw.VV, raw.Cloud, got.VV, got.Cloud)
		}
		if again := EncodeContext(got); !bytes.Equal(again, EncodeContext(normalize(raw.VV, slices.Clone(raw.Cloud)))) {
			t.Fatal("encoding of a normalized context is not canonical")
		}
	})
}

// message is how Records and Contexts travel inside protocol messages.
type message struct {
	Key     string
	Rec     Record
	Ctx     Context
	Deltas  []Record
	Missing *Record
}

func TestPropMsgpackRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := message{
			Key:    rapid.String().Draw(t, "key"),
			Rec:    genRecord().Draw(t, "rec"),
			Ctx:    genContext().Draw(t, "ctx"),
			Deltas: rapid.SliceOfN(genRecord(), 0, 3).Draw(t, "deltas"),
		}
		// Records and contexts implement the msgpack interfaces on their
		// pointers, so a message must be marshalled by pointer.
		b, err := msgpack.Marshal(&in)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var out message
		if err := msgpack.Unmarshal(b, &out); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if out.Key != in.Key || !recordsEqual(out.Rec, in.Rec) || !contextsEqual(out.Ctx, in.Ctx) ||
			!slices.EqualFunc(out.Deltas, in.Deltas, recordsEqual) || out.Missing != nil {
			t.Fatalf("round trip:\n%+v\n%+v", in, out)
		}
	})
}

func TestMsgpackErrorsWrapBadEncoding(t *testing.T) {
	in := message{Rec: rec(Context{}, val(nA, 1, 10, "x")), Ctx: ctxOf(vv(nA, 1))}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) - 1 {
		var out message
		if err := msgpack.Unmarshal(b[:i], &out); err == nil {
			t.Fatalf("truncated message of %d bytes decoded", i)
		}
	}
	// An entry outside its record's context.
	bad := Record{Entries: []Entry{val(nA, 2, 10, "x")}, Context: ctxOf(vv(nA, 1))}
	b, err = msgpack.Marshal(&message{Rec: bad})
	if err != nil {
		t.Fatal(err)
	}
	var out message
	if err := msgpack.Unmarshal(b, &out); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("Unmarshal of an invalid record: %v, want ErrBadEncoding", err)
	}
}

// TestTruncated: every strict prefix of a valid encoding is an error that
// wraps ErrBadEncoding.
func TestTruncated(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRecord().Draw(t, "record")
		enc := AppendRecord(nil, r)
		for i := range len(enc) {
			if _, err := UnmarshalRecord(enc[:i]); !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("UnmarshalRecord of %d/%d bytes: %v", i, len(enc), err)
			}
		}
		tok := EncodeContext(r.Context)
		for i := range len(tok) {
			if _, err := DecodeContext(tok[:i]); !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("DecodeContext of %d/%d bytes: %v", i, len(tok), err)
			}
		}
	})
}

// TestGarbage: random bytes, and valid encodings with random bytes changed,
// either fail with ErrBadEncoding or decode to a valid value.
func TestGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var b []byte
		if rapid.Bool().Draw(t, "mutate") {
			b = AppendRecord(nil, genRecord().Draw(t, "record"))
			for range rapid.IntRange(1, 4).Draw(t, "changes") {
				b[rapid.IntRange(0, len(b)-1).Draw(t, "at")] = rapid.Byte().Draw(t, "byte")
			}
		} else {
			b = append([]byte{recordFormat}, rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "garbage")...)
		}
		checkDecodes(t, b)
		checkDecodesContext(t, b[1:])
	})
}

func TestMalformed(t *testing.T) {
	enc := func(f func(e *msgpack.Encoder)) []byte {
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		f(e)
		return buf.Bytes()
	}
	uints := func(e *msgpack.Encoder, us ...uint64) {
		for _, u := range us {
			_ = e.EncodeUint(u)
		}
	}
	entry := func(e *msgpack.Encoder, node, counter, kind uint64) {
		_ = e.EncodeArrayLen(entryFields)
		uints(e, node, counter, 10)
		_ = e.EncodeInt(0)
		uints(e, kind)
		_ = e.EncodeBytes(nil)
		uints(e, 0, 0, 0)
	}
	ctxA2 := func(e *msgpack.Encoder) { // {A:2}, then no resets
		_ = e.EncodeArrayLen(2)
		uints(e, uint64(nA), 2)
		_ = e.EncodeArrayLen(0)
		_ = e.EncodeArrayLen(0)
	}
	// withResets ends a record of no entries with the context {A:2} and
	// the given reset fields.
	withResets := func(us ...uint64) []byte {
		return append([]byte{recordFormat}, enc(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(0)
			_ = e.EncodeArrayLen(2)
			uints(e, uint64(nA), 2)
			_ = e.EncodeArrayLen(0)
			_ = e.EncodeArrayLen(len(us))
			uints(e, us...)
		})...)
	}
	record := func(f func(e *msgpack.Encoder)) []byte {
		return append([]byte{recordFormat}, enc(f)...)
	}
	valid := AppendRecord(nil, rec(Context{}, val(nA, 1, 10, "x")))
	records := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown format", append([]byte{recordFormat + 1}, valid[1:]...)},
		{"current layout under the legacy format", append([]byte{recordFormatLegacy}, valid[1:]...)},
		{"trailing bytes", append(slices.Clone(valid), 0)},
		{"not an array", record(func(e *msgpack.Encoder) { _ = e.EncodeString("x") })},
		{"array of 4", record(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(4) })},
		{"legacy array under the current format", record(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(recordFieldsLegacy); _ = e.EncodeArrayLen(0) })},
		{"entry count too large", record(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(recordFields); _ = e.EncodeArrayLen(maxItems + 1) })},
		{"entry count beyond the input", record(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(recordFields); _ = e.EncodeArrayLen(maxItems) })},
		{"entry of 8 fields", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeArrayLen(entryFieldsLegacy)
		})},
		{"unknown kind", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			entry(e, uint64(nA), 1, 4)
			ctxA2(e)
		})},
		{"base entry in the legacy format", append([]byte{recordFormatLegacy}, enc(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFieldsLegacy)
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeArrayLen(entryFieldsLegacy)
			uints(e, uint64(nA), 1, 10)
			_ = e.EncodeInt(0)
			uints(e, uint64(KindBase))
			_ = e.EncodeBytes(nil)
			uints(e, 1, 0)
			_ = e.EncodeArrayLen(2)
			uints(e, uint64(nA), 2)
			_ = e.EncodeArrayLen(0)
		})...)},
		{"lineage on a value", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeArrayLen(entryFields)
			uints(e, uint64(nA), 1, 10)
			_ = e.EncodeInt(0)
			uints(e, uint64(KindValue))
			_ = e.EncodeBytes(nil)
			uints(e, 0, 0, 1)
			ctxA2(e)
		})},
		{"lineage after its dot", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeArrayLen(entryFields)
			uints(e, uint64(nA), 1, 10)
			_ = e.EncodeInt(0)
			uints(e, uint64(KindCount))
			_ = e.EncodeBytes(nil)
			uints(e, 1, 0, 2)
			ctxA2(e)
		})},
		{"odd reset list", withResets(uint64(nA), 1, 1)},
		{"zero reset", withResets(uint64(nA), 1, 0, 0)},
		{"resets out of order", withResets(uint64(nB), 1, 1, 0, uint64(nA), 1, 1, 0)},
		{"repeated reset", withResets(uint64(nA), 1, 1, 0, uint64(nA), 1, 2, 0)},
		{"entries out of order", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(2)
			entry(e, uint64(nA), 2, 0)
			entry(e, uint64(nA), 1, 0)
			ctxA2(e)
		})},
		{"duplicate dots", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(2)
			entry(e, uint64(nA), 1, 0)
			entry(e, uint64(nA), 1, 0)
			ctxA2(e)
		})},
		{"entry outside the context", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			entry(e, uint64(nA), 3, 0)
			ctxA2(e)
		})},
		{"string where a counter belongs", record(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(recordFields)
			_ = e.EncodeArrayLen(1)
			_ = e.EncodeArrayLen(entryFields)
			uints(e, uint64(nA))
			_ = e.EncodeString("1")
		})},
	}
	for _, tt := range records {
		t.Run("record/"+tt.name, func(t *testing.T) {
			if r, err := UnmarshalRecord(tt.b); !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("UnmarshalRecord = %s, %v; want ErrBadEncoding", fmtRecord(r), err)
			}
		})
	}
	contexts := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"trailing bytes", append(EncodeContext(ctxOf(vv(nA, 1))), 0x90)},
		{"odd pair list", enc(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(3); uints(e, 1, 2, 3); _ = e.EncodeArrayLen(0) })},
		{"vector not sorted", enc(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(4); uints(e, 2, 1, 1, 1); _ = e.EncodeArrayLen(0) })},
		{"vector with a repeated node", enc(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(4); uints(e, 1, 1, 1, 2); _ = e.EncodeArrayLen(0) })},
		{"vector with a zero counter", enc(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(2); uints(e, 1, 0); _ = e.EncodeArrayLen(0) })},
		{"pair list too long", enc(func(e *msgpack.Encoder) { _ = e.EncodeArrayLen(2*maxItems + 2) })},
		{"map instead of array", enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(0) })},
		{"float where a counter belongs", enc(func(e *msgpack.Encoder) {
			_ = e.EncodeArrayLen(0)
			_ = e.EncodeArrayLen(2)
			_ = e.EncodeUint(1)
			_ = e.EncodeFloat64(1.5)
		})},
	}
	for _, tt := range contexts {
		t.Run("context/"+tt.name, func(t *testing.T) {
			if c, err := DecodeContext(tt.b); !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("DecodeContext = %v %v, %v; want ErrBadEncoding", c.VV, c.Cloud, err)
			}
		})
	}
}

// fataler is what *testing.T and *rapid.T have in common here.
type fataler interface {
	Fatalf(format string, args ...any)
}

// checkDecodes is the fuzz property of UnmarshalRecord: an error wraps
// ErrBadEncoding; a success is a valid record whose encoding decodes to it.
func checkDecodes(t fataler, b []byte) {
	r, err := UnmarshalRecord(b)
	if err != nil {
		if !errors.Is(err, ErrBadEncoding) {
			t.Fatalf("error %v does not wrap ErrBadEncoding", err)
		}
		return
	}
	if err := checkRecord(r); err != nil {
		t.Fatalf("decoded an invalid record: %v: %s", err, fmtRecord(r))
	}
	again, err := UnmarshalRecord(AppendRecord(nil, r))
	if err != nil || !recordsEqual(again, r) {
		t.Fatalf("re-encoding %s gives %s, %v", fmtRecord(r), fmtRecord(again), err)
	}
}

func checkDecodesContext(t fataler, b []byte) {
	c, err := DecodeContext(b)
	if err != nil {
		if !errors.Is(err, ErrBadEncoding) {
			t.Fatalf("error %v does not wrap ErrBadEncoding", err)
		}
		return
	}
	if err := checkContext(c); err != nil {
		t.Fatalf("decoded a context not in normal form: %v", err)
	}
	again, err := DecodeContext(EncodeContext(c))
	if err != nil || !again.Equal(c) {
		t.Fatalf("re-encoding %v %v gives %v %v, %v", c.VV, c.Cloud, again.VV, again.Cloud, err)
	}
}

func fuzzSeeds() []Record {
	return []Record{
		{},
		{Context: ctxOf(vv(nA, 3), Dot{nB, 5})},
		rec(Context{}, val(nA, 1, 10, "x")),
		rec(ctxOf(vv(nC, 7)), expiring(val(nA, 1, 10, "hello"), 99), tomb(nB, 4, 11), count(nC, 9, 12, 5, 3)),
		rec(ctxOf(nil, Dot{0xffffffffffffffff, 1 << 40}), count(0x0123456789abcdef, 1<<33, 1<<60, 1<<63, 1)),
		benchRecord(),
		resetRecord(),
	}
}

// resetRecord is a counter after a delete raced an increment: a base, a
// count entry that goes on with its lineage, and the delete's reset.
func resetRecord() Record {
	c := count(nB, 9, 12, 101, 0)
	c.Origin = 3
	r := rec(ctxOf(vv(nA, 4, nB, 9)), Entry{Dot: Dot{nA, 2}, TS: 5, Kind: KindBase, Inc: 7}, tomb(nA, 4, 11), c)
	r.Resets = []Reset{{Node: nB, Origin: 3, Inc: 100}}
	return r
}

func FuzzUnmarshalRecord(f *testing.F) {
	for _, r := range fuzzSeeds() {
		f.Add(AppendRecord(nil, r))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodes(t, b) })
}

func FuzzDecodeContext(f *testing.F) {
	for _, r := range fuzzSeeds() {
		f.Add(EncodeContext(r.Context))
	}
	f.Add(EncodeContext(ctxOf(vv(nA, 1), Dot{nA, 2}, Dot{nA, 4}, Dot{nA, 4}, Dot{nB, 0})))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodesContext(t, b) })
}

// TestHugeLengthsAllocateLittle: lengths in the input are not trusted for
// allocation; a few bytes claiming gigabytes fail cheaply.
func TestHugeLengthsAllocateLittle(t *testing.T) {
	entryHead := []byte{recordFormat, 0x93, 0x91, 0x99, 0x0a, 0x01, 0x0a, 0x00, 0x00}
	legacyHead := []byte{recordFormatLegacy, 0x92, 0x91, 0x98, 0x0a, 0x01, 0x0a, 0x00, 0x00}
	inputs := map[string][]byte{
		"value of 4 GiB":        append(slices.Clone(entryHead), 0xc6, 0xff, 0xff, 0xff, 0xff, 'x'),
		"value of 1 MiB":        append(slices.Clone(entryHead), 0xc6, 0x00, 0x10, 0x00, 0x00, 'x'),
		"legacy value of 4 GiB": append(slices.Clone(legacyHead), 0xc6, 0xff, 0xff, 0xff, 0xff, 'x'),
		"65536 entries":         {recordFormat, 0x93, 0xdd, 0x00, 0x01, 0x00, 0x00},
		"131072 context pairs":  {recordFormat, 0x93, 0x90, 0xdd, 0x00, 0x02, 0x00, 0x00, 0x01},
		"262144 reset fields":   {recordFormat, 0x93, 0x90, 0x90, 0x90, 0xdd, 0x00, 0x04, 0x00, 0x00, 0x01},
		"4G context pairs":      {0xdd, 0xff, 0xff, 0xff, 0xfe, 0x01},
		"string of 4 GiB as ts": append([]byte{recordFormat, 0x93, 0x91, 0x99, 0x0a, 0x01}, 0xdb, 0xff, 0xff, 0xff, 0xff),
	}
	for name, b := range inputs {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, errR := UnmarshalRecord(b)
			_, errC := DecodeContext(b)
			runtime.ReadMemStats(&after)
			if !errors.Is(errR, ErrBadEncoding) || !errors.Is(errC, ErrBadEncoding) {
				t.Fatalf("errors %v, %v; want ErrBadEncoding", errR, errC)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Fatalf("decoding %d bytes allocated %d bytes", len(b), n)
			}
		})
	}
}

// TestLegacyRecord: a record of format 1, as stores and peers not yet
// upgraded hold and send, decodes as the same record with every count entry
// in lineage 0 and no resets, from storage and inside a msgpack message.
func TestLegacyRecord(t *testing.T) {
	want := rec(ctxOf(vv(nA, 3, nB, 2)), val(nA, 1, 10, "x"), tomb(nA, 3, 12), count(nB, 2, 11, 5, 1))
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	_ = e.EncodeArrayLen(recordFieldsLegacy)
	_ = e.EncodeArrayLen(len(want.Entries))
	for _, x := range want.Entries {
		_ = e.EncodeArrayLen(entryFieldsLegacy)
		_ = e.EncodeUint(uint64(x.Dot.Node))
		_ = e.EncodeUint(x.Dot.Counter)
		_ = e.EncodeUint(uint64(x.TS))
		_ = e.EncodeInt(x.Expiry)
		_ = e.EncodeUint(uint64(x.Kind))
		_ = e.EncodeBytes(x.Value)
		_ = e.EncodeUint(x.Inc)
		_ = e.EncodeUint(x.Dec)
	}
	_ = encodeContext(e, &want.Context)
	legacy := buf.Bytes()

	got, err := UnmarshalRecord(append([]byte{recordFormatLegacy}, legacy...))
	if err != nil || !recordsEqual(got, want) {
		t.Fatalf("stored legacy record decodes as %s, %v; want %s", fmtRecord(got), err, fmtRecord(want))
	}
	var inMsg Record
	if err := msgpack.Unmarshal(legacy, &inMsg); err != nil || !recordsEqual(inMsg, want) {
		t.Fatalf("legacy record in a message decodes as %s, %v; want %s", fmtRecord(inMsg), err, fmtRecord(want))
	}
	if enc := AppendRecord(nil, got); enc[0] != recordFormat {
		t.Fatalf("a legacy record is written back in format %d, want %d", enc[0], recordFormat)
	}
}
