package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// message is one message type on the wire: the opcode and flags it travels
// with, and a fresh zero value to decode into.
type message struct {
	name  string
	op    Opcode
	flags Flags
	zero  func() any
}

func messageKinds() []message {
	return []message{
		{"Hello", OpHello, 0, func() any { return new(Hello) }},
		{"GetRequest", OpGet, 0, func() any { return new(GetRequest) }},
		{"SetRequest", OpSet, 0, func() any { return new(SetRequest) }},
		{"DelRequest", OpDel, 0, func() any { return new(DelRequest) }},
		{"IncrRequest", OpIncr, 0, func() any { return new(IncrRequest) }},
		{"LogLevelRequest", OpLogLevel, 0, func() any { return new(LogLevelRequest) }},
		{"GetResponse", OpGet, FlagResponse, func() any { return new(GetResponse) }},
		{"WriteResponse", OpSet, FlagResponse, func() any { return new(WriteResponse) }},
		{"IncrResponse", OpIncr, FlagResponse, func() any { return new(IncrResponse) }},
		{"StatusResponse", OpStatus, FlagResponse, func() any { return new(StatusResponse) }},
		{"DigestResponse", OpDigest, FlagResponse, func() any { return new(DigestResponse) }},
		{"MembersResponse", OpMembers, FlagResponse, func() any { return new(MembersResponse) }},
		{"BackupResponse", OpBackup, FlagResponse, func() any { return new(BackupResponse) }},
		{"BackupChunk", OpBackup, FlagResponse, func() any { return new(BackupChunk) }},
		{"Error", OpError, FlagResponse, func() any { return new(Error) }},
	}
}

// sampleMessages holds, for every message type, a value with every field set
// and the zero value.
func sampleMessages() []any {
	return []any{
		&Hello{Version: 1, Role: RoleAdmin, Token: "s3cret", Client: "upu-go/0.1"},
		&Hello{
			Version: 1, NodeID: "8f14e45fceea167a", Domain: "eu-west", HeartbeatMS: 5000,
			IdleTimeoutMS: 15000, MaxBody: DefaultMaxBody, MaxKey: 1 << 10, MaxValue: 1 << 20,
		},
		&Hello{},
		&GetRequest{Key: []byte("user:1"), Scope: ScopeRoot, Siblings: true, ReqID: "r-1"},
		&GetRequest{},
		&GetResponse{
			Value: []byte("v1"), Counter: true, ExpiryMS: 1_700_000_000_000, Context: []byte{1, 2, 3},
			Siblings: []Sibling{
				{Value: []byte("v1"), ExpiryMS: 1_700_000_000_000, Node: "8f14e45fceea167a", TimeMS: 1_690_000_000_000},
				{Value: []byte{}, Deleted: true, Node: "0000000000000001", TimeMS: -1},
			},
		},
		&GetResponse{},
		&SetRequest{Key: []byte("k"), Value: bytes.Repeat([]byte{0xAB}, 70_000), TTLMS: 30_000, Context: []byte{9}, ReqID: "r-2"},
		&SetRequest{},
		&WriteResponse{Context: []byte{0, 0, 7}},
		&WriteResponse{},
		&DelRequest{Key: []byte("k"), Context: []byte{1}, ReqID: "r-3"},
		&DelRequest{},
		&IncrRequest{Key: []byte("hits"), Delta: -1 << 40, ReqID: "r-4"},
		&IncrRequest{},
		&IncrResponse{Value: -5},
		&IncrResponse{},
		&StatusResponse{
			NodeID: "8f14e45fceea167a", Domain: "eu-west", Version: "0.1.0", Addr: "127.0.0.1:7700",
			StartedMS: 1_700_000_000_000, Keys: 12, LogLen: 3,
			Applied: map[string]uint64{"8f14e45fceea167a": 3, "0000000000000001": 1 << 60}, Conns: 2,
			Members: 3, Successor: "0000000000000001", EntriesSent: 7, EntriesApplied: 9, SendErrors: 1,
			Peers: []PeerStatus{
				{NodeID: "0000000000000001", Addr: "10.0.0.2:7700", Behind: 4, Heard: true},
				{NodeID: "0000000000000002", Addr: "10.0.0.3:7700", Unresponsive: true, Snapshot: true},
			},
		},
		&StatusResponse{},
		&DigestResponse{Digest: strings.Repeat("ab", 32), Keys: 1 << 33},
		&DigestResponse{},
		&BackupResponse{NodeID: "8f14e45fceea167a", Domain: "eu-west", Digest: strings.Repeat("cd", 32), Keys: 100_000, CreatedMS: 1_700_000_000_000, Size: 1 << 34},
		&BackupResponse{},
		&BackupChunk{Data: bytes.Repeat([]byte{0x5A}, 256<<10)},
		&BackupChunk{End: true},
		&BackupChunk{},
		&MembersResponse{Members: []Member{
			{NodeID: "8f14e45fceea167a", Domain: "eu-west", Addr: "10.0.0.1:7700", GossipAddr: "10.0.0.1:7946", State: "alive", Self: true},
			{NodeID: "0000000000000001", Domain: "eu-west", Addr: "10.0.0.2:7700", GossipAddr: "10.0.0.2:7946", State: "failed"},
		}},
		&MembersResponse{},
		&LogLevelRequest{Level: "debug"},
		&LogLevelRequest{},
		&Error{Code: CodeWrongType, Message: "incr on a register", ReqID: "r-5"},
		&Error{},
	}
}

