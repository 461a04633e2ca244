package native

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/protocol"
)

// fakeCascade keeps a parent setting in memory; err, when set, is what
// SetParent and ClearParent fail with.
type fakeCascade struct {
	mu    sync.Mutex
	st    protocol.CascadeStatus
	err   error
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
	f.calls = append(f.calls, fmt.Sprintf("set %s %v", domain, seeds))
	if f.err != nil {
		return f.err
	}
	f.st.Parent, f.st.Seeds, f.st.State = domain, seeds, "connecting"
	return nil
}

func (f *fakeCascade) ClearParent(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "clear")
	if f.err != nil {
		return f.err
	}
	f.st.Parent, f.st.Seeds, f.st.State = "", nil, "root"
	return nil
}

func (f *fakeCascade) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// cascadeCall sends a cascade request on w and decodes the status it is
// answered with; a failure is returned as the error frame.
func cascadeCall(t *testing.T, w *wire, op protocol.Opcode, req any) (protocol.CascadeStatus, *protocol.Error) {
	t.Helper()
	w.send(op, req)
	f := w.recv()
	if e := decodeErr(f); e != nil {
		return protocol.CascadeStatus{}, e
	}
	var st protocol.CascadeStatus
	if err := protocol.DecodeBody(f.Body, &st); err != nil {
		t.Fatalf("%s answer: %v", op, err)
	}
	return st, nil
}

// auditLines returns the audit log's entries.
func auditLines(t *testing.T, dir string) []map[string]string {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, logging.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var lines []map[string]string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		line := map[string]string{}
		for k, v := range m {
			line[k] = fmt.Sprint(v)
		}
		lines = append(lines, line)
	}
	return lines
}

func TestCascadeStatusAnswersTheClientRole(t *testing.T) {
	fc := &fakeCascade{st: protocol.CascadeStatus{
		Domain: "dc1", Parent: "region", Seeds: []string{"10.0.0.1:7400"}, Path: []string{"dc1", "region", "top"},
		State: "relaying", LagEntries: 3, Origins: []protocol.CascadeOriginLag{{Origin: "a1", Entries: 3, Seconds: 1.5}},
		Children: []protocol.CascadeChild{{Domain: "rack7", Relay: "b2", LastSeenMS: 1700000000000}},
	}}
	w := dial(t, startNode(t, options{AdminToken: "a", cascade: fc}))
	w.hello(protocol.Hello{})
	st, e := cascadeCall(t, w, protocol.OpCascadeStatus, nil)
	if e != nil {
		t.Fatalf("cascade status: %v", e)
	}
	if st.Domain != "dc1" || st.Parent != "region" || !slices.Equal(st.Path, fc.st.Path) || st.State != "relaying" ||
		st.LagEntries != 3 || len(st.Origins) != 1 || st.Origins[0].Seconds != 1.5 || len(st.Children) != 1 || st.Children[0].Domain != "rack7" {
		t.Fatalf("cascade status = %+v, want %+v", st, fc.st)
	}
}

