package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/client"
)

// The load generator goes through the Go client, so that its figures are
// what an application gets: each of the clients is a client.Client on one
// connection, and a pipeline of P is P goroutines calling it at once, which
// the client's writer sends in one write (redis-benchmark -P sends P
// requests per write the same way).

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load a node over the native protocol through the Go client; prints ops/s and p50/p99/p999 latency",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 50, Usage: "concurrent connections"},
			&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Value: 100000, Usage: "total requests per test"},
			&cli.IntFlag{Name: "size", Aliases: []string{"d"}, Value: 100, Usage: "value size in bytes"},
			&cli.IntFlag{Name: "pipeline", Aliases: []string{"P"}, Value: 1, Usage: "requests in flight per connection"},
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
				op := benchOpFor(t)
				if op == nil {
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

// benchOp is one request of a test; a missing key is a normal answer.
type benchOp func(ctx context.Context, c *client.Client, key, value []byte) error

// benchOpFor returns the request of the test named; nil for no such test.
func benchOpFor(test string) benchOp {
	switch test {
	case "set":
		return func(ctx context.Context, c *client.Client, key, value []byte) error {
			_, err := c.Set(ctx, key, value)
			return err
		}
	case "get":
		return func(ctx context.Context, c *client.Client, key, _ []byte) error {
			if _, err := c.Get(ctx, key); !errors.Is(err, client.ErrNotFound) {
				return err
			}
			return nil
		}
	case "incr":
		return func(ctx context.Context, c *client.Client, key, _ []byte) error {
			_, err := c.Incr(ctx, key, 1)
			return err
		}
	}
	return nil
}

type bench struct {
	addr, token                             string
	clients, requests, size, pipeline, keys int
}

type benchResult struct {
	done, errors int64
	elapsed      time.Duration
	lat          []time.Duration // one per answered request
}

func (r *benchResult) opsPerSec() float64 { return float64(r.done) / r.elapsed.Seconds() }

func (r *benchResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i].Round(time.Microsecond)
}

// run connects every client, then times the requests alone.
func (b *bench) run(ctx context.Context, op benchOp) (*benchResult, error) {
	clients := make([]*client.Client, 0, b.clients)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for range b.clients {
		c, err := client.Dial(ctx, client.Config{
			Nodes:        []string{b.addr},
			Token:        b.token,
			Name:         "upu-bench",
			ConnsPerNode: 1,
			MaxInFlight:  b.pipeline,
		})
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	var (
		left  atomic.Int64
		errs  atomic.Int64
		mu    sync.Mutex
		lats  = make([]time.Duration, 0, b.requests)
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	left.Store(int64(b.requests))
	start := time.Now()
	for i, c := range clients {
		for j := range b.pipeline {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := b.caller(ctx, uint64(i*b.pipeline+j), c, op, &left, &errs)
				if err != nil {
					once.Do(func() { first = err })
				}
				mu.Lock()
				lats = append(lats, l...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil && len(lats) == 0 {
		return nil, first
	}
	slices.Sort(lats)
	return &benchResult{done: int64(len(lats)), errors: errs.Load(), elapsed: elapsed, lat: lats}, nil
}

// caller makes one request at a time until the shared budget is spent or
// ctx ends, and returns the first error it met.
func (b *bench) caller(ctx context.Context, seed uint64, c *client.Client, op benchOp, left, errs *atomic.Int64) ([]time.Duration, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	value := make([]byte, b.size)
	for i := range value {
		value[i] = 'a' + byte(rng.IntN(26))
	}
	var (
		lats  []time.Duration
		key   []byte
		first error
	)
	for left.Add(-1) >= 0 && ctx.Err() == nil {
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(rng.IntN(b.keys)), 10)
		t0 := time.Now()
		if err := op(ctx, c, key, value); err != nil {
			errs.Add(1)
			if first == nil {
				first = err
			}
			continue
		}
		lats = append(lats, time.Since(t0))
	}
	return lats, first
}