func kindOf(t testing.TB, msg any) message {
	t.Helper()
	for _, k := range messageKinds() {
		if reflect.TypeOf(k.zero()) == reflect.TypeOf(msg) {
			return k
		}
	}
	t.Fatalf("no message kind for %T", msg)
	return message{}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, in := range sampleMessages() {
		kind := kindOf(t, in)
		t.Run(kind.name, func(t *testing.T) {
			prefix := []byte("earlier frames")
			// AppendFrame sets the length whatever the caller put there.
			h := Header{Opcode: kind.op, Flags: kind.flags, ReqID: 1 << 63, Len: 12345}
			buf, err := AppendFrame(bytes.Clone(prefix), h, in)
			if err != nil {
				t.Fatalf("AppendFrame: %v", err)
			}
			if !bytes.HasPrefix(buf, prefix) {
				t.Fatal("AppendFrame changed the bytes before the frame")
			}
			d := NewDecoder(0)
			d.Write(buf[len(prefix):])
			f, ok, err := d.Next()
			if !ok || err != nil {
				t.Fatalf("Next = %v, %v", ok, err)
			}
			h.Len = uint32(len(buf) - len(prefix) - HeaderSize)
			if f.Header != h {
				t.Fatalf("header %+v, want %+v", f.Header, h)
			}
			if d.Buffered() != 0 {
				t.Fatalf("%d bytes left after the frame", d.Buffered())
			}
			out := kind.zero()
			if err := DecodeBody(f.Body, out); err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("decoded %+v, want %+v", out, in)
			}
		})
	}
}

func TestAppendFrameWithoutBody(t *testing.T) {
	h := Header{Opcode: OpPing, ReqID: 3, Len: 99}
	got, err := AppendFrame(nil, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Len = 0
	if want := AppendHeader(nil, h); !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = % x, want % x", got, want)
	}
}

func TestAppendFrameEncodeError(t *testing.T) {
	dst := []byte("keep")
	got, err := AppendFrame(dst, Header{Opcode: OpSet}, map[string]any{"bad": make(chan int)})
	if err == nil {
		t.Fatal("AppendFrame encoded a channel")
	}
	if !bytes.Equal(got, []byte("keep")) {
		t.Fatalf("AppendFrame left %q after failing, want %q", got, "keep")
	}
}

