package protocol

import (
	"bytes"
	"encoding/hex"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// libraryDecode is DecodeBody as it was before the hand-written decoders:
// the reference they must agree with.
func libraryDecode(body []byte, msg any) error {
	if err := checkBody(body); err != nil {
		return err
	}
	return decodeBodyLibrary(body, msg)
}

// fataler is what the helpers need of *testing.T and *rapid.T alike.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func libraryEncode(t fataler, msg any) []byte {
	t.Helper()
	b, err := appendBodyLibrary(nil, msg)
	if err != nil {
		t.Fatalf("library encoding %+v: %v", msg, err)
	}
	return b
}

// checkDecodersAgree decodes body into want with the library and into a
// value of the same type as want with DecodeBody and DecodeBodyNoCopy, each
// starting from what fresh returns: both fail, or all three values are
// equal, down to nil versus empty slices.
func checkDecodersAgree(t fataler, body []byte, fresh func() any) {
	t.Helper()
	want := fresh()
	wantErr := libraryDecode(body, want)
	for _, d := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"DecodeBody", DecodeBody}, {"DecodeBodyNoCopy", DecodeBodyNoCopy}} {
		got := fresh()
		err := d.decode(body, got)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%s(% x) into %T = %v; the library says %v", d.name, body, got, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s(% x):\n got %#v\nwant %#v (library)", d.name, body, got, want)
		}
	}
}

// hotKinds are the messages with hand-written codecs.
func hotKinds() []message {
	var hot []message
	for _, k := range messageKinds() {
		if handled, _ := decodeBodyFast([]byte{0x80}, k.zero(), true); handled {
			hot = append(hot, k)
		}
	}
	return hot
}

func TestHotKinds(t *testing.T) {
	var names []string
	for _, k := range hotKinds() {
		names = append(names, k.name)
	}
	want := []string{"GetRequest", "SetRequest", "DelRequest", "IncrRequest", "GetResponse", "WriteResponse", "IncrResponse", "Error"}
	if !slices.Equal(names, want) {
		t.Fatalf("hot messages %v, want %v", names, want)
	}
}

var intEdges = []int64{
	0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
	65535, 65536, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MinInt32 - 1,
	math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MinInt64,
}

// lengthEdges are the lengths where str, bin and array headers change
// format.
var lengthEdges = []int{15, 16, 31, 32, 255, 256, 65535, 65536}

func drawInt(t *rapid.T, label string) int64 {
	return rapid.OneOf(rapid.SampledFrom(intEdges), rapid.Int64()).Draw(t, label)
}

func drawBytes(t *rapid.T, label string) []byte {
	switch rapid.IntRange(0, 5).Draw(t, label+" form") {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		n := rapid.SampledFrom(lengthEdges).Draw(t, label+" length")
		return bytes.Repeat([]byte{byte(n) | 1}, n)
	}
	return rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, label)
}

func drawString(t *rapid.T, label string) string {
	switch rapid.IntRange(0, 3).Draw(t, label+" form") {
	case 0:
		return ""
	case 1:
		n := rapid.SampledFrom(lengthEdges).Draw(t, label+" length")
		return string(bytes.Repeat([]byte{'s'}, n))
	}
	return rapid.String().Draw(t, label)
}

func drawSiblings(t *rapid.T) []Sibling {
	switch rapid.IntRange(0, 3).Draw(t, "siblings form") {
	case 0:
		return nil
	case 1:
		return []Sibling{}
	}
	s := make([]Sibling, rapid.SampledFrom([]int{1, 2, 3, 15, 16, 17}).Draw(t, "siblings"))
	for i := range s {
		s[i] = Sibling{
			Value:    drawBytes(t, "sibling value"),
			ExpiryMS: drawInt(t, "sibling expiry"),
			Deleted:  rapid.Bool().Draw(t, "sibling deleted"),
			Node:     drawString(t, "sibling node"),
			TimeMS:   drawInt(t, "sibling time"),
		}
	}
	return s
}

