package resp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestReaderValid(t *testing.T) {
	small := Config{MaxBulkLen: 4, MaxArgs: 3, MaxInlineLen: 10}
	tests := []struct {
		name   string
		cfg    Config
		in     string
		want   [][][]byte
		remain int // bytes of an incomplete command left buffered
	}{
		{name: "multibulk", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", want: [][][]byte{cmd("SET", "k", "value")}},
		{name: "binary bulk", in: "*2\r\n$4\r\n\r\n\r\n\r\n$3\r\n\x00\xff*\r\n", want: [][][]byte{cmd("\r\n\r\n", "\x00\xff*")}},
		{name: "empty bulk", in: "*2\r\n$0\r\n\r\n$0\r\n\r\n", want: [][][]byte{cmd("", "")}},
		{name: "pipeline", in: "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n", want: [][][]byte{cmd("PING"), cmd("GET", "k"), cmd("PING")}},
		{name: "zero multibulk ignored", in: "*0\r\n*1\r\n$4\r\nPING\r\n", want: [][][]byte{cmd("PING")}},
		{name: "negative multibulk ignored", in: "*-10\r\n*-1\r\nPING\r\n", want: [][][]byte{cmd("PING")}},
		{name: "empty lines ignored", in: "\r\n\n  \t\r\n*1\r\n$4\r\nPING\r\n\r\n", want: [][][]byte{cmd("PING")}},
		{name: "inline", in: "SET k value\r\nGET k\n", want: [][][]byte{cmd("SET", "k", "value"), cmd("GET", "k")}},
		{name: "inline blanks", in: " \v\fSET \t k\rv  \r\r\n", want: [][][]byte{cmd("SET", "k", "v")}},
		{name: "inline non-leading vtab is a byte", in: "a\vb\n", want: [][][]byte{cmd("a\vb")}},
		{name: "inline double quotes", in: `SET "a key" "x\"y\\z"` + "\r\n", want: [][][]byte{cmd("SET", "a key", `x"y\z`)}},
		{name: "inline escapes", in: `"\x41\x7a\xFF\n\r\t\b\a\q\x4" x` + "\n", want: [][][]byte{cmd("Az\xff\n\r\t\b\aqx4", "x")}},
		{name: "inline empty quoted", in: `SET k ""` + "\n" + `SET k ''` + "\n", want: [][][]byte{cmd("SET", "k", ""), cmd("SET", "k", "")}},
		{name: "inline single quotes", in: `'it\'s' 'a\nb' '"'` + "\n", want: [][][]byte{cmd("it's", `a\nb`, `"`)}},
		{name: "inline quote inside word", in: `ab"c d" e'f'` + "\n", want: [][][]byte{cmd("abc d", "ef")}},
		{name: "inline quote then vtab", in: "\"a\"\vb\n", want: [][][]byte{cmd("a", "b")}},
		{name: "inline nul is a byte", in: "a\x00b \"\x00\"\n", want: [][][]byte{cmd("a\x00b", "\x00")}},
		{name: "inline dollar", in: "$3\r\n", want: [][][]byte{cmd("$3")}},
		{name: "incomplete count", in: "*1\r", remain: 3},
		{name: "incomplete bulk line", in: "*1\r\n$3", remain: 6},
		{name: "incomplete bulk", in: "PING\n*1\r\n$3\r\nab", want: [][][]byte{cmd("PING")}, remain: 10},
		{name: "incomplete bulk crlf", in: "*1\r\n$3\r\nabc\r", remain: 12},
		{name: "incomplete inline", in: "PING\r\nGET", want: [][][]byte{cmd("PING")}, remain: 3},
		{name: "at limits", cfg: small, in: "*3\r\n$4\r\nabcd\r\n$0\r\n\r\n$1\r\nx\r\n0123456789\n", want: [][][]byte{cmd("abcd", "", "x"), cmd("0123456789")}},
		{name: "inline limit excludes newline", cfg: small, in: "012345678\r\n", want: [][][]byte{cmd("012345678")}},
		{name: "count line at limit", cfg: small, in: "*00000000", remain: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.cfg)
			r.Write([]byte(tt.in))
			got, err := drain(r)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			checkCmds(t, "commands", got, tt.want)
			if r.Buffered() != tt.remain {
				t.Fatalf("Buffered() = %d, want %d", r.Buffered(), tt.remain)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	small := Config{MaxBulkLen: 4, MaxArgs: 3, MaxInlineLen: 10}
	long := strings.Repeat("a", 64<<10)
	tests := []struct {
		name string
		cfg  Config
		in   string
		want [][][]byte // commands before the error
		err  error
		text string
	}{
		{name: "non-number count", in: "*abc\r\n", err: ErrInvalidMultibulkLength, text: "ERR Protocol error: invalid multibulk length"},
		{name: "count over MaxArgs", in: "*20000000\r\n", err: ErrInvalidMultibulkLength},
		{name: "count overflow", in: "*99999999999999999999\r\n", err: ErrInvalidMultibulkLength},
		{name: "count leading zero", in: "*01\r\n", err: ErrInvalidMultibulkLength},
		{name: "count minus zero", in: "*-0\r\n", err: ErrInvalidMultibulkLength},
		{name: "count plus", in: "*+1\r\n", err: ErrInvalidMultibulkLength},
		{name: "count empty", in: "*\r\n", err: ErrInvalidMultibulkLength},
		{name: "count lf inside", in: "*1\n$1\r\n", err: ErrInvalidMultibulkLength},
		{name: "count cr without lf", in: "*1\rX", err: ErrInvalidMultibulkLength},
		{name: "count too big", in: "*" + long, err: ErrTooBigMultibulkCount, text: "ERR Protocol error: too big mbulk count string"},
		{name: "count too big complete", cfg: small, in: "*0000000001\r\n", err: ErrTooBigMultibulkCount},
		{name: "expected dollar", in: "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", err: ErrExpectedDollar, text: "ERR Protocol error: expected '$', got 'f'"},
		{name: "expected dollar early", in: "*1\r\nf", err: ErrExpectedDollar, text: "ERR Protocol error: expected '$', got 'f'"},
		{name: "expected dollar got cr", in: "*1\r\n\r\n", err: ErrExpectedDollar, text: "ERR Protocol error: expected '$', got ' '"},
		{name: "negative bulk", in: "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", err: ErrInvalidBulkLength, text: "ERR Protocol error: invalid bulk length"},
		{name: "bulk over MaxBulkLen", in: "*1\r\n$2000000000\r\n", err: ErrInvalidBulkLength},
		{name: "bulk over small MaxBulkLen", cfg: small, in: "*1\r\n$5\r\n", err: ErrInvalidBulkLength},
		{name: "args over small MaxArgs", cfg: small, in: "*4\r\n", err: ErrInvalidMultibulkLength},
		{name: "non-number bulk", in: "*1\r\n$blabla\r\n", err: ErrInvalidBulkLength},
		{name: "bulk minus one", in: "*1\r\n$-1\r\n", err: ErrInvalidBulkLength},
		{name: "bulk cr without lf", in: "*1\r\n$1\rX", err: ErrInvalidBulkLength},
		{name: "bulk without crlf", in: "*2\r\n$1\r\na\r\n$3\r\nfooXY", err: ErrInvalidBulkLength},
		{name: "bulk count too big", in: "*1\r\n$" + long, err: ErrTooBigBulkCount, text: "ERR Protocol error: too big bulk count string"},
		{name: "unbalanced", in: "set \"\"\"test-key\"\"\" test-value\r\nping\r\n", err: ErrUnbalancedQuotes, text: "ERR Protocol error: unbalanced quotes in request"},
		{name: "unterminated double", in: "PING\r\nGET \"abc\r\n", want: [][][]byte{cmd("PING")}, err: ErrUnbalancedQuotes},
		{name: "unterminated single", in: "GET 'abc\n", err: ErrUnbalancedQuotes},
		{name: "backslash at end", in: "GET \"abc\\\n", err: ErrUnbalancedQuotes},
		{name: "word after double", in: "GET \"a\"b\n", err: ErrUnbalancedQuotes},
		{name: "word after single", in: "GET 'a'b\n", err: ErrUnbalancedQuotes},
		{name: "inline too big", in: long + "a", err: ErrTooBigInline, text: "ERR Protocol error: too big inline request"},
		{name: "inline too big complete", cfg: small, in: "0123456789a\n", err: ErrTooBigInline},
		{name: "inline too big with cr", cfg: small, in: "0123456789\r\n", err: ErrTooBigInline},
		{name: "after commands", in: "*1\r\n$4\r\nPING\r\n*x\r\n", want: [][][]byte{cmd("PING")}, err: ErrInvalidMultibulkLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.cfg)
			r.Write([]byte(tt.in))
			got, err := drain(r)
			checkCmds(t, "commands", got, tt.want)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if tt.text != "" && err.Error() != tt.text {
				t.Fatalf("error text %q, want %q", err.Error(), tt.text)
			}
			checkSticky(t, r, err)
		})
	}
}

// checkSticky asserts that r, stopped by err, stays stopped.
func checkSticky(t *testing.T, r *Reader, err error) {
	t.Helper()
	buffered := r.Buffered()
	r.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	if r.Buffered() != buffered {
		t.Fatalf("Write after an error buffered %d more bytes", r.Buffered()-buffered)
	}
	if _, ok, again := r.Next(); ok || again != err {
		t.Fatalf("Next after an error: ok=%v err=%v, want %v", ok, again, err)
	}
	src := &pieceReader{data: []byte("PING\r\n"), pieces: []int{6}}
	if n, rerr := r.ReadOnce(src); n != 0 || rerr != err || len(src.data) != 6 {
		t.Fatalf("ReadOnce after an error: n=%d err=%v, read %d bytes", n, rerr, 6-len(src.data))
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	for _, c := range []Config{{MaxBulkLen: -1}, {MaxArgs: -1}, {MaxInlineLen: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v is valid", c)
		}
	}
	r := NewReader(Config{})
	d := DefaultConfig()
	if r.maxBulk != d.MaxBulkLen || r.maxArgs != d.MaxArgs || r.maxInline != d.MaxInlineLen {
		t.Fatalf("zero Config gave limits %d %d %d, want %+v", r.maxBulk, r.maxArgs, r.maxInline, d)
	}
	if d.MaxBulkLen != 512<<20 || d.MaxInlineLen != 64<<10 {
		t.Fatalf("defaults %+v are not redis'", d)
	}
}

func TestParseLen(t *testing.T) {
	tests := []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"123", 123, true},
		{"9223372036854775807", 1<<63 - 1, true}, {"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"18446744073709551615", 0, false}, {"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"00", 0, false}, {"01", 0, false}, {"-0", 0, false},
		{"+1", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"1a", 0, false}, {"--1", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseLen([]byte(tt.in))
		if n != tt.n || ok != tt.ok {
			t.Errorf("parseLen(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}

// splitStream is a stream of commands of every shape, and the commands.
func splitStream() ([]byte, [][][]byte) {
	cmds := [][][]byte{
		cmd("SET", "key:1", strings.Repeat("v", 100)),
		cmd("SET", "bin", "a\r\nb\r\n\x00\xff", ""),
		cmd("GET", ""),
		cmd("PING"),
		cmd("MSET", "a", "1", "b", "2", "c", "3"),
		cmd("ECHO", strings.Repeat("\r\n", 40)),
	}
	var stream []byte
	for _, c := range cmds {
		stream = appendMultibulk(stream, c)
	}
	stream = append(stream, "*0\r\n\r\n\n*-1\r\n"...)
	inline := []struct {
		line string
		cmd  [][]byte
	}{
		{"PING\r\n", cmd("PING")},
		{"SET k \"a b\\x00\\\"c\\n\" 'it\\'s'\r\n", cmd("SET", "k", "a b\x00\"c\n", "it's")},
		{"   \r\n", nil},
		{"GET k\n", cmd("GET", "k")},
		{"ECHO \"\"\r\n", cmd("ECHO", "")},
	}
	for _, l := range inline {
		stream = append(stream, l.line...)
		if l.cmd != nil {
			cmds = append(cmds, l.cmd)
		}
	}
	last := cmd("DEL", "x", "y")
	stream = appendMultibulk(stream, last)
	return stream, append(cmds, last)
}

func TestReaderSplitEveryOffset(t *testing.T) {
	stream, want := splitStream()
	for at := range len(stream) + 1 {
		r := NewReader(Config{})
		r.Write(stream[:at])
		got, err := drain(r)
		if err != nil {
			t.Fatalf("split at %d: %v", at, err)
		}
		r.Write(stream[at:])
		more, err := drain(r)
		if err != nil {
			t.Fatalf("split at %d: %v", at, err)
		}
		checkCmds(t, "split", append(got, more...), want)
		if r.Buffered() != 0 {
			t.Fatalf("split at %d: %d bytes left", at, r.Buffered())
		}
	}
}

func TestReaderSplitBytes(t *testing.T) {
	stream, want := splitStream()
	r := NewReader(Config{})
	var got [][][]byte
	for i := range stream {
		r.Write(stream[i : i+1])
		more, err := drain(r)
		if err != nil {
			t.Fatalf("at byte %d: %v", i, err)
		}
		got = append(got, more...)
	}
	checkCmds(t, "byte by byte", got, want)
}

func TestReaderSplitRandom(t *testing.T) {
	stream, want := splitStream()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		pieces := make([]int, 1+rng.IntN(8))
		for i := range pieces {
			pieces[i] = 1 + rng.IntN(len(stream))
		}
		// Through Write.
		w := NewReader(Config{})
		var got [][][]byte
		for rest := stream; len(rest) > 0; {
			k := min(pieces[rng.IntN(len(pieces))], len(rest))
			w.Write(rest[:k])
			rest = rest[k:]
			more, err := drain(w)
			if err != nil {
				t.Fatalf("pieces %v: %v", pieces, err)
			}
			got = append(got, more...)
		}
		checkCmds(t, "random writes", got, want)

		// Through ReadOnce.
		r := NewReader(Config{})
		got, err := readAll(t, r, &pieceReader{data: stream, pieces: pieces}, len(stream)+2)
		if err != nil {
			t.Fatalf("pieces %v: %v", pieces, err)
		}
		checkCmds(t, "random reads", got, want)
	}
}

// TestReaderRandomCommands sends many random commands, multibulk and inline,
// in random reads, like redcon's test.
func TestReaderRandomCommands(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var stream []byte
	var want [][][]byte
	for range 2000 {
		c := make([][]byte, 1+rng.IntN(6))
		for i := range c {
			c[i] = make([]byte, rng.IntN(40))
			for j := range c[i] {
				c[i][j] = byte(rng.IntN(256))
			}
		}
		if rng.IntN(3) == 0 {
			stream = appendInline(stream, c)
		} else {
			stream = appendMultibulk(stream, c)
		}
		want = append(want, c)
	}
	r := NewReader(Config{})
	got, err := readAll(t, r, &pieceReader{data: stream, pieces: []int{1, 7, 100, 3000, 65536, 13}}, len(stream)+2)
	if err != nil {
		t.Fatal(err)
	}
	checkCmds(t, "random commands", got, want)
}

// TestReaderArgsStayValid checks that a command survives reading the next
// ones (so a server can batch a pipeline) and that appending to a command or
// an argument does not overwrite its neighbours.
func TestReaderArgsStayValid(t *testing.T) {
	r := NewReader(Config{})
	r.Write([]byte("*2\r\n$3\r\nGET\r\n$1\r\na\r\nGET \"b\"\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n"))
	var cmds [][][]byte
	for {
		args, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		_ = append(args, []byte("extra"))
		_ = append(args[1], "XXXX"...)
		cmds = append(cmds, args)
	}
	checkCmds(t, "batched", cmds, [][][]byte{cmd("GET", "a"), cmd("GET", "b"), cmd("GET", "c")})
}

// TestReaderHugeDeclaredBulk checks that a declared length costs memory only
// as its bytes arrive.
func TestReaderHugeDeclaredBulk(t *testing.T) {
	const declared = 400 << 20
	r := NewReader(Config{})
	head := []byte("*2\r\n$3\r\nSET\r\n$419430400\r\n")
	src := &pieceReader{data: head, pieces: []int{len(head)}}
	if _, err := r.ReadOnce(src); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("Next: ok=%v err=%v", ok, err)
	}
	if r.missing() != declared+2 {
		t.Fatalf("missing() = %d", r.missing())
	}
	// Feed 3 MiB of it in 64 KiB reads: the buffer stays within twice what
	// arrived, plus one read.
	src = &pieceReader{data: bytes.Repeat([]byte{'v'}, 3<<20), pieces: []int{64 << 10}}
	received := len(head)
	for len(src.data) > 0 {
		n, err := r.ReadOnce(src)
		if err != nil {
			t.Fatal(err)
		}
		received += n
		if _, ok, err := r.Next(); ok || err != nil {
			t.Fatalf("Next: ok=%v err=%v", ok, err)
		}
		if cap(r.buf) > 2*received+minRead {
			t.Fatalf("buffer of %d bytes after %d received", cap(r.buf), received)
		}
	}
}

func TestReaderBigArgument(t *testing.T) {
	val := bytes.Repeat([]byte("0123456789"), 300_000)
	stream := appendMultibulk(nil, [][]byte{[]byte("SET"), []byte("k"), val})
	stream = append(stream, "PING\r\n"...)
	r := NewReader(Config{})
	got, err := readAll(t, r, &pieceReader{data: stream, pieces: []int{100_000, 1 << 20, 17}}, len(stream))
	if err != nil {
		t.Fatal(err)
	}
	checkCmds(t, "big", got, [][][]byte{{[]byte("SET"), []byte("k"), val}, cmd("PING")})
	// The drained Reader gives back its grown buffer on the next read.
	if _, err := r.ReadOnce(&pieceReader{data: []byte("PING\r\n"), pieces: []int{6}}); err != nil {
		t.Fatal(err)
	}
	if cap(r.buf) > maxRetain {
		t.Fatalf("idle reader keeps %d bytes", cap(r.buf))
	}
}

// steadyPipeline is 16 SET commands of a 100-byte value.
func steadyPipeline() []byte {
	var stream []byte
	for i := range 16 {
		stream = appendMultibulk(stream, cmd("SET", "key:"+strings.Repeat("k", i), strings.Repeat("v", 100)))
	}
	return stream
}

// rewinder serves the same bytes to every read, without allocating.
type rewinder struct {
	data []byte
	off  int
}

func (w *rewinder) Read(p []byte) (int, error) {
	n := copy(p, w.data[w.off:])
	w.off += n
	return n, nil
}

func TestReaderAllocs(t *testing.T) {
	stream := steadyPipeline()
	inline := []byte(strings.Repeat("SET key \"a\\x00 b\" 'c'\r\n", 16))
	for _, tt := range []struct {
		name  string
		input []byte
	}{{"multibulk", stream}, {"inline", inline}} {
		r := NewReader(Config{})
		count := func() int {
			n := 0
			for {
				_, ok, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					return n
				}
				n++
			}
		}
		src := &rewinder{data: tt.input}
		allocs := testing.AllocsPerRun(100, func() {
			r.Write(tt.input)
			if n := count(); n != 16 {
				t.Fatalf("%s: %d commands", tt.name, n)
			}
			src.off = 0
			for src.off < len(src.data) {
				if _, err := r.ReadOnce(src); err != nil {
					t.Fatal(err)
				}
				count()
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pipeline", tt.name, allocs)
		}
	}
}

func TestReaderReleasesManyArgs(t *testing.T) {
	many := make([][]byte, 70_000)
	for i := range many {
		many[i] = []byte{}
	}
	r := NewReader(Config{})
	r.Write(appendMultibulk(nil, many))
	got, err := drain(r)
	if err != nil || len(got) != 1 || len(got[0]) != len(many) {
		t.Fatalf("got %d commands, err %v", len(got), err)
	}
	r.Write([]byte("PING\r\n"))
	if cap(r.spans) > maxRetainArgs || cap(r.args) > maxRetainArgs {
		t.Fatalf("idle reader keeps room for %d spans and %d args", cap(r.spans), cap(r.args))
	}
	got, err = drain(r)
	if err != nil {
		t.Fatal(err)
	}
	checkCmds(t, "after", got, [][][]byte{cmd("PING")})
}
