package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/native"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

func TestPrintCascadeStatus(t *testing.T) {
	tests := []struct {
		name string
		st   protocol.CascadeStatus
		want string
	}{
		{"root", protocol.CascadeStatus{Domain: "top", Path: []string{"top"}, State: "root"},
			"domain:     top\n" +
				"parent:     none (this domain is a root)\n" +
				"path:       top\n" +
				"state:      root\n" +
				"relay:      none\n" +
				"lag:        0 entries, 0.0 seconds\n" +
				"relayed:    0 entries, 0 bytes\n" +
				"children:   none\n"},
		{"relaying, with children", protocol.CascadeStatus{
			Domain: "dc1", Parent: "region", Seeds: []string{"10.0.0.1:7400", "10.0.0.2:7400"}, Path: []string{"dc1", "region", "top"},
			State: "relaying", Relay: "00000000000000a1", Upstream: "00000000000000b2", UpstreamAddr: "10.0.0.2:7400",
			LagEntries: 12, LagSeconds: 1.54,
			Origins:        []protocol.CascadeOriginLag{{Origin: "00000000000000a1", Entries: 10, Seconds: 1.54}, {Origin: "00000000000000a2", Entries: 2, Seconds: 0.2}},
			EntriesRelayed: 3400, BytesRelayed: 51200,
			Children: []protocol.CascadeChild{{Domain: "rack7", Relay: "00000000000000c3", LastSeenMS: 1764687600000}},
		},
			"domain:     dc1\n" +
				"parent:     region, seeds 10.0.0.1:7400,10.0.0.2:7400\n" +
				"path:       dc1 -> region -> top\n" +
				"state:      relaying\n" +
				"relay:      00000000000000a1\n" +
				"upstream:   00000000000000b2 10.0.0.2:7400\n" +
				"lag:        12 entries, 1.5 seconds\n" +
				"  ORIGIN            ENTRIES  SECONDS\n" +
				"  00000000000000a1  10       1.5\n" +
				"  00000000000000a2  2        0.2\n" +
				"relayed:    3400 entries, 51200 bytes\n" +
				"children:   1\n" +
				"  DOMAIN  RELAY             LAST-SEEN\n" +
				"  rack7   00000000000000c3  2025-12-02T15:00:00Z\n"},
		{"unreachable", protocol.CascadeStatus{
			Domain: "dc1", Parent: "region", Seeds: []string{"10.0.0.1:7400"}, ParentMembers: []string{"10.0.0.1:7400", "10.0.0.3:7400"},
			State: "unreachable", Reason: "no member of region answered", Relay: "00000000000000a1",
			LastError: "dial tcp 10.0.0.1:7400: connection refused", LastErrorMS: 1764687600000,
		},
			"domain:     dc1\n" +
				"parent:     region, seeds 10.0.0.1:7400; members 10.0.0.1:7400,10.0.0.3:7400\n" +
				"state:      unreachable: no member of region answered\n" +
				"relay:      00000000000000a1\n" +
				"lag:        0 entries, 0.0 seconds\n" +
				"relayed:    0 entries, 0 bytes\n" +
				"last error: dial tcp 10.0.0.1:7400: connection refused (at 2025-12-02T15:00:00Z)\n" +
				"children:   none\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printCascadeStatus(&out, tt.st); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("cascade status:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}

// fakeCascade keeps the parent setting a cascade would replicate.
type fakeCascade struct {
	mu    sync.Mutex
	st    protocol.CascadeStatus
	calls []string
}

func (f *fakeCascade) Status(context.Context) (protocol.CascadeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fakeCascade) SetParent(_ context.Context, domain string, seeds []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "set "+domain+" "+strings.Join(seeds, " "))
	f.st.Parent, f.st.Seeds, f.st.State = domain, seeds, "connecting"
	f.st.Path = []string{f.st.Domain, domain}
	return nil
}

func (f *fakeCascade) ClearParent(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "clear")
	f.st.Parent, f.st.Seeds, f.st.State, f.st.Path = "", nil, "root", []string{f.st.Domain}
	return nil
}

// fakeUpstream is a parent domain "top" that holds one key, "above".
type fakeUpstream struct{}

func (fakeUpstream) Domain() string { return "dc1" }

func (fakeUpstream) ReadUp(_ context.Context, key []byte, _ bool, _ reqid.ID) (crdt.Record, string, error) {
	if string(key) != "above" {
		return crdt.Record{}, "top", nil
	}
	return crdt.Record{}.Set(crdt.Op{Node: 0xb0b, TS: crdt.MakeTimestamp(1_700_000_000_000, 0)}, []byte("from top"), 0), "top", nil
}