// drawHot returns a random hot message of kind name, every field drawn
// from values that include the format edges.
func drawHot(t *rapid.T, name string) any {
	switch name {
	case "GetRequest":
		return &GetRequest{Key: drawBytes(t, "key"), Scope: Scope(rapid.Uint8().Draw(t, "scope")),
			Siblings: rapid.Bool().Draw(t, "siblings"), ReqID: drawString(t, "req id")}
	case "GetResponse":
		return &GetResponse{Value: drawBytes(t, "value"), Counter: rapid.Bool().Draw(t, "counter"),
			ExpiryMS: drawInt(t, "expiry"), Context: drawBytes(t, "context"), Siblings: drawSiblings(t)}
	case "SetRequest":
		return &SetRequest{Key: drawBytes(t, "key"), Value: drawBytes(t, "value"), TTLMS: drawInt(t, "ttl"),
			Context: drawBytes(t, "context"), ReqID: drawString(t, "req id")}
	case "WriteResponse":
		return &WriteResponse{Context: drawBytes(t, "context")}
	case "DelRequest":
		return &DelRequest{Key: drawBytes(t, "key"), Context: drawBytes(t, "context"), ReqID: drawString(t, "req id")}
	case "IncrRequest":
		return &IncrRequest{Key: drawBytes(t, "key"), Delta: drawInt(t, "delta"), ReqID: drawString(t, "req id")}
	case "IncrResponse":
		return &IncrResponse{Value: drawInt(t, "value")}
	case "Error":
		return &Error{Code: Code(rapid.Uint16().Draw(t, "code")), Message: drawString(t, "message"), ReqID: drawString(t, "req id")}
	}
	t.Fatalf("no generator for %s", name)
	return nil
}

// TestHotCodecsMatchLibrary checks, for random values of every hot message,
// that the hand-written encoder writes the library's bytes, and that both
// decoders read them back to the library's value, which equals the
// original but for nil versus empty slices that omitempty leaves out.
func TestHotCodecsMatchLibrary(t *testing.T) {
	for _, k := range hotKinds() {
		t.Run(k.name, rapid.MakeCheck(func(t *rapid.T) {
			msg := drawHot(t, k.name)
			want := libraryEncode(t, msg)
			frame, err := AppendFrame([]byte("before"), Header{Opcode: k.op, Flags: k.flags}, msg)
			if err != nil {
				t.Fatal(err)
			}
			body := frame[len("before")+HeaderSize:]
			if !bytes.Equal(body, want) {
				t.Fatalf("AppendFrame body for %+v:\n% x\nlibrary:\n% x", msg, body, want)
			}
			checkDecodersAgree(t, body, k.zero)
			got := k.zero()
			if err := DecodeBody(body, got); err != nil {
				t.Fatal(err)
			}
			if !sameValue(reflect.ValueOf(got), reflect.ValueOf(msg)) {
				t.Fatalf("round trip gave %+v, want %+v", got, msg)
			}
			// DecodeBody's value does not share the body's memory.
			clear(body)
			again := k.zero()
			if err := libraryDecode(want, again); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, again) {
				t.Fatalf("overwriting the body changed the decoded %+v", got)
			}
		}))
	}
}

// fieldKind is the Go type of a message field, for writing random
// encodings of it.
type fieldKind int

const (
	kindBytes fieldKind = iota
	kindString
	kindInt
	kindBool
	kindSiblings
)

type fieldSpec struct {
	key  string
	kind fieldKind
}

var hotFields = map[string][]fieldSpec{
	"GetRequest":    {{"k", kindBytes}, {"s", kindInt}, {"sb", kindBool}, {"r", kindString}},
	"GetResponse":   {{"v", kindBytes}, {"cn", kindBool}, {"x", kindInt}, {"c", kindBytes}, {"sb", kindSiblings}, {"dm", kindString}},
	"SetRequest":    {{"k", kindBytes}, {"v", kindBytes}, {"ttl", kindInt}, {"c", kindBytes}, {"r", kindString}},
	"WriteResponse": {{"c", kindBytes}},
	"DelRequest":    {{"k", kindBytes}, {"c", kindBytes}, {"r", kindString}},
	"IncrRequest":   {{"k", kindBytes}, {"d", kindInt}, {"r", kindString}},
	"IncrResponse":  {{"v", kindInt}},
	"Error":         {{"c", kindInt}, {"m", kindString}, {"r", kindString}},
	"Sibling":       {{"v", kindBytes}, {"x", kindInt}, {"d", kindBool}, {"n", kindString}, {"t", kindInt}},
}

