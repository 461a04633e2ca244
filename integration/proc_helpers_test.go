package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/client"
)

// assertNoDamageInLog fails the test on any sign of damage in a node's log: a line
// at ERROR or above (Badger's own errors arrive at ERROR), any mention of
// corruption or a panic, and any line that is not JSON (a Go runtime crash
// prints its trace as plain text).
func assertNoDamageInLog(t *testing.T, n *node) {
	t.Helper()
	for _, line := range strings.Split(n.output(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("node log has a line that is not JSON: %.300s", line)
			continue
		}
		lower := strings.ToLower(line)
		switch lvl, _ := rec["level"].(string); {
		case lvl == "error" || lvl == "fatal" || lvl == "panic":
			t.Errorf("node log has a %s line: %.500s", lvl, line)
		case strings.Contains(lower, "corrupt") || strings.Contains(lower, "panic"):
			t.Errorf("node log reports damage: %.500s", line)
		}
	}
}

// procStatusKB reads a "Name: N kB" field of /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// procFDCount counts the open file descriptors of a process.
func procFDCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// keyRead is what a get of one key found.
type keyRead struct {
	present bool
	value   []byte
	err     error // a failure other than not found
}

// readKeys gets every key through cl with 16 concurrent callers, each get
// bounded by timeout, and returns the reads in the order of keys.
func readKeys(cl *client.Client, keys []string, timeout time.Duration) []keyRead {
	results := make([]keyRead, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				it, err := cl.Get(ctx, []byte(keys[i]))
				cancel()
				switch {
				case err == nil:
					results[i] = keyRead{present: true, value: it.Value}
				case !errors.Is(err, client.ErrNotFound):
					results[i] = keyRead{err: err}
				}
			}
		}()
	}
	wg.Wait()
	return results
}
