package appendbuf

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestWriterAppends(t *testing.T) {
	w := Writer{B: []byte("x")}
	w.Write([]byte("ab"))
	w.WriteByte('c')
	w.WriteString("de")
	if string(w.B) != "xabcde" {
		t.Fatalf("B = %q", w.B)
	}
}

// The encoder must use the writer as is: an adapter would allocate per byte.
func TestEncoderDoesNotAllocatePerByte(t *testing.T) {
	enc := msgpack.NewEncoder(nil)
	w := Writer{B: make([]byte, 0, 1024)}
	allocs := testing.AllocsPerRun(100, func() {
		w.B = w.B[:0]
		enc.Reset(&w)
		enc.EncodeArrayLen(3)
		enc.EncodeUint(1 << 40)
		enc.EncodeString("hello")
		enc.EncodeBool(true)
	})
	if allocs != 0 {
		t.Fatalf("%.0f allocations per encode", allocs)
	}
}
