package protocol

import (
	"bytes"
	"testing"
)

func benchSet() *SetRequest {
	return &SetRequest{
		Key:   []byte("user:12345:profile"),
		Value: bytes.Repeat([]byte{'v'}, 100),
		TTLMS: 30_000,
		ReqID: "0194c3a1b2c3d4e5f6a7b8c9",
	}
}

func BenchmarkAppendFrameSet(b *testing.B) {
	msg := benchSet()
	h := Header{Opcode: OpSet, ReqID: 1}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendFrame(buf[:0], h, msg)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecoderNext(b *testing.B) {
	const pipeline = 16
	var stream []byte
	for i := range pipeline {
		var err error
		stream, err = AppendFrame(stream, Header{Opcode: OpSet, ReqID: uint64(i + 1)}, benchSet())
		if err != nil {
			b.Fatal(err)
		}
	}
	d := NewDecoder(0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		d.Write(stream)
		for range pipeline {
			if _, ok, err := d.Next(); !ok || err != nil {
				b.Fatalf("Next: ok=%v err=%v", ok, err)
			}
		}
	}
}

func BenchmarkDecodeBodySet(b *testing.B) {
	frame, err := AppendFrame(nil, Header{Opcode: OpSet, ReqID: 1}, benchSet())
	if err != nil {
		b.Fatal(err)
	}
	body := frame[HeaderSize:]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var m SetRequest
		if err := DecodeBody(body, &m); err != nil {
			b.Fatal(err)
		}
	}
}