// TestBodyEncoding pins the exact bytes of a few bodies: the short keys and
// msgpack types are part of the wire format. SPEC.md shows the same examples.
func TestBodyEncoding(t *testing.T) {
	tests := []struct {
		msg  any
		want string
	}{
		{&GetRequest{Key: []byte("k")}, "81 a1 6b c4 01 6b"},
		{&SetRequest{Key: []byte("k"), Value: []byte("hello"), TTLMS: 30000}, "83 a1 6b c4 01 6b a1 76 c4 05 68 65 6c 6c 6f a3 74 74 6c cd 75 30"},
		{&IncrRequest{Key: []byte("c"), Delta: -2}, "82 a1 6b c4 01 63 a1 64 fe"},
		{&WriteResponse{}, "80"},
		{&Error{Code: CodeNotFound}, "81 a1 63 02"},
		{
			&Hello{Version: 1, Role: RoleClient, Token: "s3cret", Client: "upu-go/0.1"},
			"83 a1 76 01 a1 74 a6 73 33 63 72 65 74 a1 63 aa 75 70 75 2d 67 6f 2f 30 2e 31",
		},
	}
	for _, tt := range tests {
		frame, err := AppendFrame(nil, Header{Opcode: kindOf(t, tt.msg).op}, tt.msg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := frame[HeaderSize:]; !bytes.Equal(got, want) {
			t.Errorf("%T body = % x, want % x", tt.msg, got, want)
		}
	}
}

func TestDecodeBodyMissingKeysAreZero(t *testing.T) {
	for _, kind := range messageKinds() {
		got := kind.zero()
		if err := DecodeBody([]byte{0x80}, got); err != nil {
			t.Fatalf("%s: %v", kind.name, err)
		}
		if !reflect.DeepEqual(got, kind.zero()) {
			t.Fatalf("%s: empty map decoded to %+v", kind.name, got)
		}
	}
}

// everyType is a map holding every msgpack type, length field width and
// nesting form, to stand for fields a later version might add.
func everyType(t *testing.T) map[string]any {
	t.Helper()
	many := make([]int, 70_000) // array32
	dict := map[string]int{}    // map16
	for i := range 20 {
		dict[string(rune('a'+i))] = i
	}
	return map[string]any{
		"xi": []any{int8(-100), int16(-30000), int32(-1 << 30), int64(-1 << 60), uint8(200), uint16(60000), uint32(1 << 31), uint64(1 << 63), 5, -5},
		"xf": []any{float32(1.5), 2.5, true, false, nil},
		"xs": []any{"", "short", strings.Repeat("s", 40), strings.Repeat("s", 300), strings.Repeat("s", 70_000)},
		"xb": []any{[]byte{}, make([]byte, 300), make([]byte, 70_000)},
		"xt": []any{time.Unix(1, 0), time.Unix(1, 5), time.Unix(1<<40, 5)}, // fixext4, fixext8, ext8
		"xa": [][]any{{}, make([]any, 20), {[]any{[]any{map[string]any{"deep": 1}}}}},
		"xm": dict,
		"xl": many,
	}
}

func TestDecodeBodyIgnoresUnknownKeys(t *testing.T) {
	extra := everyType(t)
	extra["k"] = []byte("key")
	extra["d"] = -7
	body, err := msgpack.Marshal(extra)
	if err != nil {
		t.Fatal(err)
	}
	var got IncrRequest
	if err := DecodeBody(body, &got); err != nil {
		t.Fatalf("DecodeBody: %v", err)
	}
	if want := (IncrRequest{Key: []byte("key"), Delta: -7}); !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
}

// nested returns a body whose field "z" holds depth nested arrays.
func nested(depth int) []byte {
	b := []byte{0x81, 0xa1, 'z'}
	b = append(b, bytes.Repeat([]byte{0x91}, depth-1)...)
	return append(b, 0x90)
}

func TestCheckBody(t *testing.T) {
	valid := []struct {
		name string
		body []byte
	}{
		{"empty map", []byte{0x80}},
		{"map16", []byte{0xde, 0, 1, 0xa1, 'k', 0xc0}},
		{"map32", []byte{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc0}},
		{"fixext16", append([]byte{0x81, 0xa1, 'x', 0xd8, 1}, make([]byte, 16)...)},
		{"ext16", append([]byte{0x81, 0xa1, 'x', 0xc8, 0, 3, 1}, 1, 2, 3)},
		{"ext32", append([]byte{0x81, 0xa1, 'x', 0xc9, 0, 0, 0, 3, 1}, 1, 2, 3)},
		{"bin32", append([]byte{0x81, 0xa1, 'x', 0xc6, 0, 0, 0, 2}, 1, 2)},
		{"str16 key", []byte{0x81, 0xda, 0, 1, 'k', 0xc3}},
		{"max depth", nested(maxBodyDepth - 1)},
	}
	for _, tt := range valid {
		if err := checkBody(tt.body); err != nil {
			t.Errorf("%s: checkBody(% x) = %v, want nil", tt.name, tt.body, err)
		}
	}
	invalid := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"nil", []byte{0xc0}},
		{"array", []byte{0x90}},
		{"int", []byte{0x01}},
		{"string", []byte{0xa1, 'k'}},
		{"missing value", []byte{0x81, 0xa1, 'k'}},
		{"missing entry", []byte{0x82, 0xa1, 'k', 0xc0}},
		{"short string", []byte{0x81, 0xa3, 'k'}},
		{"short str8 length", []byte{0x81, 0xa1, 'k', 0xd9}},
		{"short bin32 length", []byte{0x81, 0xa1, 'k', 0xc6, 0, 0}},
		{"short map16 length", []byte{0xde, 0}},
		{"short uint64", []byte{0x81, 0xa1, 'k', 0xcf, 1, 2, 3}},
		{"short fixext8", []byte{0x81, 0xa1, 'k', 0xd7, 1, 2}},
		{"short ext8", []byte{0x81, 0xa1, 'k', 0xc7, 2, 1, 0}},
		{"huge bin32", []byte{0x81, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff}},
		{"huge array32", []byte{0x81, 0xa2, 's', 'b', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"array32 with too few bytes", []byte{0x81, 0xa2, 's', 'b', 0xdd, 0, 0, 0, 3, 0xc0, 0xc0}},
		{"huge map32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0}},
		{"map16 with too few bytes", []byte{0xde, 0, 2, 0xc0, 0xc0, 0xc0}},
		{"never-used byte", []byte{0x81, 0xa1, 'k', 0xc1}},
		{"trailing byte", []byte{0x80, 0x00}},
		{"two maps", []byte{0x80, 0x80}},
		{"too deep", nested(maxBodyDepth)},
	}
	for _, tt := range invalid {
		if err := checkBody(tt.body); err == nil {
			t.Errorf("%s: checkBody(% x) = nil, want an error", tt.name, tt.body)
		}
		if err := DecodeBody(tt.body, new(GetResponse)); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: DecodeBody = %v, want ErrBadBody", tt.name, err)
		}
	}
}

