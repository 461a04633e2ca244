package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upu/upu/protocol"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		bad  []string // substrings the error must hold; none: valid
	}{
		{name: "zero", cfg: Config{}},
		{name: "default", cfg: DefaultConfig()},
		{name: "bad addr", cfg: Config{Nodes: []string{"nohost"}}, bad: []string{"nodes=nohost"}},
		{name: "duplicate", cfg: Config{Nodes: []string{"a:1", "a:1"}}, bad: []string{"listed twice"}},
		{name: "negative", cfg: Config{DialTimeout: -1, RequestTimeout: -1, ConnsPerNode: -1, MaxInFlight: -1},
			bad: []string{"dial-timeout", "request-timeout", "conns-per-node", "max-in-flight"}},
		{name: "backoff order", cfg: Config{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, bad: []string{"min-backoff=1s"}},
		{name: "min over default max", cfg: Config{MinBackoff: time.Minute}, bad: []string{"max-backoff (5s)"}},
		{name: "role", cfg: Config{Role: 9}, bad: []string{"role=9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, want := range tt.bad {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to mention %q", err, want)
				}
			}
			if _, nerr := New(tt.cfg); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	c, err := New(Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for failures := 1; failures < 100; failures++ {
		ceiling := min(200*time.Millisecond, 10*time.Millisecond<<min(failures, 20))
		for range 50 {
			if d := c.backoff(failures); d < 10*time.Millisecond || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [10ms, %v]", failures, d, ceiling)
			}
		}
	}
}

func TestMethods(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	cc, err := c.Set(ctx, []byte("k"), []byte("v1"), WithTTL(1500*time.Millisecond), WithReqID("rid-set"))
	if err != nil || string(cc) != "ctx:k" {
		t.Fatalf("Set = %q, %v", cc, err)
	}
	var set protocol.SetRequest
	fs.lastBody(protocol.OpSet, &set)
	if set.TTLMS != 1500 || set.ReqID != "rid-set" || set.Context != nil {
		t.Errorf("Set sent %+v", set)
	}
	if _, err := c.Set(ctx, []byte("k"), []byte("v2"), WithContext(cc), WithTTL(time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	fs.lastBody(protocol.OpSet, &set)
	if string(set.Context) != "ctx:k" || set.TTLMS != 1 {
		t.Errorf("Set with context sent %+v", set)
	}

	it, err := c.Get(ctx, []byte("k"), WithScope(protocol.ScopeRoot), WithSiblings(), WithReqID("rid-get"))
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Value) != "v2" || string(it.Context) != "ctx:k" || !it.Expiry.Equal(time.UnixMilli(1700000000000)) || len(it.Siblings) != 2 {
		t.Errorf("Get = %+v", it)
	}
	if s := it.Siblings[1]; string(s.Value) != "other" || !s.Deleted || s.Node != "n2" || !s.Time.Equal(time.UnixMilli(1700000000002)) || !s.Expiry.IsZero() {
		t.Errorf("sibling = %+v", s)
	}
	var get protocol.GetRequest
	fs.lastBody(protocol.OpGet, &get)
	if get.Scope != protocol.ScopeRoot || !get.Siblings || get.ReqID != "rid-get" || string(get.Key) != "k" {
		t.Errorf("Get sent %+v", get)
	}

	if err := c.Del(ctx, []byte("k"), WithContext([]byte("ctx:k")), WithReqID("rid-del")); err != nil {
		t.Fatal(err)
	}
	var del protocol.DelRequest
	fs.lastBody(protocol.OpDel, &del)
	if string(del.Context) != "ctx:k" || del.ReqID != "rid-del" {
		t.Errorf("Del sent %+v", del)
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Del: %v, want ErrNotFound", err)
	}

	if v, err := c.Incr(ctx, []byte("n"), 5, WithReqID("rid-incr")); err != nil || v != 5 {
		t.Errorf("Incr = %d, %v", v, err)
	}
	if v, err := c.Decr(ctx, []byte("n"), 7); err != nil || v != -2 {
		t.Errorf("Decr = %d, %v", v, err)
	}

	st, err := c.Status(ctx)
	if err != nil || st.NodeID != "00000000000000f1" || st.Applied["a"] != 1 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	d, err := c.Digest(ctx)
	if err != nil || d.Digest != "d1gest" {
		t.Errorf("Digest = %+v, %v", d, err)
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 2 || !ms[0].Self || ms[0].NodeID != "00000000000000f1" || ms[1].State != "failed" {
		t.Errorf("Members = %+v, %v", ms, err)
	}
	if lvl, err := c.LogLevel(ctx, ""); err != nil || lvl != "info" {
		t.Errorf("LogLevel read = %q, %v", lvl, err)
	}
	if lvl, err := c.LogLevel(ctx, "debug"); err != nil || lvl != "debug" {
		t.Errorf("LogLevel set = %q, %v", lvl, err)
	}
	if s := c.Stats(); s.Dials != 1 || s.ConnsOpen != 1 || s.DialFailures != 0 {
		t.Errorf("Stats = %+v, want one dial and one connection", s)
	}
}

func TestServerErrorsMapToSentinels(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	tests := []struct {
		code protocol.Code
		want error
	}{
		{protocol.CodeInternal, ErrInternal},
		{protocol.CodeNotFound, ErrNotFound},
		{protocol.CodeTooLarge, ErrTooLarge},
		{protocol.CodeBadRequest, ErrBadRequest},
		{protocol.CodeUnavailable, ErrUnavailable},
		{protocol.CodeTimeout, ErrTimeout},
		{protocol.CodeWrongType, ErrWrongType},
		{protocol.CodeUnauthorized, ErrUnauthorized},
		{protocol.CodeUnknownOp, ErrProtocol},
		{protocol.CodeProtocol, ErrProtocol},
		{99, ErrInternal},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			key := []byte("err/" + strconv.Itoa(int(tt.code)) + "/x")
			for _, call := range []func() error{
				func() error { _, err := c.Get(context.Background(), key); return err },
				func() error { _, err := c.Incr(context.Background(), key, 1); return err },
			} {
				err := call()
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				var se *ServerError
				if !errors.As(err, &se) {
					t.Fatalf("err = %T, want a *ServerError", err)
				}
				wantID := "fake-" + strconv.Itoa(int(tt.code))
				if se.Code != tt.code || se.ReqID != wantID || se.Node != fs.addr || se.Message != "injected failure" {
					t.Errorf("ServerError = %+v", se)
				}
				if !strings.Contains(err.Error(), "req_id "+wantID) {
					t.Errorf("message %q lacks the req_id", err)
				}
			}
		})
	}
	if s := c.Stats(); s.Dials != 1 || s.Retries != 0 {
		t.Errorf("Stats = %+v: server errors must neither close nor retry", s)
	}
}

