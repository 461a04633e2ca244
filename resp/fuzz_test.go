package resp

import (
	"errors"
	"testing"
)

// fuzzConfig has small limits, so that the fuzzer reaches them with short
// inputs.
var fuzzConfig = Config{MaxBulkLen: 1 << 12, MaxArgs: 64, MaxInlineLen: 256}

var protocolErrors = []error{
	ErrTooBigInline, ErrUnbalancedQuotes, ErrTooBigMultibulkCount, ErrInvalidMultibulkLength,
	ErrTooBigBulkCount, ErrInvalidBulkLength, ErrExpectedDollar,
}

func FuzzReader(f *testing.F) {
	stream, _ := splitStream()
	f.Add(stream, uint16(0))
	f.Add(stream, uint16(len(stream)/2))
	f.Add(stream, uint16(5))
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
		"*1\r\n$4096\r\n",
		"*1\r\n$4097\r\n",
		"*65\r\n",
		"*-1\r\n*0\r\n\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
		"SET k \"a\\x41\\n\" 'b\\'c'\r\n",
		"set \"\"\"test-key\"\"\" test-value\r\n",
		"*1\r\n$3\r\nfooXY",
		"*1\rX",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}

	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		at := int(split) % (len(data) + 1)

		// In one write.
		whole := NewReader(fuzzConfig)
		whole.Write(data)
		want, wantErr := drain(whole)
		checkFuzzErr(t, whole, wantErr, len(data))

		// In two writes: the same commands, the same end.
		two := NewReader(fuzzConfig)
		two.Write(data[:at])
		got, err := drain(two)
		if err == nil {
			two.Write(data[at:])
			var more [][][]byte
			more, err = drain(two)
			got = append(got, more...)
		}
		checkCmds(t, "two writes", got, want)
		checkSameErr(t, "two writes", err, wantErr)
		checkFuzzErr(t, two, err, len(data))

		// Read in pieces of the fuzzed size.
		r := NewReader(fuzzConfig)
		got, err = readAll(t, r, &pieceReader{data: data, pieces: []int{max(at, 1)}}, len(data)+2)
		checkCmds(t, "reads", got, want)
		checkSameErr(t, "reads", err, wantErr)
		checkFuzzErr(t, r, err, len(data))

		// What came out re-encodes as multibulk and parses back the same.
		var again []byte
		for _, c := range want {
			if len(c) == 0 {
				t.Fatal("a command of no arguments")
			}
			again = appendMultibulk(again, c)
		}
		re := NewReader(Config{})
		re.Write(again)
		back, err := drain(re)
		if err != nil || re.Buffered() != 0 {
			t.Fatalf("re-encoded commands: err=%v, %d bytes left", err, re.Buffered())
		}
		checkCmds(t, "re-encoded", back, want)
	})
}

func checkSameErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
		t.Fatalf("%s: error %v, in one write %v", what, got, want)
	}
}

// checkFuzzErr checks that err is a protocol error that sticks, and that r
// holds no more than about twice its input.
func checkFuzzErr(t *testing.T, r *Reader, err error, input int) {
	t.Helper()
	if cap(r.buf) > 2*input+minRead {
		t.Fatalf("reader holds %d bytes for %d bytes of input", cap(r.buf), input)
	}
	if err == nil {
		return
	}
	known := false
	for _, e := range protocolErrors {
		known = known || errors.Is(err, e)
	}
	if !known {
		t.Fatalf("unknown error %v", err)
	}
	checkSticky(t, r, err)
}
