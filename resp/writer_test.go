package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestWriterGolden(t *testing.T) {
	tests := []struct {
		name         string
		write        func(w *Writer)
		resp2, resp3 string
	}{
		{"ok", func(w *Writer) { w.AppendOK() }, "+OK\r\n", "+OK\r\n"},
		{"simple", func(w *Writer) { w.AppendSimpleString("PONG") }, "+PONG\r\n", "+PONG\r\n"},
		{"simple crlf", func(w *Writer) { w.AppendSimpleString("a\r\nb") }, "+a  b\r\n", "+a  b\r\n"},
		{"error", func(w *Writer) { w.AppendError("ERR syntax error") }, "-ERR syntax error\r\n", "-ERR syntax error\r\n"},
		{"wrongtype", func(w *Writer) { w.AppendError("WRONGTYPE Operation against a key holding the wrong kind of value") },
			"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
			"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"error crlf", func(w *Writer) { w.AppendError("ERR bad\r\nline\n") }, "-ERR bad  line \r\n", "-ERR bad  line \r\n"},
		{"protocol error", func(w *Writer) { w.AppendError((&ExpectedDollarError{Got: 'f'}).Error()) },
			"-ERR Protocol error: expected '$', got 'f'\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
		{"int", func(w *Writer) { w.AppendInt(42) }, ":42\r\n", ":42\r\n"},
		{"int negative", func(w *Writer) { w.AppendInt(math.MinInt64) }, ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"},
		{"bulk", func(w *Writer) { w.AppendBulk([]byte("a\r\nb")) }, "$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n"},
		{"bulk nil is empty", func(w *Writer) { w.AppendBulk(nil) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk string", func(w *Writer) { w.AppendBulkString("hello") }, "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"null", func(w *Writer) { w.AppendNull() }, "$-1\r\n", "_\r\n"},
		{"null array", func(w *Writer) { w.AppendNullArray() }, "*-1\r\n", "_\r\n"},
		{"array", func(w *Writer) { w.AppendArray(2); w.AppendBulkString("a"); w.AppendInt(1) }, "*2\r\n$1\r\na\r\n:1\r\n", "*2\r\n$1\r\na\r\n:1\r\n"},
		{"empty array", func(w *Writer) { w.AppendArray(0) }, "*0\r\n", "*0\r\n"},
		{"map", func(w *Writer) {
			w.AppendMap(2)
			w.AppendBulkString("a")
			w.AppendInt(1)
			w.AppendBulkString("b")
			w.AppendNull()
		},
			"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n", "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n"},
		{"set", func(w *Writer) { w.AppendSet(1); w.AppendBulkString("m") }, "*1\r\n$1\r\nm\r\n", "~1\r\n$1\r\nm\r\n"},
		{"double", func(w *Writer) { w.AppendDouble(1.5) }, "$3\r\n1.5\r\n", ",1.5\r\n"},
		{"double integral", func(w *Writer) { w.AppendDouble(3) }, "$1\r\n3\r\n", ",3\r\n"},
		{"double zero", func(w *Writer) { w.AppendDouble(0) }, "$1\r\n0\r\n", ",0\r\n"},
		{"double minus zero", func(w *Writer) { w.AppendDouble(math.Copysign(0, -1)) }, "$2\r\n-0\r\n", ",-0\r\n"},
		{"double tenth", func(w *Writer) { w.AppendDouble(0.1) }, "$3\r\n0.1\r\n", ",0.1\r\n"},
		{"double million", func(w *Writer) { w.AppendDouble(-1234567.5) }, "$10\r\n-1234567.5\r\n", ",-1234567.5\r\n"},
		{"double big", func(w *Writer) { w.AppendDouble(1e21) }, "$5\r\n1e+21\r\n", ",1e+21\r\n"},
		{"double small", func(w *Writer) { w.AppendDouble(1.5e-7) }, "$7\r\n1.5e-07\r\n", ",1.5e-07\r\n"},
		{"double inf", func(w *Writer) { w.AppendDouble(math.Inf(1)) }, "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", func(w *Writer) { w.AppendDouble(math.Inf(-1)) }, "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"double nan", func(w *Writer) { w.AppendDouble(math.NaN()) }, "$3\r\nnan\r\n", ",nan\r\n"},
		{"true", func(w *Writer) { w.AppendBool(true) }, ":1\r\n", "#t\r\n"},
		{"false", func(w *Writer) { w.AppendBool(false) }, ":0\r\n", "#f\r\n"},
		{"verbatim", func(w *Writer) { w.AppendVerbatim("txt", []byte("Some string")) }, "$11\r\nSome string\r\n", "=15\r\ntxt:Some string\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, resp3 := range []bool{false, true} {
				var w Writer
				w.SetRESP3(resp3)
				if w.RESP3() != resp3 {
					t.Fatalf("RESP3() = %v after SetRESP3(%v)", w.RESP3(), resp3)
				}
				tt.write(&w)
				want := tt.resp2
				if resp3 {
					want = tt.resp3
				}
				if w.Len() != len(want) {
					t.Errorf("resp3=%v: Len() = %d, want %d", resp3, w.Len(), len(want))
				}
				var out bytes.Buffer
				if err := w.Flush(&out); err != nil {
					t.Fatal(err)
				}
				if out.String() != want {
					t.Errorf("resp3=%v: got %q, want %q", resp3, out.String(), want)
				}
				if w.Len() != 0 {
					t.Errorf("Len() = %d after Flush", w.Len())
				}
			}
		})
	}
}

func TestWriterDoubleRoundTrips(t *testing.T) {
	for _, f := range []float64{math.Pi, -math.E, 1e20, 1e-6, 9.999999e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 62, 0.30000000000000004} {
		got := string(appendFloat(nil, f))
		if back, err := strconv.ParseFloat(got, 64); err != nil || back != f {
			t.Errorf("%v written as %q, reads back as %v (%v)", f, got, back, err)
		}
	}
}

func TestWriterVerbatimFormatPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a 4-byte format")
		}
	}()
	var w Writer
	w.AppendVerbatim("text", nil)
}

