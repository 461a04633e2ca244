package redis

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

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
