package client

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// deadAddr returns an address on which nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestFailover(t *testing.T) {
	a, b := newFake(t), newFake(t)
	c := newTestClient(t, Config{Nodes: []string{a.addr, b.addr}, ConnsPerNode: 2})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	const workers, calls = 4, 300
	var wg sync.WaitGroup
	var done atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				var err error
				if i%2 == 0 {
					err = c.Ping(ctx)
				} else if _, err = c.Get(ctx, []byte("k")); errors.Is(err, ErrNotFound) {
					err = nil
				}
				if err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	eventually(t, 10*time.Second, "calls run on the first node", func() bool { return done.Load() >= workers*calls/4 })
	a.stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed during failover: %v", err)
	}
	if b.requests.Load() == 0 {
		t.Fatal("the second node served nothing")
	}
	// Writes now go to the second node, which keeps them.
	if _, err := c.Set(ctx, []byte("after"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, []byte("after")); err != nil || string(it.Value) != "v" {
		t.Errorf("Get after failover = %q, %v", it.Value, err)
	}
	t.Logf("stats: %+v; first node served %d requests, second %d", c.Stats(), a.requests.Load(), b.requests.Load())
}

func TestAllDownFailsFastWithoutSpinning(t *testing.T) {
	dead := []string{deadAddr(t), deadAddr(t)}
	c := newTestClient(t, Config{Nodes: dead, MinBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second})
	ctx := context.Background()

	err := c.Ping(ctx)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Ping = %v, want ErrUnavailable wrapping the refused dial", err)
	}
	goroutines := runtime.NumGoroutine()
	const calls, spread = 10000, time.Second
	peak := goroutines
	start := time.Now()
	for i := range calls {
		// Pace the calls over the spread; a late loop catches up.
		if ahead := time.Duration(i)*spread/calls - time.Since(start); ahead > time.Millisecond {
			peak = max(peak, runtime.NumGoroutine())
			time.Sleep(ahead)
		}
		if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get = %v, want ErrUnavailable", err)
		}
	}
	elapsed := time.Since(start)
	s := c.Stats()
	t.Logf("%d calls in %v: %d dials, peak %d goroutines (%d before)", calls, elapsed.Round(time.Millisecond), s.Dials, peak, goroutines)
	// The backoff ceiling doubles from 50ms, so a node is dialled about six
	// times in the first second; ten needs a run of unlucky draws.
	if limit := uint64(len(dead)) * 10 * uint64(1+elapsed/spread); s.Dials > limit {
		t.Errorf("%d dials, want at most %d", s.Dials, limit)
	}
	if s.Dials != s.DialFailures {
		t.Errorf("Stats = %+v: every dial should have failed", s)
	}
	// A dial goroutine may be running; nothing else.
	if peak > goroutines+len(dead) {
		t.Errorf("goroutines peaked at %d, from %d", peak, goroutines)
	}
	eventually(t, 5*time.Second, "goroutines return to their number", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestNodeThatHangsUpIsBackedOff(t *testing.T) {
	fs := newFake(t)
	fs.hangUp.Store(true)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	const spread = 500 * time.Millisecond
	start := time.Now()
	for time.Since(start) < spread {
		if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ping = %v, want ErrUnavailable", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	// Connections that never served count as failed dials: the ceiling
	// doubles from 20ms, so about five dials fit in half a second.
	s := c.Stats()
	t.Logf("%d dials in %v", s.Dials, time.Since(start).Round(time.Millisecond))
	if s.Dials > 12 {
		t.Errorf("Stats = %+v: a node that hangs up is dialled too often", s)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(fds)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestRestartStorm(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, ConnsPerNode: 2, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})

	const callers = 50
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	unexpected := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch _, err := c.Get(ctx, []byte("k")); {
				case err == nil, errors.Is(err, ErrNotFound):
					ok.Add(1)
				case errors.Is(err, ErrUnavailable):
					failed.Add(1)
				default:
					unexpected <- err
					return
				}
				time.Sleep(10 * time.Millisecond) // the caller's own pacing
			}
		}()
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	servedSince := func(n int64) func() bool {
		return func() bool { return ok.Load() >= n+callers }
	}
	eventually(t, 5*time.Second, "callers are served", servedSince(0))
	eventually(t, 5*time.Second, "both connections are open", func() bool { return c.Stats().ConnsOpen == 2 })
	baseline := openFDs(t)

	for i := range 20 {
		fs.stop()
		down := 20 * time.Millisecond
		if i == 10 {
			down = 300 * time.Millisecond
		}
		cpu0, wall0 := cpuTime(), time.Now()
		time.Sleep(down) // the outage itself, not a synchronisation
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		if i == 10 {
			share := float64(cpu) / float64(wall)
			t.Logf("while down for %v: %v of CPU, %.0f%% of one core", wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*share)
			if share > 0.30 {
				t.Errorf("callers of a down node used %.0f%% of a core, want under 30%%", 100*share)
			}
		}
		fs.restart()
		eventually(t, 5*time.Second, "callers are served after a restart", servedSince(ok.Load()))
		select {
		case err := <-unexpected:
			t.Fatalf("restart %d: unexpected error: %v", i, err)
		default:
		}
	}
	eventually(t, 5*time.Second, "open files return to their number", func() bool { return openFDs(t) <= baseline+2 })
	s := c.Stats()
	t.Logf("stats: %+v; %d calls served, %d failed fast; fds %d (baseline %d)", s, ok.Load(), failed.Load(), openFDs(t), baseline)
	if s.Dials > 20*20 {
		t.Errorf("%d dials for 20 restarts", s.Dials)
	}
}