// TestCascadeParent: only the admin role sets or clears the parent; the
// cascade gets the request's domain and seeds, each change is audited with
// the parent before and after, and the cascade's refusals keep their
// meaning on the wire.
func TestCascadeParent(t *testing.T) {
	set := &protocol.CascadeParentRequest{Domain: "region", Seeds: []string{"10.0.0.1:7400", "10.0.0.2:7400"}}
	tests := []struct {
		name      string
		role      protocol.Role
		parent    string // the domain's parent before
		req       *protocol.CascadeParentRequest
		err       error // what the cascade fails with
		wantCode  protocol.Code
		wantMsg   string // in the error's message
		wantCalls []string
		// the audit entry's before and after; empty: no entry
		before, after string
	}{
		{name: "client refused", role: protocol.RoleClient, req: set,
			wantCode: protocol.CodeUnauthorized, wantMsg: "needs the admin role"},
		{name: "admin sets", role: protocol.RoleAdmin, req: set,
			wantCalls: []string{"set region [10.0.0.1:7400 10.0.0.2:7400]"},
			before:    "none", after: "region@10.0.0.1:7400,10.0.0.2:7400"},
		{name: "admin clears", role: protocol.RoleAdmin, parent: "top", req: &protocol.CascadeParentRequest{Clear: true},
			wantCalls: []string{"clear"}, before: "top@10.9.9.9:7400", after: "none"},
		{name: "the same parent again changes nothing", role: protocol.RoleAdmin, parent: "top",
			req: &protocol.CascadeParentRequest{Domain: "top", Seeds: []string{"10.9.9.9:7400"}}},
		{name: "cycle", role: protocol.RoleAdmin, req: set, err: fmt.Errorf("%w: region's path to its root is region -> dc1", cascade.ErrCycle),
			wantCode: protocol.CodeBadRequest, wantMsg: "the parent would make a cycle: region's path", wantCalls: []string{"set region [10.0.0.1:7400 10.0.0.2:7400]"}},
		{name: "bad parent", role: protocol.RoleAdmin, req: &protocol.CascadeParentRequest{Domain: "dc1", Seeds: []string{"x"}},
			err: fmt.Errorf("%w: the domain itself", cascade.ErrBadParent), wantCode: protocol.CodeBadRequest, wantMsg: "bad parent: the domain itself",
			wantCalls: []string{"set dc1 [x]"}},
		{name: "no domain, on a root", role: protocol.RoleAdmin, req: &protocol.CascadeParentRequest{},
			err: fmt.Errorf("%w: no domain", cascade.ErrBadParent), wantCode: protocol.CodeBadRequest, wantMsg: "bad parent: no domain",
			wantCalls: []string{"set  []"}},
		{name: "parent unreachable", role: protocol.RoleAdmin, req: set, err: fmt.Errorf("%w: region: connection refused", cascade.ErrParentUnreachable),
			wantCode: protocol.CodeUnavailable, wantMsg: "parent domain unreachable", wantCalls: []string{"set region [10.0.0.1:7400 10.0.0.2:7400]"}},
		{name: "other failure", role: protocol.RoleAdmin, req: set, err: errors.New("disk on fire"),
			wantCode: protocol.CodeInternal, wantMsg: "disk on fire", wantCalls: []string{"set region [10.0.0.1:7400 10.0.0.2:7400]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCascade{st: protocol.CascadeStatus{Domain: "dc1", State: "root"}, err: tt.err}
			if tt.parent != "" {
				fc.st.Parent, fc.st.Seeds, fc.st.State = tt.parent, []string{"10.9.9.9:7400"}, "relaying"
			}
			logs := t.TempDir()
			w := dial(t, startNode(t, options{Domain: "dc1", ClientToken: "c", AdminToken: "a", cascade: fc, LogDir: logs}))
			token := map[protocol.Role]string{protocol.RoleClient: "c", protocol.RoleAdmin: "a"}[tt.role]
			w.hello(protocol.Hello{Role: tt.role, Token: token})
			st, e := cascadeCall(t, w, protocol.OpCascadeParent, tt.req)
			switch {
			case tt.wantCode == 0 && e != nil:
				t.Fatalf("cascade parent: %v", e)
			case tt.wantCode != 0 && (e == nil || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg)):
				t.Fatalf("cascade parent answered %v, want code %s with %q", e, tt.wantCode, tt.wantMsg)
			case tt.wantCode == 0:
				want, _ := fc.Status(context.Background())
				if st.Parent != want.Parent || !slices.Equal(st.Seeds, want.Seeds) || st.State != want.State {
					t.Fatalf("answered status %+v, want the status after the change, %+v", st, want)
				}
			}
			if got := fc.called(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("cascade calls %q, want %q", got, tt.wantCalls)
			}
			var audited []map[string]string
			for _, l := range auditLines(t, logs) {
				if l["action"] == "cascade-parent" {
					audited = append(audited, l)
				}
			}
			switch {
			case tt.before == "" && len(audited) != 0:
				t.Fatalf("audited %v for a request that changed nothing", audited)
			case tt.before == "":
			case len(audited) != 1:
				t.Fatalf("audit entries %v, want one", audited)
			case audited[0]["before"] != tt.before || audited[0]["after"] != tt.after || audited[0]["req_id"] == "":
				t.Fatalf("audit entry %v, want before %q, after %q and a req_id", audited[0], tt.before, tt.after)
			}
		})
	}
}

