package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/client"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
)

// startNode runs a node on an ephemeral port; cfg fields left zero take the
// defaults, except that the store lives in a temporary directory.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	return startNodeClock(t, cfg, nil)
}

// startNodeClock is startNode on clk (nil: the real clock), standalone
// unless cfg gives a gossip address, logging at warn unless cfg says.
func startNodeClock(t testing.TB, cfg Config, clk clock.Clock) *Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Gossip.BindAddr == "" {
		cfg.Standalone = true // a test that gossips says where
	}
	if cfg.Log == (logging.Config{}) {
		cfg.Log = logging.DefaultConfig()
		cfg.Log.Level = "warn"
	}
	n, err := New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startRespNode runs a node with the Redis listener on ephemeral ports and a
// store in a temporary directory, standalone unless cfg gives a gossip
// address.
func startRespNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	cfg.Addr, cfg.RespAddr = "127.0.0.1:0", "127.0.0.1:0"
	return startNodeClock(t, cfg, nil)
}

// redisClient is a go-redis client of n's listener speaking protocol 2 or 3.
func redisClient(t testing.TB, n *Node, protocol int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         n.RespAddr().String(),
		Protocol:     protocol,
		MaxRetries:   -1, // an error must show, not be retried away
		DialTimeout:  5 * time.Second,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestHTTPMetricsAndHealth: the node's endpoint serves health and every
// part's metrics from one registry: the data service's, the binary
// protocol server's, the store's and the runtime's.
func TestHTTPMetricsAndHealth(t *testing.T) {
	n := startNode(t, Config{HTTPAddr: "127.0.0.1:0"})
	cfg := client.DefaultConfig()
	cfg.Nodes, cfg.ConnsPerNode = []string{n.Addr().String()}, 1
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := ctxT(t)
	if _, err := c.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, []byte("missing")); err == nil {
		t.Fatal("a missing key was found")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + n.HTTPAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz of a node of its own = %d %q", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`upu_requests_total{op="set",protocol="native",result="ok"} 1`,
		`upu_requests_total{op="get",protocol="native",result="not found"} 1`,
		`upu_request_seconds_count{op="set",protocol="native"} 1`,
		`upu_connections{protocol="native"} 1`,
		"upu_log_entries 2", // the set and the context-token key the node created
		"upu_batch_seconds_count",
		"upu_up 1",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
