package protocol

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fuzzMaxBody is small so that the fuzzer reaches the size limit with short
// inputs.
const fuzzMaxBody = 1 << 12

func FuzzDecoder(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	_, stream := makeStream(rng, []int{0, 1, 16, 40, 0, 300})
	f.Add(stream, uint16(0))
	f.Add(stream, uint16(len(stream)/2))
	f.Add(stream, uint16(17))
	for _, msg := range sampleMessages() {
		frame, err := AppendFrame(nil, Header{Opcode: kindOf(f, msg).op, ReqID: 5}, msg)
		if err != nil || len(frame) > HeaderSize+fuzzMaxBody {
			continue
		}
		f.Add(frame, uint16(HeaderSize))
	}
	f.Add(AppendHeader(nil, Header{Opcode: OpSet, ReqID: 1, Len: fuzzMaxBody + 1}), uint16(3))
	f.Add(AppendHeader(nil, Header{Opcode: OpPeerLink, ReqID: 1}), uint16(3))
	f.Add(header(Magic, 2, Header{Opcode: OpGet}), uint16(1))
	f.Add(append(AppendHeader(nil, Header{Opcode: OpPing}), 0, 1, 2), uint16(16))

	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		at := int(split) % (len(data) + 1)

		// Fed in two writes.
		d := NewDecoder(fuzzMaxBody)
		d.Write(data[:at])
		fed := at
		frames, err := drainFuzz(d)
		if err == nil {
			d.Write(data[at:])
			fed = len(data)
			var more []testFrame
			more, err = drainFuzz(d)
			frames = append(frames, more...)
		}
		consumed := checkFrames(t, data, frames)
		checkStopped(t, d, data[:fed], consumed, err)
		// The decoder holds no more than the input, give or take append's
		// rounding up.
		if cap(d.buf) > 2*len(data)+64 {
			t.Fatalf("decoder holds %d bytes for %d bytes of input", cap(d.buf), len(data))
		}

		// Read in pieces of the fuzzed size: the same frames, the same end.
		piece := max(at, 1)
		r := NewDecoder(fuzzMaxBody)
		src := &pieceReader{data: data, piece: piece}
		var got []testFrame
		var rerr error
		for reads := 0; rerr == nil; reads++ {
			if reads > len(data)+1 {
				t.Fatalf("no EOF after %d reads", reads)
			}
			_, readErr := r.ReadOnce(src)
			var more []testFrame
			more, rerr = drainFuzz(r)
			got = append(got, more...)
			if rerr == nil && readErr != nil {
				break
			}
		}
		if len(got) != len(frames) {
			t.Fatalf("ReadOnce gave %d frames, Write gave %d", len(got), len(frames))
		}
		checkFrames(t, data, got)
		if rerr != err && (rerr == nil || err == nil || rerr.Error() != err.Error()) {
			t.Fatalf("ReadOnce ended with %v, Write with %v", rerr, err)
		}
		// At most one partial frame and one minimum read.
		if limit := HeaderSize + fuzzMaxBody + minRead; cap(r.buf) > limit {
			t.Fatalf("ReadOnce decoder holds %d bytes", cap(r.buf))
		}
	})
}

// drainFuzz is drain that returns the framing error instead of failing.
func drainFuzz(d *Decoder) ([]testFrame, error) {
	var out []testFrame
	for {
		f, ok, err := d.Next()
		if err != nil || !ok {
			return out, err
		}
		out = append(out, testFrame{h: f.Header, body: bytes.Clone(f.Body)})
	}
}

// checkFrames checks that frames re-encode to a prefix of data, and returns
// its length.
func checkFrames(t *testing.T, data []byte, frames []testFrame) int {
	t.Helper()
	pos := 0
	for i, f := range frames {
		enc := append(AppendHeader(nil, f.h), f.body...)
		if !bytes.Equal(enc, data[pos:min(len(data), pos+len(enc))]) {
			t.Fatalf("frame %d at offset %d re-encodes to different bytes", i, pos)
		}
		pos += len(enc)
	}
	return pos
}