func TestCascadeRequestsWithoutCascade(t *testing.T) {
	w := dial(t, startNode(t, options{}))
	w.hello(protocol.Hello{Role: protocol.RoleAdmin})
	for _, r := range []struct {
		op  protocol.Opcode
		req any
	}{
		{protocol.OpCascadeStatus, nil},
		{protocol.OpCascadeParent, &protocol.CascadeParentRequest{Domain: "region", Seeds: []string{"10.0.0.1:7400"}}},
		{protocol.OpCascadeParent, &protocol.CascadeParentRequest{Clear: true}},
	} {
		if _, e := cascadeCall(t, w, r.op, r.req); e == nil || e.Code != protocol.CodeUnavailable || e.Message != errNoCascade {
			t.Errorf("%s on a node without a cascade: %v, want unavailable %q", r.op, e, errNoCascade)
		}
	}
}

// fakeUpstream is a parent domain "top" that holds one key, "up".
type fakeUpstream struct{ err error }

func (fakeUpstream) Domain() string { return "dc1" }

func (u fakeUpstream) ReadUp(_ context.Context, key []byte, _ bool, _ reqid.ID) (crdt.Record, string, error) {
	if u.err != nil {
		return crdt.Record{}, "", u.err
	}
	if string(key) != "up" {
		return crdt.Record{}, "top", nil
	}
	return crdt.Record{}.Set(crdt.Op{Node: 0xb0b, TS: crdt.MakeTimestamp(1_700_000_000_000, 0)}, []byte("from top"), 0), "top", nil
}

// TestScopedGetNamesTheDomain: a read up the tree says which domain
// answered, on a hit and on a miss; a local miss carries no message.
func TestScopedGetNamesTheDomain(t *testing.T) {
	tests := []struct {
		name, key  string
		scope      protocol.Scope
		upErr      error
		wantValue  string
		wantDomain string
		wantCode   protocol.Code
		wantMsg    string
	}{
		{name: "hit up", key: "up", scope: protocol.ScopeUp, wantValue: "from top", wantDomain: "top"},
		{name: "hit root", key: "up", scope: protocol.ScopeRoot, wantValue: "from top", wantDomain: "top"},
		{name: "miss up", key: "nowhere", scope: protocol.ScopeUp, wantCode: protocol.CodeNotFound, wantMsg: "not found (domain top)"},
		{name: "local miss", key: "up", scope: protocol.ScopeLocal, wantCode: protocol.CodeNotFound, wantMsg: ""},
		{name: "parent unreachable", key: "up", scope: protocol.ScopeUp, upErr: fmt.Errorf("%w: region", cascade.ErrParentUnreachable),
			wantCode: protocol.CodeUnavailable, wantMsg: "upu: parent domain unreachable: region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dial(t, startNode(t, options{upstream: fakeUpstream{err: tt.upErr}}))
			w.hello(protocol.Hello{})
			w.send(protocol.OpGet, &protocol.GetRequest{Key: []byte(tt.key), Scope: tt.scope})
			f := w.recv()
			if tt.wantCode != 0 {
				if e := decodeErr(f); e == nil || e.Code != tt.wantCode || e.Message != tt.wantMsg {
					t.Fatalf("get = %v, want code %s with message %q", e, tt.wantCode, tt.wantMsg)
				}
				return
			}
			var g protocol.GetResponse
			if err := protocol.DecodeBody(f.Body, &g); err != nil || string(g.Value) != tt.wantValue || g.Domain != tt.wantDomain {
				t.Fatalf("get = %+v (%v, %v), want %q from domain %q", g, err, decodeErr(f), tt.wantValue, tt.wantDomain)
			}
		})
	}
}