// TestHotFieldsCoverStructs fails when a field is added to a hot message
// (or Sibling): the hand-written codecs, drawHot and hotFields need it too.
func TestHotFieldsCoverStructs(t *testing.T) {
	types := []reflect.Type{reflect.TypeFor[Sibling]()}
	for _, k := range hotKinds() {
		types = append(types, reflect.TypeOf(k.zero()).Elem())
	}
	for _, typ := range types {
		var tags, specs []string
		for f := range typ.Fields() {
			tags = append(tags, strings.Split(f.Tag.Get("msgpack"), ",")[0])
		}
		for _, f := range hotFields[typ.Name()] {
			specs = append(specs, f.key)
		}
		if !slices.Equal(tags, specs) {
			t.Errorf("%s has msgpack keys %q; the hand-written codecs know %q", typ.Name(), tags, specs)
		}
	}
}

// wire writes msgpack, choosing at random among the encodings that a
// sender may use for each value.
type wire struct {
	t *rapid.T
	b []byte
}

func (w *wire) be(v uint64, width int) {
	for i := width - 1; i >= 0; i-- {
		w.b = append(w.b, byte(v>>(8*i)))
	}
}

// header writes a type byte and a length, fix being the fixed-size form's
// base byte and limit (0: none); wide holds the 8-, 16- and 32-bit forms'
// type bytes (0: none).
func (w *wire) header(label string, n int, fix byte, limit int, wide [3]byte) {
	var forms []int // 0: fix, 1..3: 8, 16, 32 bits
	if n < limit {
		forms = append(forms, 0)
	}
	for i, c := range wide {
		if c != 0 && n < 1<<(8<<i) {
			forms = append(forms, i+1)
		}
	}
	switch f := rapid.SampledFrom(forms).Draw(w.t, label); f {
	case 0:
		w.b = append(w.b, fix|byte(n))
	default:
		w.b = append(w.b, wide[f-1])
		w.be(uint64(n), 1<<(f-1))
	}
}

func (w *wire) mapLen(n int) { w.header("map form", n, 0x80, 16, [3]byte{0, 0xde, 0xdf}) }

func (w *wire) arrayLen(n int) { w.header("array form", n, 0x90, 16, [3]byte{0, 0xdc, 0xdd}) }

// str writes p as str or bin, whatever the field's type: the library takes
// either for both.
func (w *wire) str(p []byte) {
	if rapid.Bool().Draw(w.t, "as bin") {
		w.header("bin form", len(p), 0, 0, [3]byte{0xc4, 0xc5, 0xc6})
	} else {
		w.header("str form", len(p), 0xa0, 32, [3]byte{0xd9, 0xda, 0xdb})
	}
	w.b = append(w.b, p...)
}

// int writes v in any integer format that holds it, signed or unsigned,
// or a negative v as the uint64 of its bits.
func (w *wire) int(v int64) {
	type format struct {
		code  byte
		width int
		ok    bool
	}
	u := uint64(v)
	forms := []format{
		{0, 0, v >= -32 && v <= 127}, // fixint
		{0xcc, 1, v >= 0 && v <= math.MaxUint8},
		{0xcd, 2, v >= 0 && v <= math.MaxUint16},
		{0xce, 4, v >= 0 && v <= math.MaxUint32},
		{0xcf, 8, true},
		{0xd0, 1, v >= math.MinInt8 && v <= math.MaxInt8},
		{0xd1, 2, v >= math.MinInt16 && v <= math.MaxInt16},
		{0xd2, 4, v >= math.MinInt32 && v <= math.MaxInt32},
		{0xd3, 8, true},
	}
	forms = slices.DeleteFunc(forms, func(f format) bool { return !f.ok })
	f := rapid.SampledFrom(forms).Draw(w.t, "int form")
	if f.width == 0 {
		w.b = append(w.b, byte(v))
		return
	}
	w.b = append(w.b, f.code)
	w.be(u, f.width)
}

func (w *wire) key(k string) {
	if rapid.IntRange(0, 20).Draw(w.t, "nil key") == 0 {
		w.b = append(w.b, 0xc0) // the library reads it as "", an unknown key
		return
	}
	w.str([]byte(k))
}

