package protocol

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// testFrame is a frame whose body the test owns.
type testFrame struct {
	h    Header
	body []byte
}

// knownOpcodes lists every opcode the decoder accepts.
func knownOpcodes() []Opcode {
	var ops []Opcode
	for op := range 256 {
		if Opcode(op).Known() {
			ops = append(ops, Opcode(op))
		}
	}
	return ops
}

// makeStream builds frames with varied opcodes, flags and request IDs, with
// the given body sizes, and returns them with their concatenated encoding.
// Bodies are random bytes: the decoder does not look inside them.
func makeStream(rng *rand.Rand, sizes []int) ([]testFrame, []byte) {
	ops := knownOpcodes()
	var frames []testFrame
	var stream []byte
	for i, size := range sizes {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		h := Header{
			Opcode: ops[i%len(ops)],
			Flags:  Flags(i % 2),
			ReqID:  rng.Uint64(),
			Len:    uint32(size),
		}
		frames = append(frames, testFrame{h: h, body: body})
		stream = append(AppendHeader(stream, h), body...)
	}
	return frames, stream
}

// smallSizes covers the empty body, sizes around the header size and a body
// of several KiB.
var smallSizes = []int{0, 0, 1, 2, 15, 16, 17, 31, 100, 0, 255, 256, 1000, 8 << 10, 0, 3, 4097, 1, 0}

// drain returns copies of every complete frame d holds; a frame's body is only
// valid until the next Write or ReadOnce.
func drain(t testing.TB, d *Decoder) []testFrame {
	t.Helper()
	var out []testFrame
	for {
		f, ok, err := d.Next()
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(out), err)
		}
		if !ok {
			return out
		}
		if int(f.Len) != len(f.Body) {
			t.Fatalf("frame %d: header says %d body bytes, got %d", len(out), f.Len, len(f.Body))
		}
		out = append(out, testFrame{h: f.Header, body: bytes.Clone(f.Body)})
	}
}

func sameFrames(t testing.TB, got, want []testFrame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].h != want[i].h {
			t.Fatalf("frame %d: header %+v, want %+v", i, got[i].h, want[i].h)
		}
		if !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("frame %d (%s, %d bytes): body differs", i, want[i].h.Opcode, len(want[i].body))
		}
	}
}

func TestDecoderSplitAtEveryOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want, stream := makeStream(rng, smallSizes)
	for split := 0; split <= len(stream); split++ {
		d := NewDecoder(0)
		d.Write(stream[:split])
		got := drain(t, d)
		if d.Buffered() != split-frameBytes(got) {
			t.Fatalf("split %d: Buffered = %d after %d frames", split, d.Buffered(), len(got))
		}
		d.Write(stream[split:])
		got = append(got, drain(t, d)...)
		sameFrames(t, got, want)
		if d.Buffered() != 0 {
			t.Fatalf("split %d: %d bytes left over", split, d.Buffered())
		}
	}
}

func frameBytes(frames []testFrame) int {
	n := 0
	for _, f := range frames {
		n += HeaderSize + len(f.body)
	}
	return n
}

func TestDecoderRandomPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := append(append([]int{}, smallSizes...), 70<<10, 0, 300<<10, 5, DefaultMaxBody, 0, 64<<10)
	want, stream := makeStream(rng, sizes)
	// marks are the offsets where a header or a body starts.
	var marks []int
	for pos, i := 0, 0; i < len(want); i++ {
		marks = append(marks, pos, pos+HeaderSize)
		pos += HeaderSize + len(want[i].body)
	}
	marks = append(marks, len(stream))
	// Each round splits the stream differently, with pieces from one byte to
	// more than most frames.
	maxPieces := []int{1, 7, 64, 1 << 10, 64 << 10, 1 << 20}
	for round := range 12 {
		maxPiece := maxPieces[round%len(maxPieces)]
		d := NewDecoder(0)
		var got []testFrame
		next := 0 // index of the first mark after pos
		for pos := 0; pos < len(stream); {
			for marks[next] <= pos {
				next++
			}
			n := 1 + rng.IntN(maxPiece)
			if gap := marks[next] - pos; maxPiece < 4<<10 && gap > 4<<10 {
				// Cross the inside of a big body in one piece that ends a
				// little before the next mark: tiny pieces there would take
				// millions of writes and test nothing new.
				n = gap - rng.IntN(64)
			}
			n = min(n, len(stream)-pos)
			d.Write(stream[pos : pos+n])
			pos += n
			got = append(got, drain(t, d)...)
		}
		sameFrames(t, got, want)
		if d.Buffered() != 0 {
			t.Fatalf("round %d: %d bytes left over", round, d.Buffered())
		}
		// Unconsumed input is at most one partial frame and one piece.
		if limit := 2 * (HeaderSize + DefaultMaxBody + maxPiece); cap(d.buf) > limit {
			t.Fatalf("round %d: buffer grew to %d bytes, want at most %d", round, cap(d.buf), limit)
		}
	}
}

