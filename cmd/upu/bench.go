package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/protocol"
)

// The load generator speaks the protocol directly, like redis-benchmark does:
// each connection writes a pipeline of requests in one write and reads all
// the answers before the next, so the figures measure the server, not a
// client library.

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load a node over the native protocol; prints ops/s and p50/p99/p999 latency",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 50, Usage: "concurrent connections"},
			&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Value: 100000, Usage: "total requests per test"},
			&cli.IntFlag{Name: "size", Aliases: []string{"d"}, Value: 100, Usage: "value size in bytes"},
			&cli.IntFlag{Name: "pipeline", Aliases: []string{"P"}, Value: 1, Usage: "requests per round trip"},
			&cli.IntFlag{Name: "keys", Aliases: []string{"r"}, Value: 100000, Usage: "key space: keys are key:0 .. key:N-1"},
			&cli.StringSliceFlag{Name: "tests", Aliases: []string{"t"}, Value: cli.NewStringSlice("set", "get"), Usage: "any of set, get, incr"},
			&cli.DurationFlag{Name: "max-time", Value: 5 * time.Minute, Usage: "stop a test after this long even if requests remain"},
		},
		Action: func(c *cli.Context) error {
			b := bench{
				addr:     c.StringSlice("nodes")[0],
				token:    c.String("token"),
				clients:  c.Int("clients"),
				requests: c.Int("requests"),
				size:     c.Int("size"),
				pipeline: c.Int("pipeline"),
				keys:     c.Int("keys"),
			}
			if b.clients < 1 || b.requests < 1 || b.pipeline < 1 || b.keys < 1 || b.size < 0 {
				return errors.New("clients, requests, pipeline and keys must be positive")
			}
			for _, t := range c.StringSlice("tests") {
				op, ok := map[string]protocol.Opcode{"set": protocol.OpSet, "get": protocol.OpGet, "incr": protocol.OpIncr}[t]
				if !ok {
					return fmt.Errorf("unknown test %q: want set, get or incr", t)
				}
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("max-time"))
				r, err := b.run(ctx, op)
				cancel()
				if err != nil {
					return fmt.Errorf("%s: %w", t, err)
				}
				fmt.Fprintf(c.App.Writer, "%-4s clients=%d pipeline=%d size=%d requests=%d ops/s=%.0f p50=%s p99=%s p999=%s errors=%d\n",
					t, b.clients, b.pipeline, b.size, r.done, r.opsPerSec(), r.pct(50), r.pct(99), r.pct(99.9), r.errors)
			}
			return nil
		},
	}
}

type bench struct {
	addr, token                             string
	clients, requests, size, pipeline, keys int
}

type benchResult struct {
	done, errors int64
	elapsed      time.Duration
	lat          []time.Duration // one per request: its pipeline's round trip
}

func (r *benchResult) opsPerSec() float64 { return float64(r.done) / r.elapsed.Seconds() }

func (r *benchResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i].Round(time.Microsecond)
}

func (b *bench) run(ctx context.Context, op protocol.Opcode) (*benchResult, error) {
	var (
		left  atomic.Int64
		errs  atomic.Int64
		mu    sync.Mutex
		lats  []time.Duration
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	left.Store(int64(b.requests))
	start := time.Now()
	for i := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := b.client(ctx, i, op, &left, &errs)
			if err != nil {
				once.Do(func() { first = err })
			}
			mu.Lock()
			lats = append(lats, l...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil && len(lats) == 0 {
		return nil, first
	}
	slices.Sort(lats)
	return &benchResult{done: int64(len(lats)), errors: errs.Load(), elapsed: time.Since(start), lat: lats}, nil
}

// client runs one connection until the shared request budget is spent.
func (b *bench) client(ctx context.Context, id int, op protocol.Opcode, left, errs *atomic.Int64) ([]time.Duration, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	dec := protocol.NewDecoder(0)
	var out []byte
	out, _ = protocol.AppendFrame(out, protocol.Header{Opcode: protocol.OpHello}, &protocol.Hello{Version: protocol.Version, Token: b.token, Client: "upu-bench"})
	if _, err := nc.Write(out); err != nil {
		return nil, err
	}
	if _, err := readFrames(nc, dec, 1, nil); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	value := make([]byte, b.size)
	for i := range value {
		value[i] = 'a' + byte(rng.IntN(26))
	}
	var (
		lats  []time.Duration
		reqID uint64
		key   []byte
	)
	for {
		n := min(int64(b.pipeline), left.Add(-int64(b.pipeline))+int64(b.pipeline))
		if n <= 0 {
			return lats, nil
		}
		out = out[:0]
		for range n {
			reqID++
			key = strconv.AppendInt(append(key[:0], "key:"...), int64(rng.IntN(b.keys)), 10)
			h := protocol.Header{Opcode: op, ReqID: reqID}
			switch op {
			case protocol.OpSet:
				out, _ = protocol.AppendFrame(out, h, &protocol.SetRequest{Key: key, Value: value})
			case protocol.OpGet:
				out, _ = protocol.AppendFrame(out, h, &protocol.GetRequest{Key: key})
			case protocol.OpIncr:
				out, _ = protocol.AppendFrame(out, h, &protocol.IncrRequest{Key: key, Delta: 1})
			}
		}
		t0 := time.Now()
		if _, err := nc.Write(out); err != nil {
			return lats, err
		}
		bad, err := readFrames(nc, dec, int(n), errs)
		if err != nil {
			return lats, err
		}
		rtt := time.Since(t0)
		for range int(n) - bad {
			lats = append(lats, rtt)
		}
	}
}

// readFrames reads until n responses arrived, counting error frames other
// than not-found (a get of a key never set is a normal answer).
func readFrames(r io.Reader, dec *protocol.Decoder, n int, errs *atomic.Int64) (bad int, err error) {
	for got := 0; got < n; {
		f, ok, err := dec.Next()
		if err != nil {
			return bad, err
		}
		if !ok {
			if _, err := dec.ReadOnce(r); err != nil {
				return bad, err
			}
			continue
		}
		got++
		if f.Opcode == protocol.OpError {
			var e protocol.Error
			if protocol.DecodeBody(f.Body, &e) == nil && e.Code == protocol.CodeNotFound {
				continue
			}
			bad++
			if errs != nil {
				errs.Add(1)
			}
		}
	}
	return bad, nil
}