func TestLocalChecksSendNothing(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil { // learn the limits
		t.Fatal(err)
	}
	before := fs.requests.Load()
	bigKey := bytes.Repeat([]byte("k"), int(fs.hello.MaxKey)+1)
	bigValue := make([]byte, fs.hello.MaxValue+1)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get big key", func() error { _, err := c.Get(ctx, bigKey); return err }, ErrTooLarge},
		{"set big key", func() error { _, err := c.Set(ctx, bigKey, nil); return err }, ErrTooLarge},
		{"set big value", func() error { _, err := c.Set(ctx, []byte("k"), bigValue); return err }, ErrTooLarge},
		{"del big key", func() error { return c.Del(ctx, bigKey) }, ErrTooLarge},
		{"incr big key", func() error { _, err := c.Incr(ctx, bigKey, 1); return err }, ErrTooLarge},
		{"empty key", func() error { _, err := c.Get(ctx, nil); return err }, ErrBadRequest},
		{"negative ttl", func() error { _, err := c.Set(ctx, []byte("k"), nil, WithTTL(-time.Second)); return err }, ErrBadRequest},
		{"bad scope", func() error { _, err := c.Get(ctx, []byte("k"), WithScope(7)); return err }, ErrBadRequest},
		{"decr min", func() error { _, err := c.Decr(ctx, []byte("k"), -1<<63); return err }, ErrBadRequest},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := fs.requests.Load() - before; n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
	if s := c.Stats(); s.Dials != 1 || s.ConnsOpen != 1 {
		t.Errorf("Stats = %+v: a refused request must not touch the connection", s)
	}
}

func TestHandshakeRefused(t *testing.T) {
	fs := newFake(t)
	fs.token = "secret"
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, Token: "wrong"})
	err := c.Ping(context.Background())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Ping = %v, want ErrUnavailable wrapping ErrUnauthorized", err)
	}
	good := newTestClient(t, Config{Nodes: []string{fs.addr}, Token: "secret"})
	if err := good.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with the right token: %v", err)
	}
}