func TestCheckBodyAcceptsEveryType(t *testing.T) {
	body, err := msgpack.Marshal(everyType(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkBody(body); err != nil {
		t.Fatalf("checkBody: %v", err)
	}
	for _, msg := range sampleMessages() {
		frame, err := AppendFrame(nil, Header{Opcode: OpGet}, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkBody(frame[HeaderSize:]); err != nil {
			t.Fatalf("%T: checkBody: %v", msg, err)
		}
	}
}

// TestDecodeBodyBoundsAllocation feeds bodies whose length claims would make
// the msgpack decoder allocate gigabytes, or recurse millions deep, before it
// found out that the bytes are missing.
func TestDecodeBodyBoundsAllocation(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		msg  any
	}{
		{"siblings array32", []byte{0x81, 0xa2, 's', 'b', 0xdd, 0x7f, 0xff, 0xff, 0xff}, new(GetResponse)},
		{"applied map32", []byte{0x81, 0xa2, 'v', 'v', 0xdf, 0x7f, 0xff, 0xff, 0xff}, new(StatusResponse)},
		{"4 MiB of nesting", nested(DefaultMaxBody), new(GetRequest)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := DecodeBody(tt.body, tt.msg)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("DecodeBody = %v, want ErrBadBody", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Fatalf("DecodeBody allocated %d bytes", n)
			}
		})
	}
}

// TestSpecExamples checks the worked examples in SPEC.md section 9.
func TestSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		msg  any
		want string
	}{
		{
			"set request", Header{Opcode: OpSet, ReqID: 1},
			&SetRequest{Key: []byte("k"), Value: []byte("hello"), TTLMS: 30_000},
			"C5 01 04 00 00 00 00 00 00 00 00 01 00 00 00 16 83 A1 6B C4 01 6B A1 76 C4 05 68 65 6C 6C 6F A3 74 74 6C CD 75 30",
		},
		{
			"set response", Header{Opcode: OpSet, Flags: FlagResponse, ReqID: 1},
			&WriteResponse{},
			"C5 01 04 01 00 00 00 00 00 00 00 01 00 00 00 01 80",
		},
		{
			"get request", Header{Opcode: OpGet, ReqID: 2},
			&GetRequest{Key: []byte("k")},
			"C5 01 03 00 00 00 00 00 00 00 00 02 00 00 00 06 81 A1 6B C4 01 6B",
		},
		{
			"not found", Header{Opcode: OpError, Flags: FlagResponse, ReqID: 2},
			&Error{Code: CodeNotFound},
			"C5 01 3F 01 00 00 00 00 00 00 00 02 00 00 00 04 81 A1 63 02",
		},
		{
			"ping request", Header{Opcode: OpPing, ReqID: 3}, nil,
			"C5 01 02 00 00 00 00 00 00 00 00 03 00 00 00 00",
		},
		{
			"ping response", Header{Opcode: OpPing, Flags: FlagResponse, ReqID: 3}, nil,
			"C5 01 02 01 00 00 00 00 00 00 00 03 00 00 00 00",
		},
	}
	for _, tt := range tests {
		got, err := AppendFrame(nil, tt.h, tt.msg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: % X, want % X", tt.name, got, want)
		}
	}
}

