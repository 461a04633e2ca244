package redis

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/store"
)

// unlimited lets a benchmark's Process answer its whole pipeline.
var unlimited = connloop.Budget{Requests: math.MaxInt, ReplyBytes: math.MaxInt}

// BenchmarkRespPipeline drives the Redis listener with 8 connections
// sending pipelines of 16 commands of a 100-byte value, as redis-benchmark
// -P 16 does, so that the listener's own cost per command shows in
// -benchmem and -cpuprofile.
func BenchmarkRespPipeline(b *testing.B) {
	for _, op := range []string{"SET", "GET", "INCR"} {
		b.Run(op, func(b *testing.B) {
			n := startServer(b, options{}, nil)
			const conns, depth = 8, 16
			value := bytes.Repeat([]byte("v"), 100)
			command := func(dst []byte, i int) []byte {
				key := "key:" + strconv.Itoa(i%1000)
				switch op {
				case "SET":
					dst = append(dst, "*3\r\n$3\r\nSET\r\n$"+strconv.Itoa(len(key))+"\r\n"+key+"\r\n$100\r\n"...)
					dst = append(dst, value...)
					return append(dst, "\r\n"...)
				case "GET":
					return append(dst, "*2\r\n$3\r\nGET\r\n$"+strconv.Itoa(len(key))+"\r\n"+key+"\r\n"...)
				}
				return append(dst, "*2\r\n$4\r\nINCR\r\n$"+strconv.Itoa(len(key))+"\r\n"+key+"\r\n"...)
			}
			if op == "GET" {
				seed := dialResp(b, n)
				for i := range 1000 {
					seed.do("SET", "key:"+strconv.Itoa(i), string(value))
				}
			}
			per := b.N/(conns*depth) + 1
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range conns {
				nc, err := net.Dial("tcp", n.RespAddr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					br := bufio.NewReaderSize(nc, 64<<10)
					var buf []byte
					for i := range per {
						buf = buf[:0]
						for j := range depth {
							buf = command(buf, c*per+i*depth+j)
						}
						if _, err := nc.Write(buf); err != nil {
							return
						}
						for range depth {
							if err := skipReply(br); err != nil {
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// skipReply reads one simple reply or bulk string.
func skipReply(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil || line[0] != '$' {
		return err
	}
	n, _ := strconv.Atoi(string(line[1 : len(line)-2]))
	if n < 0 {
		return nil
	}
	_, err = io.CopyN(io.Discard, br, int64(n+2))
	return err
}

// nullStore answers every read with one value and commits nothing, so
// that a benchmark sees the front end's and kv's costs alone.
type nullStore struct{ value []byte }

func (s nullStore) Read([]byte) (crdt.View, crdt.Record, error) {
	return crdt.View{Found: true, Value: s.value}, crdt.Record{}, nil
}
func (nullStore) ApplyBatch(_ context.Context, _ []store.Write, out []store.Result) {}
func (nullStore) Scan(context.Context, []byte, int, func([]byte, crdt.Record) bool) error {
	return nil
}

// BenchmarkConnProcess measures the server's own work per command, without
// the network, a client or a store: a pipeline of 16 commands handed to
// one connection's Process over a store that does nothing, its answers
// flushed to nowhere. allocs/op is the front end's and kv's garbage per
// command.
func BenchmarkConnProcess(b *testing.B) {
	for _, op := range []string{"SET", "GET"} {
		b.Run(op, func(b *testing.B) {
			s, _ := newServer(b, options{}, nil)
			var err error
			if s.kv, err = kv.New(kv.Config{}, kv.Deps{Store: nullStore{value: []byte("val")}, Registerer: prometheus.NewRegistry()}); err != nil {
				b.Fatal(err)
			}
			c := newConn(s, s.logger.Component("resp"), pipeAddr{}, 1)
			const depth = 16
			var pipeline []byte
			for i := range depth {
				key := "key:" + strconv.Itoa(i)
				if op == "SET" || i == 0 {
					pipeline = append(pipeline, "*3\r\n$3\r\nSET\r\n$"+strconv.Itoa(len(key))+"\r\n"+key+"\r\n$3\r\nval\r\n"...)
				}
			}
			if op == "GET" {
				c.ReadOnce(bytes.NewReader(pipeline))
				c.Process(unlimited)
				c.Flush(io.Discard)
				pipeline = pipeline[:0]
				for i := range depth {
					key := "key:" + strconv.Itoa(i)
					pipeline = append(pipeline, "*2\r\n$3\r\nGET\r\n$"+strconv.Itoa(len(key))+"\r\n"+key+"\r\n"...)
				}
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
