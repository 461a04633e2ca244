package peer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// splitReader returns its data in pieces of the sizes given, cycling.
type splitReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), max(1, r.sizes[r.i%len(r.sizes)]))
	r.i++
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestRequestSplit: a request frame reads the same however its bytes are
// cut, and the next frame after it is untouched.
func TestRequestSplit(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 30)
	frame := appendRequest(nil, KindReplicate, 1500*time.Millisecond, body)
	next := appendRequest(nil, kindEcho, 0, []byte("next"))
	stream := append(bytes.Clone(frame), next...)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
		"odd":      func() io.Reader { return &splitReader{data: stream, sizes: []int{3, 7, 1, 250, 2}} },
	}
	for at := 1; at < len(frame); at += 37 {
		readers[fmt.Sprintf("cut at %d", at)] = func() io.Reader {
			return &splitReader{data: stream, sizes: []int{at, len(stream)}}
		}
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := mk()
			req, err := readRequest(r, new([requestHeaderSize]byte), 1<<10)
			if err != nil || req.kind != KindReplicate || req.timeout != 1500*time.Millisecond || !bytes.Equal(req.body, body) {
				t.Fatalf("first = %v %v %d bytes, %v", req.kind, req.timeout, len(req.body), err)
			}
			req, err = readRequest(r, new([requestHeaderSize]byte), 1<<10)
			if err != nil || req.kind != kindEcho || req.timeout != 0 || string(req.body) != "next" {
				t.Fatalf("second = %v %v %q, %v", req.kind, req.timeout, req.body, err)
			}
		})
	}
}

// TestReadFrameErrors: a stream that ends inside a frame, a body over the
// bound, and an unknown status are each refused with their error.
func TestReadFrameErrors(t *testing.T) {
	req := appendRequest(nil, kindEcho, 0, []byte("hello"))
	resp := appendResponse(nil, statusOK, []byte("hello"))
	badStatus := appendResponse(nil, statusTooLarge+1, nil)
	tests := []struct {
		name     string
		response bool
		in       []byte
		want     error
	}{
		{"request: empty stream", false, nil, io.EOF},
		{"request: cut in the header", false, req[:4], ErrBadFrame},
		{"request: cut in the body", false, req[:len(req)-1], ErrBadFrame},
		{"request: body over the bound", false, appendRequest(nil, kindEcho, 0, make([]byte, 17)), ErrTooLarge},
		{"response: cut in the header", true, resp[:2], ErrBadFrame},
		{"response: cut in the body", true, resp[:len(resp)-2], ErrBadFrame},
		{"response: body over the bound", true, appendResponse(nil, statusOK, make([]byte, 17)), ErrTooLarge},
		{"response: unknown status", true, badStatus, ErrBadFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.response {
				_, _, err = readResponse(bytes.NewReader(tc.in), 16)
			} else {
				_, err = readRequest(bytes.NewReader(tc.in), new([requestHeaderSize]byte), 16)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTimeoutEncoding: a deadline travels in whole milliseconds, never as
// zero (which would mean none), and is capped.
func TestTimeoutEncoding(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Microsecond, time.Millisecond},
		{1500 * time.Microsecond, time.Millisecond},
		{time.Minute, time.Minute},
		{100 * 24 * time.Hour, maxTimeoutMS * time.Millisecond},
	}
	for _, tc := range tests {
		req, err := readRequest(bytes.NewReader(appendRequest(nil, kindEcho, tc.in, nil)), new([requestHeaderSize]byte), 0)
		if err != nil || req.timeout != tc.want {
			t.Errorf("timeout %v: read %v, %v; want %v", tc.in, req.timeout, err, tc.want)
		}
	}
}

// FuzzReadRequest: any bytes, cut anywhere, either give a request that
// encodes back to the bytes read, or an error; never a panic or a body
// over the bound. Reading the same bytes whole gives the same result.
func FuzzReadRequest(f *testing.F) {
	f.Add(appendRequest(nil, KindReplicate, time.Second, []byte("delta")), uint8(3))
	f.Add(appendRequest(nil, kindEcho, 0, nil), uint8(1))
	f.Add(appendRequest(nil, kindEcho, 0, make([]byte, 64)), uint8(9))
	f.Add([]byte{1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, uint8(2))
	const maxBody = 64
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		whole, werr := readRequest(bytes.NewReader(data), new([requestHeaderSize]byte), maxBody)
		split, serr := readRequest(&splitReader{data: data, sizes: []int{int(cut), 1, 5}}, new([requestHeaderSize]byte), maxBody)
		if (werr == nil) != (serr == nil) {
			t.Fatalf("whole: %v, split: %v", werr, serr)
		}
		if werr != nil {
			return
		}
		if len(whole.body) > maxBody {
			t.Fatalf("body of %d bytes over the bound", len(whole.body))
		}
		if whole.kind != split.kind || whole.timeout != split.timeout || !bytes.Equal(whole.body, split.body) {
			t.Fatalf("whole %+v, split %+v", whole, split)
		}
		again := appendRequest(nil, whole.kind, whole.timeout, whole.body)
		if !bytes.Equal(again, data[:len(again)]) {
			t.Fatalf("re-encoded %x, read %x", again, data[:len(again)])
		}
	})
}

// FuzzReadResponse: as FuzzReadRequest, for responses.
func FuzzReadResponse(f *testing.F) {
	f.Add(appendResponse(nil, statusOK, []byte("answer")), uint8(2))
	f.Add(appendResponse(nil, statusFailed, []byte("no")), uint8(1))
	f.Add(appendResponse(nil, statusUnknownKind, nil), uint8(4))
	const maxBody = 64
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		st, body, werr := readResponse(bytes.NewReader(data), maxBody)
		sst, sbody, serr := readResponse(&splitReader{data: data, sizes: []int{int(cut), 1, 5}}, maxBody)
		if (werr == nil) != (serr == nil) {
			t.Fatalf("whole: %v, split: %v", werr, serr)
		}
		if werr != nil {
			return
		}
		if st != sst || !bytes.Equal(body, sbody) || len(body) > maxBody {
			t.Fatalf("whole %d %x, split %d %x", st, body, sst, sbody)
		}
		again := appendResponse(nil, st, body)
		if !bytes.Equal(again, data[:len(again)]) {
			t.Fatalf("re-encoded %x, read %x", again, data[:len(again)])
		}
	})
}