// readAll feeds r to d with ReadOnce until EOF, draining after every read.
func readAll(t testing.TB, d *Decoder, r io.Reader, maxReads int) []testFrame {
	t.Helper()
	var got []testFrame
	for reads := 0; ; reads++ {
		if reads == maxReads {
			t.Fatalf("no EOF after %d reads", maxReads)
		}
		_, err := d.ReadOnce(r)
		got = append(got, drain(t, d)...)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("ReadOnce: %v", err)
		}
	}
}

func TestDecoderReadOnceOneByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// 100 KiB is more than ReadOnce's minimum read, so the buffer must grow
	// to the frame's size while it arrives.
	want, stream := makeStream(rng, append(append([]int{}, smallSizes...), 100<<10, 0))
	d := NewDecoder(0)
	got := readAll(t, d, iotest.OneByteReader(bytes.NewReader(stream)), len(stream)+2)
	sameFrames(t, got, want)
}

func TestDecoderReadOncePipe(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	want, stream := makeStream(rng, append(append([]int{}, smallSizes...), 200<<10, 2, 64<<10))
	pr, pw := io.Pipe()
	done := make(chan struct{})
	t.Cleanup(func() {
		pr.Close()
		<-done
	})
	go func() {
		defer close(done)
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(5000))
			if _, err := pw.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
		pw.Close()
	}()
	d := NewDecoder(0)
	got := readAll(t, d, pr, len(stream)+2)
	sameFrames(t, got, want)
}

func TestDecoderReadOnceLargeBody(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	want, stream := makeStream(rng, []int{3, DefaultMaxBody - 1, 0, DefaultMaxBody, 7})
	d := NewDecoder(0)
	got := readAll(t, d, bytes.NewReader(stream), 1000)
	sameFrames(t, got, want)
	// The buffer holds one frame and one minimum read, not the stream.
	if limit := HeaderSize + DefaultMaxBody + minRead; cap(d.buf) > limit {
		t.Fatalf("buffer grew to %d bytes, want at most %d", cap(d.buf), limit)
	}
}

// endless serves a prefix and then zeros forever, counting what it served.
type endless struct {
	prefix []byte
	served int
}

func (r *endless) Read(p []byte) (int, error) {
	n := copy(p, r.prefix)
	r.prefix = r.prefix[n:]
	clear(p[n:])
	r.served += len(p)
	return len(p), nil
}

func TestDecoderRejectsOversizedClaimBeforeBody(t *testing.T) {
	tests := []struct {
		name    string
		maxBody uint32
		claim   uint32
	}{
		{"4 GiB claim, default limit", 0, ^uint32(0)},
		{"one over default limit", 0, DefaultMaxBody + 1},
		{"one over small limit", 100, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Header{Opcode: OpSet, ReqID: 42, Len: tt.claim}
			r := &endless{prefix: AppendHeader(nil, h)}
			d := NewDecoder(tt.maxBody)
			if _, err := d.ReadOnce(r); err != nil {
				t.Fatalf("ReadOnce: %v", err)
			}
			f, ok, err := d.Next()
			if ok || !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("Next = ok %v, %v; want ErrFrameTooLarge", ok, err)
			}
			if f.Header != h {
				t.Fatalf("error frame header %+v, want %+v (to answer request %d)", f.Header, h, h.ReqID)
			}
			served := r.served
			if _, err := d.ReadOnce(r); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("ReadOnce after the error = %v, want the sticky error", err)
			}
			if r.served != served || served > minRead {
				t.Fatalf("decoder read %d bytes then %d more; want at most %d and then none", served, r.served-served, minRead)
			}
			if cap(d.buf) > minRead {
				t.Fatalf("decoder buffered %d bytes for a rejected frame", cap(d.buf))
			}
		})
	}
}

func TestDecoderAcceptsBodyAtLimit(t *testing.T) {
	d := NewDecoder(100)
	want, stream := makeStream(rand.New(rand.NewPCG(1, 1)), []int{100, 0, 100})
	d.Write(stream)
	sameFrames(t, drain(t, d), want)
}

// failReader fails the test if the decoder reads from it.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("decoder read after a framing error")
	return 0, io.EOF
}

