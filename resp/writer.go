package resp

import (
	"io"
	"math"
	"strconv"
)

// Writer appends replies to a buffer, in RESP2 unless SetRESP3 switched it,
// and sends them with Flush, so that the replies to a pipeline leave in one
// write. Appending does not allocate once the buffer has grown to the size of
// a flush. The zero Writer is ready to use. A Writer is not safe for
// concurrent use.
//
// Aggregates are written as a header followed by their elements, each
// appended in turn: AppendArray(2), AppendBulkString("a"), AppendInt(1).
type Writer struct {
	buf   []byte
	resp3 bool
	err   error // sticky: the first error Flush met
}

// SetRESP3 switches the replies that RESP3 encodes differently (nulls, maps,
// sets, doubles, booleans, verbatim strings) to RESP3, or back to RESP2.
// HELLO 3 and HELLO 2 call it.
func (w *Writer) SetRESP3(on bool) { w.resp3 = on }

// RESP3 reports whether replies are written in RESP3.
func (w *Writer) RESP3() bool { return w.resp3 }

// Len returns the number of bytes appended since the last Flush.
func (w *Writer) Len() int { return len(w.buf) }

// Flush writes the buffered replies to dst in one Write and empties the
// buffer. The first error sticks, as in redcon: once a write failed the
// connection's stream is broken, so later Flushes write nothing, drop what
// was appended and return that error.
func (w *Writer) Flush(dst io.Writer) error {
	if w.err == nil && len(w.buf) > 0 {
		_, w.err = dst.Write(w.buf)
	}
	if cap(w.buf) > maxRetain {
		w.buf = nil // one huge reply should not stay with the connection
	}
	w.buf = w.buf[:0]
	return w.err
}

// AppendOK appends the simple string OK.
func (w *Writer) AppendOK() { w.buf = append(w.buf, "+OK\r\n"...) }

// AppendSimpleString appends a simple string (+s). CR and LF in s become
// spaces, so that the reply stays one line.
func (w *Writer) AppendSimpleString(s string) {
	w.buf = append(w.buf, '+')
	w.appendLine(s)
}

// AppendError appends an error reply (-msg). msg starts with the error code,
// as redis' do: "ERR syntax error", "WRONGTYPE Operation against a key
// holding the wrong kind of value", or err.Error() of an error from
// Reader.Next. CR and LF in msg become spaces, as redis does.
func (w *Writer) AppendError(msg string) {
	w.buf = append(w.buf, '-')
	w.appendLine(msg)
}

// AppendInt appends an integer (:n).
func (w *Writer) AppendInt(n int64) {
	w.buf = append(w.buf, ':')
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

// AppendBulk appends a bulk string ($len\r\nb\r\n). A nil b is an empty
// string, not a null: see AppendNull.
func (w *Writer) AppendBulk(b []byte) {
	w.appendHeader('$', len(b))
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

// AppendBulkString appends s as a bulk string.
func (w *Writer) AppendBulkString(s string) {
	w.appendHeader('$', len(s))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// AppendNull appends a null: the null bulk string $-1 in RESP2, _ in RESP3.
func (w *Writer) AppendNull() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// AppendNullArray appends a null where an array was expected: *-1 in RESP2,
// _ in RESP3.
func (w *Writer) AppendNullArray() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// AppendArray appends the header of an array of n elements (*n).
func (w *Writer) AppendArray(n int) { w.appendHeader('*', n) }

// AppendMap appends the header of a map of n key-value pairs: %n in RESP3,
// in RESP2 an array of 2n elements (*2n), keys and values alternating.
func (w *Writer) AppendMap(n int) {
	if w.resp3 {
		w.appendHeader('%', n)
		return
	}
	w.appendHeader('*', 2*n)
}

// AppendSet appends the header of a set of n elements: ~n in RESP3, an array
// (*n) in RESP2.
func (w *Writer) AppendSet(n int) {
	if w.resp3 {
		w.appendHeader('~', n)
		return
	}
	w.appendHeader('*', n)
}

// AppendDouble appends a double: ,f in RESP3, f as a bulk string in RESP2.
// f is written as the shortest text that reads back the same, without an
// exponent for magnitudes in [1e-6, 1e21), and as inf, -inf or nan, which
// is what redis clients parse.
func (w *Writer) AppendDouble(f float64) {
	var tmp [32]byte
	num := appendFloat(tmp[:0], f)
	if w.resp3 {
		w.buf = append(w.buf, ',')
		w.buf = append(w.buf, num...)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	w.AppendBulk(num)
}

// AppendBool appends a boolean: #t or #f in RESP3, the integer 1 or 0 in
// RESP2.
func (w *Writer) AppendBool(b bool) {
	switch {
	case w.resp3 && b:
		w.buf = append(w.buf, "#t\r\n"...)
	case w.resp3:
		w.buf = append(w.buf, "#f\r\n"...)
	case b:
		w.buf = append(w.buf, ":1\r\n"...)
	default:
		w.buf = append(w.buf, ":0\r\n"...)
	}
}

// AppendVerbatim appends a verbatim string: =len\r\nformat:b\r\n in RESP3, a
// bulk string of b in RESP2. format is three bytes, "txt" or "mkd"; any
// other length is a programming error and panics.
func (w *Writer) AppendVerbatim(format string, b []byte) {
	if len(format) != 3 {
		panic("resp: verbatim format must be 3 bytes, got " + strconv.Quote(format))
	}
	if !w.resp3 {
		w.AppendBulk(b)
		return
	}
	w.appendHeader('=', len(format)+1+len(b))
	w.buf = append(w.buf, format...)
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *Writer) appendHeader(kind byte, n int) {
	w.buf = append(w.buf, kind)
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, '\r', '\n')
}

// appendLine appends s and CRLF, with any CR or LF in s made a space.
func (w *Writer) appendLine(s string) {
	from := len(w.buf)
	w.buf = append(w.buf, s...)
	for i := from; i < len(w.buf); i++ {
		if c := w.buf[i]; c == '\r' || c == '\n' {
			w.buf[i] = ' '
		}
	}
	w.buf = append(w.buf, '\r', '\n')
}

func appendFloat(dst []byte, f float64) []byte {
	switch a := math.Abs(f); {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case a == 0 || a >= 1e-6 && a < 1e21:
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'e', -1, 64)
}