type failWriter struct{ writes int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.writes++
	return 1, io.ErrShortWrite
}

func TestWriterFlushErrorSticks(t *testing.T) {
	var w Writer
	dst := &failWriter{}
	w.AppendOK()
	if err := w.Flush(dst); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Flush: %v", err)
	}
	w.AppendOK()
	if err := w.Flush(&bytes.Buffer{}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("second Flush: %v", err)
	}
	if dst.writes != 1 || w.Len() != 0 {
		t.Fatalf("%d writes, %d bytes kept", dst.writes, w.Len())
	}
}

func TestWriterFlushEmpty(t *testing.T) {
	var w Writer
	dst := &failWriter{}
	if err := w.Flush(dst); err != nil || dst.writes != 0 {
		t.Fatalf("Flush of nothing: err=%v, %d writes", err, dst.writes)
	}
}

func TestWriterReleasesHugeBuffer(t *testing.T) {
	var w Writer
	w.AppendBulkString(strings.Repeat("v", 2*maxRetain))
	if err := w.Flush(io.Discard); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) > maxRetain {
		t.Fatalf("Writer keeps %d bytes after Flush", cap(w.buf))
	}
}

// writeReplies appends one of every reply, 16 times over.
func writeReplies(w *Writer, val []byte) {
	for range 16 {
		w.AppendOK()
		w.AppendSimpleString("PONG")
		w.AppendError("ERR syntax error")
		w.AppendInt(12345)
		w.AppendBulk(val)
		w.AppendBulkString("value")
		w.AppendNull()
		w.AppendNullArray()
		w.AppendArray(2)
		w.AppendMap(1)
		w.AppendSet(3)
		w.AppendDouble(3.25)
		w.AppendBool(true)
		w.AppendVerbatim("txt", val)
	}
}

func TestWriterAllocs(t *testing.T) {
	val := bytes.Repeat([]byte{'v'}, 100)
	for _, resp3 := range []bool{false, true} {
		var w Writer
		w.SetRESP3(resp3)
		allocs := testing.AllocsPerRun(100, func() {
			writeReplies(&w, val)
			if err := w.Flush(io.Discard); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("resp3=%v: %v allocations per 16 rounds of replies", resp3, allocs)
		}
	}
}
