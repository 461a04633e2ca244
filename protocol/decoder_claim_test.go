package protocol

import (
	"bytes"
	"testing"
)

// TestDecoderClaimAloneCostsNoMemory: a header claiming the largest body,
// followed by a trickle of it, must not make the decoder hold the claimed
// size (found by integration.TestAbuse: a thousand such connections took
// the node past a gigabyte). The buffer grows with what arrives.
func TestDecoderClaimAloneCostsNoMemory(t *testing.T) {
	h := Header{Opcode: OpSet, ReqID: 1, Len: DefaultMaxBody}
	stream := append(AppendHeader(nil, h), make([]byte, 1024)...)
	d := NewDecoder(0)
	r := bytes.NewReader(stream)
	for range 3 {
		d.ReadOnce(r)
		if _, ok, err := d.Next(); ok || err != nil {
			t.Fatalf("Next = %v, %v on an incomplete frame", ok, err)
		}
	}
	if cap(d.buf) > minRead {
		t.Fatalf("decoder holds %d bytes after a %d-byte claim and %d bytes of it; want at most %d",
			cap(d.buf), h.Len, len(stream), minRead)
	}
}
