package native

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// unlimited lets a benchmark's Process answer its whole pipeline.
var unlimited = connloop.Budget{Requests: math.MaxInt, ReplyBytes: math.MaxInt}

// benchPipelines drives a node with 8 connections sending pipelines of depth
// 16, the way `upu bench -P 16` does, so the server's own cost per request
// shows up in -cpuprofile.
func benchPipelines(b *testing.B, op protocol.Opcode) {
	n := startNode(b, options{DataDir: b.TempDir()})
	const conns, depth = 8, 16
	value := bytes.Repeat([]byte("v"), 100)
	seed := dialB(b, n)
	for i := range 1000 {
		seed.send(protocol.OpSet, &protocol.SetRequest{Key: []byte("key:" + strconv.Itoa(i)), Value: value})
		seed.recv()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/(conns*depth) + 1
	for c := range conns {
		w := dialB(b, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range per {
				buf = buf[:0]
				for j := range depth {
					key := []byte("key:" + strconv.Itoa((c*per+i*depth+j)%1000))
					var msg any = &protocol.GetRequest{Key: key}
					if op == protocol.OpSet {
						msg = &protocol.SetRequest{Key: key, Value: value}
					}
					f, _ := w.frame(op, msg)
					buf = append(buf, f...)
				}
				w.nc.Write(buf)
				for range depth {
					if _, err := w.next(); err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func dialB(b *testing.B, n *testServer) *wire {
	t := &testing.T{}
	w := dial(t, n)
	w.hello(protocol.Hello{})
	b.Cleanup(func() { w.nc.Close() })
	return w
}

func BenchmarkServerGetP16(b *testing.B) { benchPipelines(b, protocol.OpGet) }
func BenchmarkServerSetP16(b *testing.B) { benchPipelines(b, protocol.OpSet) }

// nullStore answers every read with one value and commits nothing, so
// that a benchmark sees the server's and kv's costs alone.
type nullStore struct{ value []byte }

func (s nullStore) Read([]byte) (crdt.View, crdt.Record, error) {
	return crdt.View{Found: true, Value: s.value}, crdt.Record{}, nil
}
func (nullStore) ApplyBatch(_ context.Context, _ []store.Write, out []store.Result) {}
func (nullStore) Scan(context.Context, []byte, int, func([]byte, crdt.Record) bool) error {
	return nil
}

// BenchmarkConnProcess measures the server's own work per request, without
// the network, a client or a store: a pipeline of 16 requests handed to
// one connection's Process over a store that does nothing, its answers
// flushed to nowhere. allocs/op is the server's and kv's garbage per
// request.
func BenchmarkConnProcess(b *testing.B) {
	for _, op := range []protocol.Opcode{protocol.OpSet, protocol.OpGet} {
		b.Run(op.String(), func(b *testing.B) {
			svc, err := kv.New(kv.Config{}, kv.Deps{Store: nullStore{value: []byte("val")}})
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(Config{}, Deps{KV: svc, Admin: fakeAdmin{}, Logger: logging.Discard()})
			if err != nil {
				b.Fatal(err)
			}
			end, other := net.Pipe() // only for its addresses: no byte goes through it
			b.Cleanup(func() { end.Close(); other.Close() })
			c := newConn(s, s.logger.Component("server"), end)
			hello, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello, ReqID: 1}, &protocol.Hello{Version: protocol.Version})
			c.ReadOnce(bytes.NewReader(hello))
			c.Process(unlimited)
			c.Flush(io.Discard)
			const depth = 16
			var pipeline []byte
			for i := range depth {
				key := []byte("key:" + strconv.Itoa(i))
				var msg any = &protocol.GetRequest{Key: key}
				if op == protocol.OpSet {
					msg = &protocol.SetRequest{Key: key, Value: []byte("val")}
				}
				pipeline, _ = protocol.AppendFrame(pipeline, protocol.Header{Opcode: op, ReqID: uint64(i + 2)}, msg)
			}
			r := bytes.NewReader(pipeline)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				r.Reset(pipeline)
				c.ReadOnce(r)
				c.Process(unlimited)
				c.Flush(io.Discard)
			}
		})
	}
}
