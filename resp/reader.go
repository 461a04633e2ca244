package resp

import (
	"bytes"
	"io"
	"math"
)

// ReadOnce reads into the free space after the buffered bytes. When that is
// under minFree (or under what a pending argument still needs), it first
// moves the buffered bytes to the front, and grows the buffer by at least
// minRead if that is still too little. Big reads mean few syscalls per
// pipelined command.
const (
	minRead = 64 << 10
	minFree = 4 << 10
	// A buffer grown past maxRetain for one big command is dropped once it
	// is empty, so that an idle connection does not keep it.
	maxRetain = 1 << 20
	// Argument slices are dropped likewise once they exceed maxRetainArgs.
	maxRetainArgs = 1 << 16
)

// span locates an argument in the buffer, relative to the command's start.
type span struct{ off, end int }

// Reader splits a byte stream into Redis commands. It keeps whatever a read
// returned and yields every complete command it holds, so a server can take
// a whole pipeline from one read and answer it in one write. It accepts
// multibulk commands (*N\r\n$len\r\n...\r\n) and inline commands (a line of
// space-separated words, with redis' "..." and '...' quoting), and ignores
// empty lines and commands of zero or negative length, as redis does.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	maxBulk, maxArgs, maxInline int

	buf   []byte
	start int // buf[start:] holds the bytes not yet returned as commands

	// A multibulk command in progress; positions are relative to start, so
	// that moving the buffered bytes leaves them valid.
	pending int    // arguments still to come; 0 when none is in progress
	bulk    int    // length of the next argument once its '$' line is read, else -1
	pos     int    // next byte to parse
	scan    int    // the line being parsed has no terminator before scan
	spans   []span // arguments read so far

	// args backs the commands returned since the last Write or ReadOnce: a
	// command stays valid while later ones are read, so that a server can
	// batch a pipeline.
	args [][]byte
	err  error // sticky: once framing is lost it cannot be regained
}

// NewReader returns a Reader with cfg's limits (zero fields mean the
// defaults).
func NewReader(cfg Config) *Reader {
	cfg = cfg.withDefaults()
	return &Reader{maxBulk: cfg.MaxBulkLen, maxArgs: cfg.MaxArgs, maxInline: cfg.MaxInlineLen, bulk: -1}
}

// Write appends p to the Reader's input. It never fails. After a protocol
// error the input is dropped: nothing after it can be parsed. Commands
// returned before are invalidated.
func (r *Reader) Write(p []byte) (int, error) {
	if r.err != nil {
		return len(p), nil
	}
	r.reset()
	// append, unlike compact, grows the buffer geometrically: a command that
	// arrives in many small writes is copied a few times, not once per write.
	r.compact(0)
	r.buf = append(r.buf, p...)
	return len(p), nil
}

// ReadOnce performs one Read from src straight into the Reader's buffer and
// returns what that read returned. It reads once, not to EOF, so that the
// caller can handle the commands that read completed. Commands returned
// before are invalidated. After a protocol error it does not read and returns
// that error.
func (r *Reader) ReadOnce(src io.Reader) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.reset()
	want := minFree
	if need := r.missing(); need > want {
		// Grow towards a declared argument only as fast as its bytes arrive
		// (doubling at most), so that a client declaring 512 MiB and sending
		// nothing costs nothing.
		want = min(need, max(minRead, r.Buffered()))
	}
	if cap(r.buf)-len(r.buf) < want {
		r.compact(want)
	}
	n, err := src.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	return n, err
}

// Buffered returns the number of bytes held that are not yet part of a
// returned command.
func (r *Reader) Buffered() int { return len(r.buf) - r.start }

// Peek returns the bytes held that are not yet part of a returned command,
// valid until the next call of any other method.
func (r *Reader) Peek() []byte { return r.buf[r.start:] }

// Next returns the next complete command. Its arguments alias the Reader's
// buffer and stay valid until the next Write or ReadOnce (not just until the
// next Next); a handler that keeps one longer must copy it. Quoted inline
// arguments are unescaped in place. ok is false when more input is needed.
// A protocol error (see ErrInvalidMultibulkLength and the others) repeats on
// every later call.
func (r *Reader) Next() (args [][]byte, ok bool, err error) {
	for r.err == nil {
		b := r.buf[r.start:]
		if r.pending == 0 {
			if len(b) == 0 {
				return nil, false, nil
			}
			var n int // bytes of the line read; 0 when it is incomplete
			if b[0] == '*' {
				n, err = r.count(b)
			} else {
				n, args, err = r.inline(b)
			}
			if err != nil {
				r.err = err
				break
			}
			if n == 0 {
				return nil, false, nil
			}
			if r.pending == 0 {
				// An inline command, or a multibulk one of no arguments,
				// which redis ignores like an empty line.
				r.consume(n)
				if len(args) > 0 {
					return args, true, nil
				}
				continue
			}
		}
		if args, ok, err = r.multibulk(b); err != nil {
			r.err = err
			break
		}
		return args, ok, nil
	}
	return nil, false, r.err
}

// count reads the '*' line of a multibulk command at the start of b, and
// returns its length.
func (r *Reader) count(b []byte) (int, error) {
	end, err := r.line(b, 0, ErrTooBigMultibulkCount)
	if end <= 0 || err != nil {
		return 0, err
	}
	n, ok := parseLen(b[1:end])
	// Redis does not look at the byte after '\r'; taking anything but '\n'
	// would only desynchronise later.
	if !ok || n > int64(r.maxArgs) || b[end+1] != '\n' {
		return 0, ErrInvalidMultibulkLength
	}
	if n > 0 {
		r.pending, r.bulk, r.pos = int(n), -1, end+2
	}
	return end + 2, nil
}

