package resp

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// appendMultibulk encodes a command as a client would send it.
func appendMultibulk(dst []byte, args [][]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// appendInline encodes a command as an inline line, quoting every argument
// and escaping what needs it (in several styles, chosen by the argument).
func appendInline(dst []byte, args [][]byte) []byte {
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, '"')
		for _, c := range a {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c < ' ' || c >= 0x7f:
				dst = fmt.Appendf(dst, "\\x%02x", c)
			default:
				dst = append(dst, c)
			}
		}
		dst = append(dst, '"')
	}
	return append(dst, '\r', '\n')
}

// cmd builds a command from strings.
func cmd(args ...string) [][]byte {
	c := make([][]byte, len(args))
	for i, a := range args {
		c[i] = []byte(a)
	}
	return c
}

// drain returns copies of the commands r holds, and the error that stopped
// it, if any.
func drain(r *Reader) ([][][]byte, error) {
	var cmds [][][]byte
	for {
		args, ok, err := r.Next()
		if err != nil || !ok {
			return cmds, err
		}
		c := make([][]byte, len(args))
		for i, a := range args {
			c[i] = append([]byte{}, a...)
		}
		cmds = append(cmds, c)
	}
}

func show(cmds [][][]byte) string {
	var s strings.Builder
	for _, c := range cmds {
		s.WriteByte('[')
		for i, a := range c {
			if i > 0 {
				s.WriteByte(' ')
			}
			s.WriteString(strconv.Quote(string(a)))
		}
		s.WriteString("]\n")
	}
	return s.String()
}

func checkCmds(t *testing.T, what string, got, want [][][]byte) {
	t.Helper()
	if show(got) != show(want) {
		t.Fatalf("%s: got %d commands\n%s\nwant %d\n%s", what, len(got), show(got), len(want), show(want))
	}
}

// pieceReader returns data in reads of the given sizes, cycling through
// them, then io.EOF.
type pieceReader struct {
	data   []byte
	pieces []int
	n      int
}

func (p *pieceReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	k := min(p.pieces[p.n%len(p.pieces)], len(b), len(p.data))
	p.n++
	copy(b, p.data[:k])
	p.data = p.data[k:]
	return k, nil
}

// readAll feeds src to r with ReadOnce until EOF or an error, draining r
// after each read.
func readAll(t *testing.T, r *Reader, src io.Reader, maxReads int) ([][][]byte, error) {
	t.Helper()
	var cmds [][][]byte
	for range maxReads {
		_, readErr := r.ReadOnce(src)
		more, err := drain(r)
		cmds = append(cmds, more...)
		if err != nil {
			return cmds, err
		}
		if readErr != nil {
			return cmds, nil
		}
	}
	t.Fatalf("no EOF after %d reads", maxReads)
	return nil, nil
}
