package resp

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkReaderPipeline parses a pipeline of 16 SET commands of a 100-byte
// value, as redis-benchmark -P 16 sends them.
func BenchmarkReaderPipeline(b *testing.B) {
	stream := steadyPipeline()
	r := NewReader(Config{})
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r.Write(stream)
		for range 16 {
			if _, ok, err := r.Next(); !ok || err != nil {
				b.Fatalf("Next: ok=%v err=%v", ok, err)
			}
		}
	}
}

// BenchmarkReaderPipelineInline is the same pipeline sent inline.
func BenchmarkReaderPipelineInline(b *testing.B) {
	line := append([]byte("SET key:0000 "), bytes.Repeat([]byte{'v'}, 100)...)
	stream := bytes.Repeat(append(line, '\r', '\n'), 16)
	r := NewReader(Config{})
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r.Write(stream)
		for range 16 {
			if _, ok, err := r.Next(); !ok || err != nil {
				b.Fatalf("Next: ok=%v err=%v", ok, err)
			}
		}
	}
}

// BenchmarkWriterReplies writes 16 replies and flushes them in one write:
// +OK for a pipeline of SETs, 100-byte bulks for one of GETs.
func BenchmarkWriterReplies(b *testing.B) {
	val := bytes.Repeat([]byte{'v'}, 100)
	for _, bm := range []struct {
		name  string
		reply func(w *Writer)
	}{
		{"OK", func(w *Writer) { w.AppendOK() }},
		{"Bulk100", func(w *Writer) { w.AppendBulk(val) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var w Writer
			b.ReportAllocs()
			for b.Loop() {
				for range 16 {
					bm.reply(&w)
				}
				if err := w.Flush(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
