package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/upu/upu/client"
)

// TestClientSurvivesRestarts restarts a real server 20 times under 50
// concurrent callers. After each restart calls succeed again; while the server
// is down the client burns no CPU; at the end the test process holds no more
// file descriptors than before.
func TestClientSurvivesRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server 20 times")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	n := startNode(t, dir, addr)

	baseFDs := openFDs(t)
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{addr}
	cfg.RequestTimeout = 2 * time.Second
	cfg.MaxBackoff = 200 * time.Millisecond
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	var (
		ok, failed atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte(fmt.Sprintf("caller:%d", w))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := cl.Set(ctx, key, []byte(fmt.Sprint(i)))
				cancel()
				if err != nil {
					failed.Add(1)
					// The client fails fast while every node is down; a
					// caller pauses briefly as any retry loop should, so
					// the CPU measured below is the client's own.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				ok.Add(1)
			}
		}()
	}

	waitCalls := func(round int) {
		t.Helper()
		start := ok.Load()
		deadline := time.Now().Add(15 * time.Second)
		for ok.Load() < start+200 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: calls did not succeed within 15s of the restart", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	const restarts = 20
	var downCPU, downWall time.Duration
	for round := range restarts {
		waitCalls(round)
		n.stop()
		cpu0, wall0 := cpuTime(t), time.Now()
		time.Sleep(300 * time.Millisecond) // callers hammer a dead address meanwhile
		downCPU += cpuTime(t) - cpu0
		downWall += time.Since(wall0)
		n = startNode(t, dir, addr)
	}
	waitCalls(restarts)
	close(stop)
	wg.Wait()
	cl.Close()

	share := float64(downCPU) / float64(downWall)
	t.Logf("restarts=%d calls_ok=%d calls_failed=%d cpu_while_down=%.1f%% of one core", restarts, ok.Load(), failed.Load(), 100*share)
	// 50 callers retrying every 10ms against a dead server: a client that
	// spun (redialling at once, or looping on a dead socket) would use a
	// whole core or more. Backoff keeps it to a trickle.
	if share > 0.30 {
		t.Errorf("client used %.0f%% of a core while the server was down", 100*share)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fds := openFDs(t)
		if fds <= baseFDs+2 {
			t.Logf("open fds: baseline %d, after %d", baseFDs, fds)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open fds %d after close, baseline %d: sockets leaked", fds, baseFDs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