// multibulk reads the arguments of the multibulk command at the start of b
// that are complete, and returns the command once all are.
func (r *Reader) multibulk(b []byte) ([][]byte, bool, error) {
	for r.pending > 0 {
		if r.bulk < 0 {
			if r.pos == len(b) {
				return nil, false, nil
			}
			// Redis checks this only once the line is complete; checking now
			// fails a stray client without waiting for a '\r' that may never
			// come.
			if b[r.pos] != '$' {
				return nil, false, &ExpectedDollarError{Got: b[r.pos]}
			}
			end, err := r.line(b, r.pos, ErrTooBigBulkCount)
			if end <= 0 || err != nil {
				return nil, false, err
			}
			n, ok := parseLen(b[r.pos+1 : end])
			if !ok || n < 0 || n > int64(r.maxBulk) || b[end+1] != '\n' {
				return nil, false, ErrInvalidBulkLength
			}
			r.bulk, r.pos = int(n), end+2
		}
		if len(b)-r.pos < r.bulk+2 {
			return nil, false, nil
		}
		end := r.pos + r.bulk
		// Redis skips these two bytes unseen; anything but CRLF here means
		// the declared length was wrong.
		if b[end] != '\r' || b[end+1] != '\n' {
			return nil, false, ErrInvalidBulkLength
		}
		r.spans = append(r.spans, span{r.pos, end})
		r.pos, r.bulk = end+2, -1
		r.pending--
	}
	first := len(r.args)
	for _, s := range r.spans {
		r.args = append(r.args, b[s.off:s.end:s.end])
	}
	r.spans = r.spans[:0]
	r.consume(r.pos)
	return r.args[first:len(r.args):len(r.args)], true, nil
}

// inline reads the inline command line at the start of b, and returns the
// line's length with its terminator and its arguments.
func (r *Reader) inline(b []byte) (int, [][]byte, error) {
	i := bytes.IndexByte(b[r.scan:], '\n')
	if i < 0 {
		if len(b) > r.maxInline {
			return 0, nil, ErrTooBigInline
		}
		r.scan = len(b)
		return 0, nil, nil
	}
	i += r.scan
	// Redis checks the length only while the newline is missing, so whether
	// it accepts a long line depends on how the line was split into reads;
	// checking it always does not.
	if i > r.maxInline {
		return 0, nil, ErrTooBigInline
	}
	line := b[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	first := len(r.args)
	var err error
	r.args, err = splitInline(line, r.args)
	return i + 1, r.args[first:len(r.args):len(r.args)], err
}

// line finds the '\r' that ends the count line starting at b[from], and
// returns its index, or 0 when the line or the '\n' after it is incomplete.
// A line longer than maxInline is an error, tooBig, whether or not it is
// complete.
func (r *Reader) line(b []byte, from int, tooBig error) (int, error) {
	at := max(r.scan, from)
	i := bytes.IndexByte(b[at:], '\r')
	if i < 0 {
		if len(b)-from > r.maxInline {
			return 0, tooBig
		}
		r.scan = len(b)
		return 0, nil
	}
	i += at
	if i-from > r.maxInline {
		return 0, tooBig
	}
	if i+1 == len(b) {
		r.scan = i
		return 0, nil
	}
	return i, nil
}

// missing returns how many more bytes the argument being read needs, when
// its length is known.
func (r *Reader) missing() int {
	if r.pending == 0 || r.bulk < 0 {
		return 0
	}
	return r.pos + r.bulk + 2 - r.Buffered()
}

// consume marks the first n unreturned bytes as returned.
func (r *Reader) consume(n int) {
	r.start += n
	r.pos, r.scan = 0, 0
}

// reset forgets the commands returned so far, ahead of new input, and drops
// buffers that one big command left oversized.
func (r *Reader) reset() {
	if r.Buffered() == 0 && (cap(r.buf) > maxRetain || cap(r.args) > maxRetainArgs) {
		// The old args pin the old buffer.
		r.buf, r.start, r.args = nil, 0, nil
	}
	if r.pending == 0 && cap(r.spans) > maxRetainArgs {
		r.spans = nil
	}
	r.args = r.args[:0]
}

// compact makes room for n more bytes, moving unreturned bytes to the front
// and, if that is not enough, growing the buffer by at least minRead.
// Commands returned before are invalidated.
func (r *Reader) compact(n int) {
	rest := r.Buffered()
	if r.start > 0 {
		copy(r.buf, r.buf[r.start:])
		r.buf = r.buf[:rest]
		r.start = 0
	}
	if cap(r.buf)-rest < n {
		nb := make([]byte, rest, rest+max(n, minRead))
		copy(nb, r.buf)
		r.buf = nb
	}
}

// parseLen parses a count the way redis' string2ll does: an optional '-',
// then digits without leading zeros (or "0" alone), at most 20 bytes.
func parseLen(p []byte) (int64, bool) {
	if len(p) == 0 || len(p) > 20 {
		return 0, false
	}
	if len(p) == 1 && p[0] == '0' {
		return 0, true
	}
	neg := p[0] == '-'
	if neg {
		p = p[1:]
	}
	if len(p) == 0 || p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range p {
		if c < '0' || c > '9' || v > (math.MaxUint64-9)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	case neg && v <= math.MaxInt64+1:
		return -int64(v-1) - 1, true
	}
	return 0, false
}
