package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sirupsen/logrus"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) ms() int64 { return c.Now().UnixMilli() }

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testWriter{t})
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testConfig is an in-memory config whose background purger never fires on
// its own: tests drive purging with purgeOnce.
func testConfig() Config {
	return Config{InMemory: true, PurgeInterval: time.Hour}
}

func openStore(t testing.TB, cfg Config, clk Clock) *Store {
	t.Helper()
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openCommitting opens an in-memory store whose writer commits through
// commit, to count commits or make them fail.
func openCommitting(t testing.TB, commit func(*badger.Txn) error) *Store {
	t.Helper()
	s, st, err := open(testConfig(), newFakeClock(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s.commitTxn = commit
	s.start(st)
	t.Cleanup(func() { s.Close() })
	return s
}

// openFailing opens an in-memory store whose commits fail with "injected"
// while the returned flag is set.
func openFailing(t testing.TB) (*Store, *atomic.Bool) {
	t.Helper()
	failing := new(atomic.Bool)
	s := openCommitting(t, func(txn *badger.Txn) error {
		if failing.Load() {
			txn.Discard()
			return errors.New("injected")
		}
		return txn.Commit()
	})
	return s, failing
}

func openMem(t testing.TB) (*Store, *fakeClock) {
	clk := newFakeClock()
	return openStore(t, testConfig(), clk), clk
}

func set(t testing.TB, s *Store, key, value string, expiry int64) Result {
	t.Helper()
	res := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte(key), Value: []byte(value), Expiry: expiry})
	if res.Err != nil {
		t.Fatalf("set %q: %v", key, res.Err)
	}
	return res
}

// readValue returns the visible value of key, or "" and false.
func readValue(t testing.TB, s *Store, key string) (string, bool) {
	t.Helper()
	v, _, err := s.Read([]byte(key))
	if err != nil {
		if err == ErrNotFound {
			return "", false
		}
		t.Fatalf("read %q: %v", key, err)
	}
	return string(v.Value), true
}
