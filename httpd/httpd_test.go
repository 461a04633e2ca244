package httpd

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/internal/logging"
)

type health struct{ serving, ready atomic.Bool }

func (h *health) Serving() bool { return h.serving.Load() }
func (h *health) Ready() (bool, string) {
	if !h.ready.Load() {
		return false, "resyncing"
	}
	return true, ""
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "upu_test_total", Help: "A counter."})
	reg.MustRegister(c)
	c.Add(3)
	h := &health{}
	h.serving.Store(true)
	s, err := New(Config{Pprof: true}, Deps{Gatherer: reg, Health: h, Logger: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() { s.Close(context.Background()) })
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path           string
		serving, ready bool
		code           int
		body           string
	}{
		{"/healthz", true, true, http.StatusOK, "ok\n"},
		{"/metrics", true, true, http.StatusOK, "upu_test_total 3"},
		{"/debug/pprof/", true, true, http.StatusOK, "goroutine"},
		{"/healthz", false, false, http.StatusServiceUnavailable, "shutting down"},
		{"/readyz", true, true, http.StatusOK, "ready\n"},
		{"/readyz", true, false, http.StatusServiceUnavailable, "resyncing"},
	} {
		h.serving.Store(tc.serving)
		h.ready.Store(tc.ready)
		if code, body := get(tc.path); code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s (serving %v) = %d %q, want %d and %q", tc.path, tc.serving, code, body, tc.code, tc.body)
		}
	}
}

// TestPprofOffByDefault: the profiler is served only when asked for.
func TestPprofOffByDefault(t *testing.T) {
	h := &health{}
	h.serving.Store(true)
	s, err := New(Config{}, Deps{Gatherer: prometheus.NewRegistry(), Health: h, Logger: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() { s.Close(context.Background()) })
	resp, err := http.Get("http://" + s.Addr().String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /debug/pprof/ without Pprof = %d, want 404", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{ReadHeaderTimeout: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "ReadHeaderTimeout") {
		t.Errorf("Validate() = %v, want an error naming ReadHeaderTimeout", err)
	}
}
