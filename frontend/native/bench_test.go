package native

import (
	"bytes"
	"strconv"
	"sync"
	"testing"

	"github.com/upu/upu/protocol"
)

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
