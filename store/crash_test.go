package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "UPU_STORE_CRASH_DIR"

// TestCrashChild is the child of TestKill9: it writes until it is killed,
// printing a line for every acknowledged write.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	round := os.Getenv("UPU_STORE_CRASH_ROUND")
	s, err := Open(Config{Dir: dir}, systemClock{}, nil)
	if err != nil {
		fmt.Println("OPEN-FAILED", err)
		os.Exit(1)
	}
	var (
		mu  sync.Mutex
		out = bufio.NewWriter(os.Stdout)
		wg  sync.WaitGroup
	)
	ack := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "ACK "+format+"\n", a...)
		out.Flush()
	}
	deadline := time.Now().Add(30 * time.Second) // in case the parent is gone
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("%s-%d-%d", round, g, i)
				if r := s.Apply(ctx, Write{Op: OpSet, Key: []byte("k" + key), Value: []byte(key)}); r.Err == nil {
					ack("set k%s", key)
				}
				if i%10 == 0 {
					if r := s.Apply(ctx, Write{Op: OpSet, Key: []byte("d" + key), Value: []byte(key)}); r.Err != nil {
						continue
					}
					if r := s.Apply(ctx, Write{Op: OpDel, Key: []byte("d" + key)}); r.Err == nil {
						ack("del d%s", key)
					}
				}
				if r := s.Apply(ctx, Write{Op: OpIncr, Key: []byte("counter"), Delta: 1}); r.Err == nil {
					ack("incr %d", r.Counter)
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// TestKill9 proves that an acknowledged write survives kill -9 of the
// process (SyncWrites off: Badger's WAL is an mmap'd file the kernel keeps).
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var maxCounter int64
	for round := range 3 {
		sets, dels, counter := runCrashChild(t, dir, round, 2000+round*1500)
		maxCounter = max(maxCounter, counter)

		s, err := Open(Config{Dir: dir, PurgeInterval: time.Hour}, systemClock{}, testLog(t))
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for _, k := range sets {
			if v, _, err := s.Read([]byte(k)); err != nil || string(v.Value) != k[1:] {
				t.Fatalf("round %d: acknowledged set %s lost: %v", round, k, err)
			}
		}
		for _, k := range dels {
			if _, _, err := s.Read([]byte(k)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("round %d: acknowledged delete of %s lost: %v", round, k, err)
			}
		}
		v, _, err := s.Read([]byte("counter"))
		// Up to one increment per child goroutine may have committed
		// without its acknowledgement being printed.
		if err != nil || v.Counter < maxCounter || v.Counter > maxCounter+4 {
			t.Fatalf("round %d: counter %d, %v; acknowledged up to %d", round, v.Counter, err, maxCounter)
		}
		maxCounter = v.Counter
		// The log and the applied vector agree after recovery.
		if own := s.Applied().Get(s.NodeID()); uint64(s.LogLen()) != own {
			t.Errorf("round %d: log length %d, own seq %d", round, s.LogLen(), own)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d sets, %d deletes, counter %d survived kill -9", round, len(sets), len(dels), maxCounter)
	}
}

// runCrashChild runs the child on dir, kills it with SIGKILL after kill
// acknowledgements, and returns what it acknowledged.
func runCrashChild(t *testing.T, dir string, round, kill int) (sets, dels []string, counter int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "UPU_STORE_CRASH_ROUND="+strconv.Itoa(round))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "OPEN-FAILED") {
			t.Fatalf("child: %s", line)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ACK" {
			continue
		}
		switch f[1] {
		case "set":
			sets = append(sets, f[2])
		case "del":
			dels = append(dels, f[2])
		case "incr":
			c, _ := strconv.ParseInt(f[2], 10, 64)
			counter = max(counter, c)
		}
		if n++; n == kill {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if n < kill {
		t.Fatalf("child stopped after %d acknowledgements: %v", n, err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v", err)
	}
	return sets, dels, counter
}