func TestDial(t *testing.T) {
	fs := newFake(t)
	c, err := Dial(context.Background(), Config{Nodes: []string{fs.addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if s := c.Stats(); s.ConnsOpen != 1 {
		t.Errorf("after Dial: %+v, want an open connection", s)
	}

	fs.stop()
	if _, err := Dial(context.Background(), Config{Nodes: []string{fs.addr}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Dial to a stopped node = %v, want ErrUnavailable", err)
	}
}

func TestClose(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, []byte("hold/close"))
		held <- err
	}()
	eventually(t, 5*time.Second, "held get reaches the server", func() bool { return fs.requests.Load() >= 2 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-held; !errors.Is(err, ErrClosed) {
		t.Errorf("call in flight at Close = %v, want ErrClosed", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	if s := c.Stats(); s.ConnsOpen != 0 {
		t.Errorf("after Close: %+v", s)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestCascade: the cascade's status and parent requests carry what the
// caller gave and return the status the node answered with; a scoped read
// names the domain that answered.
func TestCascade(t *testing.T) {
	fs := newFake(t)
	c := newTestClient(t, Config{Nodes: []string{fs.addr}, Role: protocol.RoleAdmin})
	ctx := context.Background()

	st, err := c.CascadeStatus(ctx)
	if err != nil || st.Domain != "test" || st.State != "root" || !slices.Equal(st.Path, []string{"test"}) {
		t.Fatalf("CascadeStatus = %+v, %v", st, err)
	}
	seeds := []string{"10.0.0.1:7400", "10.0.0.2:7400"}
	st, err = c.SetParent(ctx, "region", seeds)
	if err != nil || st.Parent != "region" || !slices.Equal(st.Seeds, seeds) {
		t.Fatalf("SetParent = %+v, %v", st, err)
	}
	var req protocol.CascadeParentRequest
	fs.lastBody(protocol.OpCascadeParent, &req)
	if req.Domain != "region" || !slices.Equal(req.Seeds, seeds) || req.Clear {
		t.Errorf("SetParent sent %+v", req)
	}
	st, err = c.ClearParent(ctx)
	if err != nil || st.Parent != "" {
		t.Fatalf("ClearParent = %+v, %v", st, err)
	}
	var clear protocol.CascadeParentRequest
	fs.lastBody(protocol.OpCascadeParent, &clear)
	if !clear.Clear || clear.Domain != "" || len(clear.Seeds) != 0 {
		t.Errorf("ClearParent sent %+v", clear)
	}

	before := fs.requests.Load()
	for _, bad := range []struct {
		domain string
		seeds  []string
	}{{"", seeds}, {"region", nil}} {
		if _, err := c.SetParent(ctx, bad.domain, bad.seeds); !errors.Is(err, ErrBadRequest) {
			t.Errorf("SetParent(%q, %q) = %v, want ErrBadRequest", bad.domain, bad.seeds, err)
		}
	}
	if n := fs.requests.Load() - before; n != 0 {
		t.Errorf("%d refused SetParent requests reached the server", n)
	}

	for _, tt := range []struct {
		code protocol.Code
		want error
	}{{protocol.CodeBadRequest, ErrBadRequest}, {protocol.CodeUnavailable, ErrUnavailable}, {protocol.CodeUnauthorized, ErrUnauthorized}} {
		fs.mu.Lock()
		fs.cascadeFail = tt.code
		fs.mu.Unlock()
		_, err := c.SetParent(ctx, "region", seeds)
		var se *ServerError
		if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Op != protocol.OpCascadeParent || se.Message != "injected failure" {
			t.Errorf("SetParent failing with code %s = %v, want %v as a *ServerError", tt.code, err, tt.want)
		}
	}

	if _, err := c.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for scope, want := range map[protocol.Scope]string{protocol.ScopeLocal: "", protocol.ScopeUp: "top", protocol.ScopeRoot: "top"} {
		if it, err := c.Get(ctx, []byte("k"), WithScope(scope)); err != nil || it.Domain != want {
			t.Errorf("Get with scope %d: domain %q, %v; want %q", scope, it.Domain, err, want)
		}
	}
}