// startCascadeNode serves the binary protocol on loopback over an
// in-memory store, with fc as its cascade and fakeUpstream as its parent,
// until the test ends; it returns the address.
func startCascadeNode(t *testing.T, fc *fakeCascade) string {
	t.Helper()
	const id = crdt.NodeID(0xa11ce)
	st, err := store.Open(store.Config{InMemory: true, NodeID: id}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := kv.New(kv.Config{NodeID: id}, kv.Deps{Store: st, Upstream: fakeUpstream{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := native.New(native.Config{NodeID: id, Domain: "dc1"},
		native.Deps{KV: svc, Admin: noAdmin{}, Logger: logging.NewTest(t), Cascade: fc})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// noAdmin answers the admin requests these tests do not make.
type noAdmin struct{}

func (noAdmin) Status(context.Context, *protocol.StatusResponse) error { return nil }
func (noAdmin) Digest(context.Context) (string, int, error)            { return "", 0, nil }
func (noAdmin) Members() []protocol.Member                             { return nil }

// TestCascadeCommands drives the cascade commands and scoped gets against
// a node whose cascade is a fake.
func TestCascadeCommands(t *testing.T) {
	fc := &fakeCascade{st: protocol.CascadeStatus{Domain: "dc1", Path: []string{"dc1"}, State: "root"}}
	addr := startCascadeNode(t, fc)
	upu := func(args ...string) (stdout, stderr string, code int) {
		var out, errs bytes.Buffer
		code = run(context.Background(), append([]string{"upu", "--nodes", addr}, args...), strings.NewReader(""), &out, &errs)
		return out.String(), errs.String(), code
	}

	tests := []struct {
		args       string
		wantCode   int
		wantOut    []string // each in stdout
		wantErr    string   // the whole of stderr
		wantCalls  []string // the cascade's calls so far
		wantParent string   // the parent after
	}{
		{args: "cascade status", wantOut: []string{"domain:     dc1\n", "parent:     none (this domain is a root)\n", "state:      root\n"}},
		{args: "cascade set-parent region 10.0.0.1:7400,10.0.0.2:7400", wantOut: []string{"parent:     region, seeds 10.0.0.1:7400,10.0.0.2:7400\n", "path:       dc1 -> region\n"},
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400"}, wantParent: "region"},
		{args: "cascade status --json", wantOut: []string{`"parent":"region"`, `"seeds":["10.0.0.1:7400","10.0.0.2:7400"]`, `"state":"connecting"`},
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400"}, wantParent: "region"},
		{args: "cascade clear-parent", wantOut: []string{"parent:     none (this domain is a root)\n"},
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400", "clear"}},
		{args: "get above --scope up", wantOut: []string{"from top\n"}, wantErr: "(domain top)\n",
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400", "clear"}},
		{args: "get above --scope root --json", wantOut: []string{`{"value":"from top","domain":"top"}` + "\n"},
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400", "clear"}},
		{args: "get nowhere --scope up", wantCode: exitNotFound, wantErr: "not found (domain top)\n",
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400", "clear"}},
		{args: "get above", wantCode: exitNotFound, wantErr: "not found\n",
			wantCalls: []string{"set region 10.0.0.1:7400 10.0.0.2:7400", "clear"}},
	}
	for _, tt := range tests {
		out, errs, code := upu(strings.Fields(tt.args)...)
		if code != tt.wantCode || errs != tt.wantErr {
			t.Fatalf("upu %s: exit %d, stderr %q; want exit %d, stderr %q", tt.args, code, errs, tt.wantCode, tt.wantErr)
		}
		for _, w := range tt.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("upu %s printed\n%s\nlacking %q", tt.args, out, w)
			}
		}
		st, _ := fc.Status(context.Background())
		fc.mu.Lock()
		calls := slices.Clone(fc.calls)
		fc.mu.Unlock()
		if !slices.Equal(calls, tt.wantCalls) || st.Parent != tt.wantParent {
			t.Fatalf("after upu %s: cascade calls %q, parent %q; want %q, %q", tt.args, calls, st.Parent, tt.wantCalls, tt.wantParent)
		}
	}

	out, _, _ := upu("cascade", "status", "--json")
	var doc protocol.CascadeStatus
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Domain != "dc1" || doc.State != "root" {
		t.Fatalf("cascade status --json = %q: %+v, %v", out, doc, err)
	}
}
