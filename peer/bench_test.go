package peer

import (
	"context"
	"fmt"
	"net"
	"testing"
)

// BenchmarkCall: one request and its answer over a link (a stream each),
// one message Sent and taken (on the link's message stream), beside a
// request and its answer on a bare TCP connection (one frame each way, one
// connection per sender, as the replication transport before links did),
// to show what yamux adds per message.
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{256, 64 << 10} {
		req := make([]byte, size)
		b.Run(fmt.Sprintf("link/%dB", size), func(b *testing.B) {
			a, srv := benchPools(b)
			ctx, to := context.Background(), srv.node()
			if _, err := a.pool.Call(ctx, to, kindEcho, req); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := a.pool.Call(ctx, to, kindEcho, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("link-send/%dB", size), func(b *testing.B) {
			a, srv := benchPools(b)
			ctx, to := context.Background(), srv.node()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := a.pool.Send(ctx, to, KindReplicate, req); err != nil {
					b.Fatal(err)
				}
				<-srv.taken // delivered: the time is a message's, not a write's
			}
		})
		b.Run(fmt.Sprintf("tcp/%dB", size), func(b *testing.B) {
			nc := benchEchoConn(b)
			buf := make([]byte, 0, requestHeaderSize+size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf = appendRequest(buf[:0], kindEcho, 0, req)
				if _, err := nc.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, _, err := readResponse(nc, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchNode is a node a benchmark calls: its echo handler answers with an
// empty body, its KindReplicate handler signals taken.
type benchNode struct {
	*testNode
	taken chan struct{}
}

// benchPools returns a node and one that it calls.
func benchPools(b *testing.B) (a *testNode, srv benchNode) {
	b.Helper()
	srv = benchNode{startTestNode(b, "srv", "", Config{}, Deps{}), make(chan struct{}, 1)}
	srv.pool.Register(kindEcho, func(context.Context, string, []byte) ([]byte, error) { return nil, nil })
	srv.pool.Register(KindReplicate, func(context.Context, string, []byte) ([]byte, error) {
		srv.taken <- struct{}{}
		return nil, nil
	})
	return startTestNode(b, "a", "", Config{}, Deps{}), srv
}

// benchEchoConn returns a TCP connection whose far end answers each
// request frame with an empty response.
func benchEchoConn(b *testing.B) net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		out := appendResponse(nil, statusOK, nil)
		for {
			if _, err := readRequest(nc, new([requestHeaderSize]byte), 1<<20); err != nil {
				return
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		nc.Close()
		ln.Close()
		<-done
	})
	return nc
}
