package client

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/upu/upu/protocol"
)

// cannedServer answers every request with a reply body encoded in advance,
// so that a benchmark measures the client rather than a fake node.
func cannedServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	encode := func(msg any) []byte {
		f, err := protocol.AppendFrame(nil, protocol.Header{}, msg)
		if err != nil {
			b.Fatal(err)
		}
		return f[protocol.HeaderSize:]
	}
	bodies := map[protocol.Opcode][]byte{
		protocol.OpHello: encode(&protocol.Hello{Version: protocol.Version, HeartbeatMS: 5000, IdleTimeoutMS: 30000}),
		protocol.OpPing:  nil,
		protocol.OpSet:   encode(&protocol.WriteResponse{Context: []byte("ctx")}),
		protocol.OpGet:   encode(&protocol.GetResponse{Value: make([]byte, 100)}),
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			go func() {
				dec := protocol.NewDecoder(0)
				var out []byte
				for {
					_, err := dec.ReadOnce(nc)
					for {
						f, ok, _ := dec.Next()
						if !ok {
							break
						}
						body := bodies[f.Opcode]
						out = protocol.AppendHeader(out, protocol.Header{Opcode: f.Opcode, Flags: protocol.FlagResponse, ReqID: f.ReqID, Len: uint32(len(body))})
						out = append(out, body...)
					}
					if len(out) > 0 {
						if _, werr := nc.Write(out); werr != nil {
							return
						}
						out = out[:0]
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return ln.Addr().String()
}

// BenchmarkClientSetParallel measures 100-byte sets from 8*GOMAXPROCS
// goroutines, pipelined on two connections. The server shares the CPU.
func BenchmarkClientSetParallel(b *testing.B) {
	c := newTestClient(b, Config{Nodes: []string{cannedServer(b)}, ConnsPerNode: 2})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	var worker atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Appendf(nil, "bench/%d", worker.Add(1))
		for pb.Next() {
			if _, err := c.Set(ctx, key, value); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkClientGet measures one caller's round trips.
func BenchmarkClientGet(b *testing.B) {
	c := newTestClient(b, Config{Nodes: []string{cannedServer(b)}})
	ctx := context.Background()
	key := []byte("k")
	if err := c.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
