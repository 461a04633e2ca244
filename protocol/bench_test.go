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

func benchGet() *GetRequest {
	return &GetRequest{Key: []byte("user:12345:profile")}
}

func benchGetResponse() *GetResponse {
	return &GetResponse{
		Value:    bytes.Repeat([]byte{'v'}, 100),
		ExpiryMS: 1_700_000_030_000,
		Context:  bytes.Repeat([]byte{0x5a}, 40),
	}
}

type benchMessage struct {
	name string
	op   Opcode
	msg  any
	// zeroed returns a message to decode into and a func that zeroes it
	// again, as a caller decoding into a fresh variable would have it.
	zeroed func() (any, func())
}

// benchMessages are the hot messages the encode and decode benchmarks run.
func benchMessages() []benchMessage {
	return []benchMessage{
		{"Set", OpSet, benchSet(), func() (any, func()) {
			m := new(SetRequest)
			return m, func() { *m = SetRequest{} }
		}},
		{"Get", OpGet, benchGet(), func() (any, func()) {
			m := new(GetRequest)
			return m, func() { *m = GetRequest{} }
		}},
		{"GetResponse", OpGet, benchGetResponse(), func() (any, func()) {
			m := new(GetResponse)
			return m, func() { *m = GetResponse{} }
		}},
	}
}

// BenchmarkAppendFrame compares the hand-written encoders with the msgpack
// library that AppendFrame used before, and uses for other messages.
func BenchmarkAppendFrame(b *testing.B) {
	for _, m := range benchMessages() {
		h := Header{Opcode: m.op, ReqID: 1}
		for _, enc := range []struct {
			name   string
			encode func([]byte) ([]byte, error)
		}{
			{"hand", func(buf []byte) ([]byte, error) { return AppendFrame(buf, h, m.msg) }},
			{"library", func(buf []byte) ([]byte, error) { return appendBodyLibrary(AppendHeader(buf, h), m.msg) }},
		} {
			b.Run(m.name+"/"+enc.name, func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				b.ReportAllocs()
				for b.Loop() {
					var err error
					buf, err = enc.encode(buf[:0])
					if err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(len(buf)))
			})
		}
	}
}

// BenchmarkDecodeBody compares DecodeBody and DecodeBodyNoCopy with the
// msgpack library that DecodeBody used before, and uses for other
// messages, each decoding into a zero message.
func BenchmarkDecodeBody(b *testing.B) {
	for _, m := range benchMessages() {
		frame, err := AppendFrame(nil, Header{Opcode: m.op, ReqID: 1}, m.msg)
		if err != nil {
			b.Fatal(err)
		}
		body := frame[HeaderSize:]
		for _, dec := range []struct {
			name   string
			decode func([]byte, any) error
		}{{"copy", DecodeBody}, {"nocopy", DecodeBodyNoCopy}, {"library", libraryDecode}} {
			b.Run(m.name+"/"+dec.name, func(b *testing.B) {
				msg, reset := m.zeroed()
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					reset()
					if err := dec.decode(body, msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
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