// value writes a value for a field of kind k: nil, or one of its type, or
// now and then one of any type, which the decoders must reject alike.
func (w *wire) value(k fieldKind, depth int) {
	switch rapid.IntRange(0, 12).Draw(w.t, "value form") {
	case 0:
		w.b = append(w.b, 0xc0)
		return
	case 1:
		w.anyValue(depth)
		return
	}
	switch k {
	case kindBytes, kindString:
		w.str(drawBytes(w.t, "payload"))
	case kindInt:
		w.int(drawInt(w.t, "int"))
	case kindBool:
		w.b = append(w.b, rapid.SampledFrom([]byte{0xc2, 0xc3}).Draw(w.t, "bool"))
	case kindSiblings:
		n := rapid.IntRange(0, 17).Draw(w.t, "siblings")
		w.arrayLen(n)
		for range n {
			w.sibling(depth + 1)
		}
	}
}

func (w *wire) sibling(depth int) {
	switch rapid.IntRange(0, 5).Draw(w.t, "sibling form") {
	case 0:
		w.b = append(w.b, 0xc0)
	case 1: // an array of the fields in order; now and then of a wrong count
		fields := hotFields["Sibling"]
		n := rapid.SampledFrom([]int{0, 5, 5, 5, 4, 6}).Draw(w.t, "sibling fields")
		w.arrayLen(n)
		for i := range n {
			w.value(fields[i%len(fields)].kind, depth+1)
		}
	default:
		w.fields("Sibling", depth+1)
	}
}

// fields writes a map of random entries for message name: its fields, in
// any order, now and then twice, and unknown keys with values of any type.
func (w *wire) fields(name string, depth int) {
	specs := hotFields[name]
	n := rapid.IntRange(0, 2*len(specs)+2).Draw(w.t, "entries")
	w.mapLen(n)
	for range n {
		if rapid.IntRange(0, 4).Draw(w.t, "unknown key") == 0 {
			w.key(rapid.SampledFrom([]string{"", "K", "kk", "z", "ttl2", "unknown field"}).Draw(w.t, "key"))
			w.anyValue(depth + 1)
			continue
		}
		f := rapid.SampledFrom(specs).Draw(w.t, "field")
		w.key(f.key)
		w.value(f.kind, depth+1)
	}
}

// anyValue writes a value of a random msgpack type.
func (w *wire) anyValue(depth int) {
	kinds := 9
	if depth >= 4 {
		kinds = 7 // no more containers
	}
	switch rapid.IntRange(0, kinds-1).Draw(w.t, "any type") {
	case 0:
		w.b = append(w.b, rapid.SampledFrom([]byte{0xc0, 0xc2, 0xc3}).Draw(w.t, "nil or bool"))
	case 1:
		w.int(drawInt(w.t, "int"))
	case 2:
		w.b = append(w.b, 0xca)
		w.be(uint64(math.Float32bits(rapid.Float32().Draw(w.t, "float32"))), 4)
	case 3:
		w.b = append(w.b, 0xcb)
		w.be(math.Float64bits(rapid.Float64().Draw(w.t, "float64")), 8)
	case 4, 5:
		w.str(drawBytes(w.t, "payload"))
	case 6: // fixext 1, 2, 4, 8, 16 and ext 8, 16, 32
		size := rapid.SampledFrom([]int{1, 2, 4, 8, 16, 3}).Draw(w.t, "ext size")
		if size == 3 {
			w.header("ext form", size, 0, 0, [3]byte{0xc7, 0xc8, 0xc9})
		} else {
			w.b = append(w.b, 0xd4+byte(bitsLen(size)))
		}
		w.b = append(w.b, byte(rapid.Int8().Draw(w.t, "ext type")))
		w.b = append(w.b, make([]byte, size)...)
	case 7:
		n := rapid.IntRange(0, 3).Draw(w.t, "array items")
		w.arrayLen(n)
		for range n {
			w.anyValue(depth + 1)
		}
	case 8:
		n := rapid.IntRange(0, 3).Draw(w.t, "map entries")
		w.mapLen(n)
		for range 2 * n {
			w.anyValue(depth + 1)
		}
	}
}

// bitsLen is log2 of a power of two.
func bitsLen(n int) int {
	i := 0
	for n > 1 {
		n >>= 1
		i++
	}
	return i
}