func TestDecoderStickyError(t *testing.T) {
	good := Header{Opcode: OpGet, ReqID: 1, Len: 2}
	tests := []struct {
		name    string
		bad     []byte
		wantErr error
		want    Header // header returned with the error
	}{
		{"bad magic", header(0x00, Version, Header{Opcode: OpGet, ReqID: 2}), ErrBadMagic, Header{}},
		{"bad version", header(Magic, 9, Header{Opcode: OpGet, ReqID: 2}), ErrBadVersion, Header{}},
		{"unknown opcode", AppendHeader(nil, Header{Opcode: 0x7E, ReqID: 2}), ErrUnknownOpcode, Header{Opcode: 0x7E, ReqID: 2}},
		{"too large", AppendHeader(nil, Header{Opcode: OpSet, ReqID: 2, Len: 1 << 30}), ErrFrameTooLarge, Header{Opcode: OpSet, ReqID: 2, Len: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := append(AppendHeader(nil, good), 'a', 'b')
			stream = append(stream, tt.bad...)
			stream = append(stream, AppendHeader(nil, good)...)
			d := NewDecoder(0)
			d.Write(stream)

			f, ok, err := d.Next()
			if !ok || err != nil || f.Header != good {
				t.Fatalf("first Next = %+v, %v, %v; want the good frame", f.Header, ok, err)
			}
			f, ok, err = d.Next()
			if ok || !errors.Is(err, tt.wantErr) || f.Header != tt.want {
				t.Fatalf("second Next = %+v, %v, %v; want %+v, %v", f.Header, ok, err, tt.want, tt.wantErr)
			}
			first := err
			buffered := d.Buffered()
			for range 3 {
				d.Write(AppendHeader(nil, good))
				if _, ok, err := d.Next(); ok || err != first {
					t.Fatalf("Next after the error = %v, %v; want %v again", ok, err, first)
				}
			}
			if _, err := d.ReadOnce(failReader{t}); err != first {
				t.Fatalf("ReadOnce after the error = %v; want %v", err, first)
			}
			if d.Buffered() != buffered {
				t.Fatalf("Buffered went from %d to %d after the error", buffered, d.Buffered())
			}
		})
	}
}

func TestDecoderNeedsMoreInput(t *testing.T) {
	frame := append(AppendHeader(nil, Header{Opcode: OpSet, ReqID: 1, Len: 4}), 1, 2, 3, 4)
	for n := range len(frame) {
		d := NewDecoder(0)
		d.Write(frame[:n])
		if f, ok, err := d.Next(); ok || err != nil || f.Header != (Header{}) {
			t.Fatalf("%d bytes: Next = %+v, %v, %v; want nothing yet", n, f.Header, ok, err)
		}
		if d.Buffered() != n {
			t.Fatalf("%d bytes: Buffered = %d", n, d.Buffered())
		}
	}
}

func TestDecoderBodyCannotGrowIntoNextFrame(t *testing.T) {
	// A frame's body has its length as capacity, so appending to it cannot
	// overwrite the frame after it.
	_, stream := makeStream(rand.New(rand.NewPCG(1, 1)), []int{4, 4})
	d := NewDecoder(0)
	d.Write(stream)
	f, _, _ := d.Next()
	_ = append(f.Body, 0xFF)
	if _, ok, err := d.Next(); !ok || err != nil {
		t.Fatalf("second frame: ok %v, %v", ok, err)
	}
}

// chunkReader serves an endless repetition of stream in reads of chunk bytes,
// so that reads end inside frames.
type chunkReader struct {
	stream []byte
	pos    int
	chunk  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	n := min(len(p), r.chunk)
	for i := range n {
		p[i] = r.stream[r.pos]
		r.pos = (r.pos + 1) % len(r.stream)
	}
	return n, nil
}

func TestDecoderReadOnceSteadyStateDoesNotAllocate(t *testing.T) {
	// Reads end inside frames, and one frame is bigger than minRead: neither
	// may cost an allocation once the buffer has grown to the largest frame.
	_, stream := makeStream(rand.New(rand.NewPCG(1, 1)), []int{120, 0, 100 << 10, 300, 7, 64})
	d := NewDecoder(0)
	r := &chunkReader{stream: stream, chunk: 1000}
	frames := 0
	readStream := func() {
		for range (len(stream) + r.chunk - 1) / r.chunk {
			if _, err := d.ReadOnce(r); err != nil {
				t.Fatal(err)
			}
			for {
				_, ok, err := d.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				frames++
			}
		}
	}
	readStream() // grows the buffer
	if allocs := testing.AllocsPerRun(20, readStream); allocs != 0 {
		t.Fatalf("reading the stream allocated %v times", allocs)
	}
	if frames < 20*6 {
		t.Fatalf("only %d frames decoded", frames)
	}
}

// TestDecoderUnread: what follows the last frame returned is handed back
// as it came, whether or not it looks like a frame, so that a connection
// can switch to another format after a frame.
func TestDecoderUnread(t *testing.T) {
	frame := AppendHeader(nil, Header{Opcode: OpPeerLink, ReqID: 1})
	tests := []struct {
		name string
		rest []byte
	}{
		{"nothing after", nil},
		{"not frames", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"part of a frame", AppendHeader(nil, Header{Opcode: OpPing, ReqID: 2})[:5]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(0)
			d.Write(append(bytes.Clone(frame), tc.rest...))
			if f, ok, err := d.Next(); !ok || err != nil || f.Opcode != OpPeerLink {
				t.Fatalf("Next = %+v, %v, %v", f.Header, ok, err)
			}
			if got := d.Unread(); !bytes.Equal(got, tc.rest) {
				t.Fatalf("Unread = %x, want %x", got, tc.rest)
			}
		})
	}
}
