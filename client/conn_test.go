package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestPipeliningShuffledReplies(t *testing.T) {
	fs := newFake(t)
	fs.shuffle.Store(true)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, RequestTimeout: 20 * time.Second})
	const goroutines, calls = 50, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range calls / 2 {
				key := fmt.Appendf(nil, "g%d/%d", g, i)
				want := fmt.Appendf(nil, "value of %s", key)
				if _, err := c.Set(ctx, key, want); err != nil {
					errs <- fmt.Errorf("set %s: %w", key, err)
					return
				}
				it, err := c.Get(ctx, key)
				if err != nil || string(it.Value) != string(want) {
					errs <- fmt.Errorf("get %s = %q, %v; want %q", key, it.Value, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := c.Stats()
	if s.Dials != 1 || s.ConnsOpen != 1 || s.LateReplies != 0 {
		t.Errorf("Stats = %+v, want every call on one connection", s)
	}
	if n := fs.requests.Load(); n != goroutines*calls {
		t.Errorf("server saw %d requests, want %d", n, goroutines*calls)
	}
	if fs.batches.Load() == 0 {
		t.Error("the server never answered two requests in one write: nothing was pipelined")
	}
	t.Logf("%d writes of the server answered several requests", fs.batches.Load())
}

func TestTimeoutKeepsConnection(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, []byte("hold/late"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want ErrTimeout wrapping context.DeadlineExceeded", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after a timeout: %v", err)
	}
	fs.release()
	eventually(t, 5*time.Second, "the late reply is discarded", func() bool { return c.Stats().LateReplies == 1 })
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the late reply: %v", err)
	}
	s := c.Stats()
	if s.Dials != 1 || s.ConnsOpen != 1 || s.Timeouts != 1 {
		t.Errorf("Stats = %+v, want one dial, one open connection, one timeout", s)
	}
	if fs.accepted.Load() != 1 || fs.peerEOF.Load() != 0 {
		t.Errorf("server accepted %d connections and saw %d closed, want 1 and 0", fs.accepted.Load(), fs.peerEOF.Load())
	}
}

func TestRequestTimeoutAndCancel(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, RequestTimeout: 50 * time.Millisecond})
	if _, err := c.Incr(context.Background(), []byte("hold/rt"), 1); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Incr past RequestTimeout = %v, want ErrTimeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, []byte("hold/cancel"))
		done <- err
	}()
	eventually(t, 5*time.Second, "the held get reaches the server", func() bool { return fs.requests.Load() == 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("canceled Get = %v, want context.Canceled and not ErrTimeout", err)
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v", err)
	}
	if s := c.Stats(); s.Dials != 1 || s.Timeouts != 1 {
		t.Errorf("Stats = %+v, want one dial and one timeout", s)
	}
}

func TestEOFFailsPendingAndRedials(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	incr := make(chan error, 1)
	go func() {
		_, err := c.Incr(ctx, []byte("hold/counter"), 1)
		incr <- err
	}()
	get := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, []byte("hold/missing"))
		get <- err
	}()
	eventually(t, 5*time.Second, "both calls reach the server", func() bool { return fs.requests.Load() == 3 })

	start := time.Now()
	fs.dropConns()
	// The incr may have been applied: it fails, and says so.
	if err := <-incr; !errors.Is(err, ErrUnavailable) {
		t.Errorf("pending Incr = %v, want ErrUnavailable", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("pending Incr failed after %v", waited)
	}
	// The get is repeated on a new connection, where it is held again.
	eventually(t, 5*time.Second, "the get is retried", func() bool { return fs.requests.Load() == 4 })
	fs.release()
	if err := <-get; !errors.Is(err, ErrNotFound) {
		t.Errorf("retried Get = %v, want the server's ErrNotFound", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Dials != 2 || s.ConnsOpen != 1 || s.Retries != 1 {
		t.Errorf("Stats = %+v, want a redial, one open connection and one retry", s)
	}
}

func TestHeartbeatAndIdleTimeout(t *testing.T) {
	fs := newFake(t)
	fs.hello.HeartbeatMS, fs.hello.IdleTimeoutMS = 50, 200
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Six heartbeats take longer than the idle timeout: answered pings
	// keep the connection.
	eventually(t, 5*time.Second, "the idle client pings", func() bool { return fs.heartbeat.Load() >= 6 })
	if s := c.Stats(); s.Dials != 1 || s.ConnsOpen != 1 || s.IdleCloses != 0 || s.Pings < 6 {
		t.Fatalf("Stats = %+v, want the first connection alive", s)
	}

	fs.silent.Store(true)
	silent := time.Now()
	eventually(t, 5*time.Second, "the silent connection is dropped", func() bool { return c.Stats().ConnsOpen == 0 })
	t.Logf("silent connection dropped after %v (idle timeout 200ms)", time.Since(silent).Round(time.Millisecond))
	if s := c.Stats(); s.IdleCloses != 1 {
		t.Errorf("Stats = %+v, want one idle close", s)
	}
	fs.silent.Store(false)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the idle close: %v", err)
	}
	if s := c.Stats(); s.Dials != 2 {
		t.Errorf("Stats = %+v, want a redial", s)
	}
}