// TestHotDecodersAcceptWhatTheLibraryAccepts feeds random encodings of
// every hot message — keys in any order and in any str or bin form, nil
// keys and values, repeated keys, unknown keys with values of every type,
// integers in every width that holds them, siblings as maps, arrays or nil,
// values of the wrong type — to both decoders and the library, into zero
// messages and into messages holding values already.
func TestHotDecodersAcceptWhatTheLibraryAccepts(t *testing.T) {
	for _, k := range hotKinds() {
		t.Run(k.name, rapid.MakeCheck(func(t *rapid.T) {
			w := &wire{t: t}
			w.fields(k.name, 1)
			body := w.b
			if err := checkBody(body); err != nil {
				t.Fatalf("test encoder wrote a bad body % x: %v", body, err)
			}
			checkDecodersAgree(t, body, k.zero)

			prior := libraryEncode(t, drawHot(t, k.name))
			checkDecodersAgree(t, body, func() any {
				m := k.zero()
				if err := libraryDecode(prior, m); err != nil {
					t.Fatal(err)
				}
				return m
			})
		}))
	}
}

type edgeCase struct {
	name string
	body string
	msg  func() any // what to decode into
	want any        // nil: an error
}

// hotEdgeCases are a few of the library's rules that the random tests find
// only by chance. They also seed FuzzDecodeBody.
func hotEdgeCases() []edgeCase {
	return []edgeCase{
		{"scope keeps its low byte", "81 a1 73 cd 01 2c", func() any { return new(GetRequest) }, &GetRequest{Scope: 44}},
		{"negative delta as uint64", "81 a1 64 cf ff ff ff ff ff ff ff fe", func() any { return new(IncrRequest) }, &IncrRequest{Delta: -2}},
		{"code from a negative int", "81 a1 63 ff", func() any { return new(Error) }, &Error{Code: 0xffff}},
		{"key as bin, value as str", "81 c4 01 6b a2 6b 31", func() any { return new(SetRequest) }, &SetRequest{Key: []byte("k1")}},
		{"empty str is empty bytes", "81 a1 6b a0", func() any { return new(DelRequest) }, &DelRequest{Key: []byte{}}},
		{"nil is nil bytes", "81 a1 6b c0", func() any { return new(DelRequest) }, &DelRequest{}},
		{"last of a repeated key wins", "82 a1 76 01 a1 76 02", func() any { return new(IncrResponse) }, &IncrResponse{Value: 2}},
		{"nil key is skipped", "82 c0 01 a1 76 03", func() any { return new(IncrResponse) }, &IncrResponse{Value: 3}},
		{"sibling as an array", "81 a2 73 62 91 95 c4 01 61 05 c3 a1 6e 07", func() any { return new(GetResponse) },
			&GetResponse{Siblings: []Sibling{{Value: []byte("a"), ExpiryMS: 5, Deleted: true, Node: "n", TimeMS: 7}}}},
		{"nil and empty array siblings", "81 a2 73 62 92 c0 90", func() any { return new(GetResponse) },
			&GetResponse{Siblings: []Sibling{{}, {}}}},
		{"empty siblings", "81 a2 73 62 90", func() any { return new(GetResponse) }, &GetResponse{Siblings: []Sibling{}}},
		{"a repeated siblings key reuses the elements", "82 a2 73 62 91 82 a1 76 a1 61 a1 78 05 a2 73 62 91 81 a1 76 a1 62",
			func() any { return new(GetResponse) },
			&GetResponse{Siblings: []Sibling{{Value: []byte("b"), ExpiryMS: 5}}}},
		{"an empty array zeroes a reused sibling", "81 a2 73 62 92 90 c0", func() any {
			return &GetResponse{Siblings: []Sibling{{Value: []byte("old"), TimeMS: 9}}}
		}, &GetResponse{Siblings: []Sibling{{}, {}}}},
		{"sibling array of 4 fields", "81 a2 73 62 91 94 c0 c0 c0 c0", func() any { return new(GetResponse) }, nil},
		{"bool for bytes", "81 a1 6b c3", func() any { return new(GetRequest) }, nil},
		{"float for an int", "81 a1 78 cb 3f f0 00 00 00 00 00 00", func() any { return new(GetResponse) }, nil},
		{"int key", "81 01 02", func() any { return new(IncrResponse) }, nil},
		{"siblings as a map", "81 a2 73 62 80", func() any { return new(GetResponse) }, nil},
	}
}

