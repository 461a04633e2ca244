package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/reqid"
)

// fakeUpstream is a parent domain "top" that holds one key, "above", and
// remembers the request IDs it was asked with; err, when set, is how every
// read fails.
type fakeUpstream struct {
	err  error
	mu   sync.Mutex
	rids []reqid.ID
}

func (*fakeUpstream) Domain() string { return "dc1" }

func (u *fakeUpstream) ReadUp(_ context.Context, key []byte, _ bool, rid reqid.ID) (crdt.Record, string, error) {
	u.mu.Lock()
	u.rids = append(u.rids, rid)
	u.mu.Unlock()
	if u.err != nil {
		return crdt.Record{}, "", u.err
	}
	if string(key) != "above" {
		return crdt.Record{}, "top", nil
	}
	return crdt.Record{}.Set(crdt.Op{Node: 0xb0b, TS: crdt.MakeTimestamp(1_700_000_000_000, 0)}, []byte("from top"), 0), "top", nil
}

func (u *fakeUpstream) asked() []reqid.ID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]reqid.ID(nil), u.rids...)
}

// TestRespClientScope: CLIENT SCOPE sets and reports how far the
// connection's reads look, refusing what is no scope.
func TestRespClientScope(t *testing.T) {
	w := dialResp(t, startServer(t, options{}, nil))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"client", "scope"}, "$5\r\nlocal\r\n"},
		{[]string{"client", "scope", "up"}, "+OK\r\n"},
		{[]string{"client", "scope"}, "$2\r\nup\r\n"},
		{[]string{"CLIENT", "SCOPE", "ROOT"}, "+OK\r\n"},
		{[]string{"client", "scope"}, "$4\r\nroot\r\n"},
		{[]string{"client", "scope", "sideways"}, "-ERR syntax error\r\n"},
		{[]string{"client", "scope", "up", "down"}, "-ERR wrong number of arguments for 'client|scope' command\r\n"},
		{[]string{"client", "scope"}, "$4\r\nroot\r\n"},
		{[]string{"client", "scope", "local"}, "+OK\r\n"},
		{[]string{"client", "scope"}, "$5\r\nlocal\r\n"},
	} {
		if got := w.do(tt.args...); got != tt.want {
			t.Errorf("%q = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestRespScopedReads: with scope up a connection's reads ask the parent on
// a local miss, each with a request ID; with scope local they do not; a
// parent that cannot be reached, or none at all, is an error that says so.
func TestRespScopedReads(t *testing.T) {
	up := &fakeUpstream{}
	w := dialResp(t, startServer(t, options{upstream: up}, nil))
	w.do("set", "here", "local value")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "above"}, "$-1\r\n"},
		{[]string{"client", "scope", "up"}, "+OK\r\n"},
		{[]string{"get", "above"}, "$8\r\nfrom top\r\n"},
		{[]string{"get", "here"}, "$11\r\nlocal value\r\n"},
		{[]string{"get", "nowhere"}, "$-1\r\n"},
		{[]string{"mget", "above", "nowhere", "here"}, "*3\r\n$8\r\nfrom top\r\n$-1\r\n$11\r\nlocal value\r\n"},
		{[]string{"exists", "above", "nowhere"}, ":1\r\n"},
		{[]string{"strlen", "above"}, ":8\r\n"},
		{[]string{"type", "above"}, "+string\r\n"},
		{[]string{"ttl", "above"}, ":-1\r\n"},
		{[]string{"client", "scope", "local"}, "+OK\r\n"},
		{[]string{"exists", "above"}, ":0\r\n"},
	} {
		if got := w.do(tt.args...); got != tt.want {
			t.Errorf("%q = %q, want %q", tt.args, got, tt.want)
		}
	}
	// above: get, mget, exists, strlen, type, ttl; nowhere: get, mget, exists.
	rids := up.asked()
	if len(rids) != 9 {
		t.Fatalf("the parent was asked %d times, want 9 (only on a local miss with scope up)", len(rids))
	}
	for i, rid := range rids {
		if rid.IsZero() {
			t.Errorf("read %d up the tree carried no request ID", i)
		}
	}

	down := dialResp(t, startServer(t, options{upstream: &fakeUpstream{err: fmt.Errorf("%w: region: connection refused", cascade.ErrParentUnreachable)}}, nil))
	down.do("client", "scope", "up")
	if got, want := down.do("get", "above"), "-ERR parent domain unreachable: region: connection refused\r\n"; got != want {
		t.Errorf("get with the parent unreachable = %q, want %q", got, want)
	}

	slow := dialResp(t, startServer(t, options{upstream: &fakeUpstream{err: fmt.Errorf("asking region: %w", context.DeadlineExceeded)}}, nil))
	slow.do("client", "scope", "up")
	if got, want := slow.do("get", "above"), "-ERR timeout: the parent domain did not answer in time\r\n"; got != want {
		t.Errorf("get with the parent too slow = %q, want %q", got, want)
	}
	slow.do("client", "scope", "local")
	if got, want := slow.do("get", "above"), "$-1\r\n"; got != want {
		t.Errorf("local get after a scoped one = %q, want %q", got, want)
	}

	alone := dialResp(t, startServer(t, options{}, nil))
	alone.do("client", "scope", "root")
	if got, want := alone.do("get", "above"), "-ERR this node reads nothing beyond itself: it has no parent domain to ask (CLIENT SCOPE local)\r\n"; got != want {
		t.Errorf("get with scope root on a node without a parent = %q, want %q", got, want)
	}
}