func TestDecodeBodyNilAndOtherEncodingsMeanTheSame(t *testing.T) {
	// SPEC.md section 3: nil is zero, integers may use any width, bytes may
	// come as str and strings as bin.
	body, err := msgpack.Marshal(map[string]any{
		"k": "key", "d": int64(-3), "r": []byte("req"), "x": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	var incr IncrRequest
	if err := DecodeBody(body, &incr); err != nil {
		t.Fatal(err)
	}
	if want := (IncrRequest{Key: []byte("key"), Delta: -3, ReqID: "req"}); !reflect.DeepEqual(incr, want) {
		t.Fatalf("decoded %+v, want %+v", incr, want)
	}
	body, err = msgpack.Marshal(map[string]any{
		"v": nil, "cn": nil, "x": nil, "c": nil, "sb": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	var get GetResponse
	if err := DecodeBody(body, &get); err != nil {
		t.Fatal(err)
	}
	if get.Counter || get.ExpiryMS != 0 || len(get.Value) != 0 || len(get.Context) != 0 || len(get.Siblings) != 0 {
		t.Fatalf("nil fields decoded to %+v, want zero", get)
	}
	body, err = msgpack.Marshal(map[string]any{"c": uint64(CodeTimeout), "m": nil})
	if err != nil {
		t.Fatal(err)
	}
	var e Error
	if err := DecodeBody(body, &e); err != nil {
		t.Fatal(err)
	}
	if e != (Error{Code: CodeTimeout}) {
		t.Fatalf("decoded %+v", e)
	}
}