func TestHotDecodersEdgeCases(t *testing.T) {
	for _, tt := range hotEdgeCases() {
		t.Run(tt.name, func(t *testing.T) {
			body := mustHex(t, tt.body)
			checkDecodersAgree(t, body, tt.msg)
			got := tt.msg()
			err := DecodeBody(body, got)
			switch {
			case tt.want == nil && err == nil:
				t.Fatalf("DecodeBody = %+v, want an error", got)
			case tt.want != nil && err != nil:
				t.Fatalf("DecodeBody: %v", err)
			case tt.want != nil && !reflect.DeepEqual(got, tt.want):
				t.Fatalf("DecodeBody = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func mustHex(t fataler, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeBodyNoCopyAliasesTheBody(t *testing.T) {
	frame, err := AppendFrame(nil, Header{Opcode: OpSet}, &SetRequest{Key: []byte("k"), Value: []byte("value"), ReqID: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	body := frame[HeaderSize:]
	var aliased, copied SetRequest
	if err := DecodeBodyNoCopy(body, &aliased); err != nil {
		t.Fatal(err)
	}
	if err := DecodeBody(body, &copied); err != nil {
		t.Fatal(err)
	}
	copy(body[bytes.Index(body, []byte("value")):], "VALUE")
	if string(aliased.Value) != "VALUE" || string(copied.Value) != "value" {
		t.Fatalf("after changing the body: NoCopy value %q, copied value %q", aliased.Value, copied.Value)
	}
	if aliased.ReqID != "r-1" {
		t.Fatalf("NoCopy req id %q", aliased.ReqID)
	}
	// A decoded field cannot grow into the bytes after it.
	if cap(aliased.Key) != len(aliased.Key) || cap(copied.Key) != len(copied.Key) {
		t.Fatalf("key capacity %d and %d, want %d", cap(aliased.Key), cap(copied.Key), len(copied.Key))
	}
}

// TestHotPathAllocations pins the allocation counts that the benchmarks
// report: none to encode, and at most one, the copy of the body, to decode.
func TestHotPathAllocations(t *testing.T) {
	buf := make([]byte, 0, 1<<20)
	for _, msg := range sampleMessages() {
		k := kindOf(t, msg)
		if _, ok := appendBodyFast(nil, msg); !ok {
			continue
		}
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := AppendFrame(buf[:0], Header{Opcode: k.op}, msg); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("AppendFrame(%+v) allocated %v times", msg, allocs)
		}
	}
	tests := []struct {
		msg          any
		copy, noCopy float64
	}{
		{benchSet(), 1, 1}, // the request ID is a string
		{&SetRequest{Key: []byte("k"), Value: []byte("v")}, 1, 0},
		{benchGet(), 1, 0},
		{benchGetResponse(), 1, 0},
		{&WriteResponse{}, 0, 0},
		{&IncrResponse{Value: 7}, 0, 0},
		{&Error{Code: CodeNotFound, Message: "gone", ReqID: "r-1"}, 1, 2},
	}
	for _, tt := range tests {
		body := libraryEncode(t, tt.msg)
		typ := reflect.TypeOf(tt.msg).Elem()
		into := reflect.New(typ)
		zero := reflect.Zero(typ)
		for _, d := range []struct {
			name   string
			decode func([]byte, any) error
			want   float64
		}{{"DecodeBody", DecodeBody, tt.copy}, {"DecodeBodyNoCopy", DecodeBodyNoCopy, tt.noCopy}} {
			msg := into.Interface()
			allocs := testing.AllocsPerRun(50, func() {
				into.Elem().Set(zero)
				if err := d.decode(body, msg); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != d.want {
				t.Errorf("%s into %T allocated %v times, want %v", d.name, msg, allocs, d.want)
			}
		}
	}
}

// TestNilHotMessagesGoToTheLibrary: a nil pointer of a hot type encodes and
// fails to decode as it always did.
func TestNilHotMessagesGoToTheLibrary(t *testing.T) {
	for _, k := range hotKinds() {
		nilMsg := reflect.Zero(reflect.TypeOf(k.zero())).Interface()
		frame, err := AppendFrame(nil, Header{Opcode: k.op}, nilMsg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := frame[HeaderSize:], libraryEncode(t, nilMsg); !bytes.Equal(got, want) {
			t.Errorf("%T(nil) encodes as % x, the library as % x", nilMsg, got, want)
		}
		if err := DecodeBody([]byte{0x80}, nilMsg); err == nil {
			t.Errorf("DecodeBody into %T(nil) succeeded", nilMsg)
		}
	}
}