// checkStopped checks why the decoder stopped at offset consumed: a framing
// error that the header there explains and that sticks, or input that ends
// inside a frame.
func checkStopped(t *testing.T, d *Decoder, data []byte, consumed int, err error) {
	t.Helper()
	rest := data[consumed:]
	if d.Buffered() != len(rest) {
		t.Fatalf("Buffered = %d, want %d", d.Buffered(), len(rest))
	}
	_, perr := ParseHeader(rest, fuzzMaxBody)
	if err == nil {
		if len(rest) >= HeaderSize && perr != nil {
			t.Fatalf("decoder accepted a header ParseHeader rejects: %v", perr)
		}
		if h, _ := ParseHeader(rest, fuzzMaxBody); perr == nil && len(rest) >= HeaderSize+int(h.Len) {
			t.Fatalf("a complete frame of %d bytes was not returned", HeaderSize+int(h.Len))
		}
		return
	}
	if perr == nil || perr.Error() != err.Error() {
		t.Fatalf("decoder error %v; header at offset %d gives %v", err, consumed, perr)
	}
	if !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrBadVersion) &&
		!errors.Is(err, ErrUnknownOpcode) && !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("unexpected decoder error %v", err)
	}
	d.Write(data)
	if _, ok, again := d.Next(); ok || again != err {
		t.Fatalf("after more input Next = %v, %v; want the sticky %v", ok, again, err)
	}
	if _, again := d.ReadOnce(bytes.NewReader(data)); again != err {
		t.Fatalf("ReadOnce after the error = %v; want the sticky %v", again, err)
	}
}

// pieceReader returns data in reads of at most piece bytes, then io.EOF.
type pieceReader struct {
	data  []byte
	piece int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.piece)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func FuzzDecodeBody(f *testing.F) {
	kinds := messageKinds()
	for _, msg := range sampleMessages() {
		name := reflect.TypeOf(msg).Elem().Name()
		for i, k := range kinds {
			if k.name != name {
				continue
			}
			frame, err := AppendFrame(nil, Header{Opcode: k.op}, msg)
			if err != nil {
				f.Fatal(err)
			}
			if len(frame) < 4<<10 { // big inputs only slow the fuzzer down
				f.Add(uint8(i), frame[HeaderSize:])
			}
		}
	}
	f.Add(uint8(0), []byte{0x80})
	f.Add(uint8(1), []byte{0x81, 0xa1, 'k', 0xc0})
	for _, e := range hotEdgeCases() {
		name := reflect.TypeOf(e.msg()).Elem().Name()
		for i, k := range kinds {
			if k.name == name {
				f.Add(uint8(i), mustHex(f, e.body))
			}
		}
	}
	// The library's encoding of the first sample of each kind, to decode
	// fuzzed bodies into.
	samples := map[string][]byte{}
	for _, msg := range sampleMessages() {
		name := reflect.TypeOf(msg).Elem().Name()
		if samples[name] == nil {
			samples[name] = libraryEncode(f, msg)
		}
	}

	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		// checkBody agrees with the msgpack library on what is one
		// well-formed map, except that it also limits depth.
		r := bytes.NewReader(body)
		skipped := msgpack.NewDecoder(r).Skip() == nil && r.Len() == 0
		wellFormed := skipped && len(body) > 0 && isMapCode(body[0])
		if err := checkBody(body); (err == nil) != wellFormed && !errors.Is(err, errBodyTooDeep) {
			t.Fatalf("checkBody = %v, but the msgpack library says well-formed map: %v", err, wellFormed)
		}

		k := kinds[int(kind)%len(kinds)]
		// The hand-written decoders of the hot messages agree with the
		// library, into a zero message and into one holding a sample's
		// values (the library reuses what it finds there).
		checkDecodersAgree(t, body, k.zero)
		if prior := samples[k.name]; prior != nil {
			checkDecodersAgree(t, body, func() any {
				m := k.zero()
				if err := libraryDecode(prior, m); err != nil {
					t.Fatal(err)
				}
				return m
			})
		}

		first := k.zero()
		if err := DecodeBody(body, first); err != nil {
			if !errors.Is(err, ErrBadBody) || CodeOf(err) != CodeBadRequest {
				t.Fatalf("DecodeBody error %v does not wrap ErrBadBody", err)
			}
			return
		}
		frame, err := AppendFrame(nil, Header{Opcode: k.op, Flags: k.flags}, first)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", first, err)
		}
		// The hand-written encoders write the library's bytes. (The library
		// writes Go maps in random order, so only these can be compared.)
		if _, hot := appendBodyFast(nil, first); hot {
			if want := libraryEncode(t, first); !bytes.Equal(frame[HeaderSize:], want) {
				t.Fatalf("AppendFrame encodes %+v as % x, the library as % x", first, frame[HeaderSize:], want)
			}
		}
		second := k.zero()
		if err := DecodeBody(frame[HeaderSize:], second); err != nil {
			t.Fatalf("decoding the re-encoded %+v: %v", first, err)
		}
		if !sameValue(reflect.ValueOf(first), reflect.ValueOf(second)) {
			t.Fatalf("round trip changed %s:\n%+v\n%+v", k.name, first, second)
		}
	})
}

// sameValue is reflect.DeepEqual except that a nil slice or map equals an
// empty one: the encoding omits both alike.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer:
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !sameValue(it.Value(), bv) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}
