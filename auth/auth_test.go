package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
)

func TestGrant(t *testing.T) {
	all := Tokens{Client: "c", Peer: "p", Admin: "a"}
	tests := []struct {
		name   string
		tokens Tokens
		token  string
		want   Grant
	}{
		{"no token set: all open", Tokens{}, "", GrantAll},
		{"no token set: any token", Tokens{}, "whatever", GrantAll},
		{"client token", all, "c", GrantClient},
		{"peer token is a client too", all, "p", GrantPeer},
		{"admin token is a client too", all, "a", GrantAdmin},
		{"wrong token", all, "x", 0},
		{"empty token", all, "", 0},
		{"prefix of a token", Tokens{Client: "client"}, "clien", 0},
		{"one token for peer and admin", Tokens{Client: "c", Peer: "s", Admin: "s"}, "s", GrantAll},
		{"admin unset falls back to the client token", Tokens{Client: "c", Peer: "p"}, "c", GrantAdmin},
		{"admin unset: wrong token", Tokens{Client: "c", Peer: "p"}, "x", 0},
		{"client unset: anyone is a client", Tokens{Admin: "a"}, "x", GrantClient},
		{"client unset: admin token", Tokens{Admin: "a"}, "a", GrantAdmin},
		{"peer unset: closed", Tokens{Client: "c", Admin: "a"}, "", 0},
		{"only peer set: client and admin open", Tokens{Peer: "p"}, "", GrantAdmin},
		{"only peer set: peer token", Tokens{Peer: "p"}, "p", GrantAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tokens.Grant(tt.token); got != tt.want {
				t.Fatalf("Grant(%q) = %b, want %b", tt.token, got, tt.want)
			}
		})
	}
}

func TestGrantMay(t *testing.T) {
	tests := []struct {
		grant Grant
		a     Action
		want  bool
	}{
		{GrantClient, ActionData, true},
		{GrantClient, ActionStatus, true},
		{GrantClient, ActionReplicate, false},
		{GrantClient, ActionAdmin, false},
		{GrantPeer, ActionReplicate, true},
		{GrantPeer, ActionAdmin, false},
		{GrantPeer, ActionData, true},
		{GrantAdmin, ActionStatus, true},
		{GrantAdmin, ActionData, true},
		{GrantAdmin, ActionAdmin, true},
		{GrantAdmin, ActionReplicate, false},
		{0, ActionData, false},
	}
	for _, tt := range tests {
		if got := tt.grant.May(tt.a); got != tt.want {
			t.Errorf("Grant(%b).May(%d) = %v, want %v", tt.grant, tt.a, got, tt.want)
		}
	}
}

func TestOpAction(t *testing.T) {
	tests := []struct {
		op   protocol.Opcode
		want Action
	}{
		{protocol.OpGet, ActionData},
		{protocol.OpSet, ActionData},
		{protocol.OpPing, ActionData},
		{protocol.OpStatus, ActionStatus},
		{protocol.OpMembers, ActionStatus},
		{protocol.OpDigest, ActionStatus},
		{protocol.OpCascadeStatus, ActionStatus},
		{protocol.OpLogLevel, ActionStatus},
		{protocol.OpPeerLink, ActionReplicate},
		{protocol.OpCascadeParent, ActionAdmin},
		{protocol.OpBackup, ActionAdmin},
	}
	for _, tt := range tests {
		if got := OpAction(tt.op); got != tt.want {
			t.Errorf("OpAction(%s) = %d, want %d", tt.op, got, tt.want)
		}
	}
}

func TestRefusal(t *testing.T) {
	tests := []struct {
		r    Refusal
		want string
	}{
		{Refusal{Need: protocol.RoleAdmin, What: "cascade-parent"}, "upu: unauthorized: admin role needed for cascade-parent"},
		{Refusal{Need: protocol.RolePeer}, "upu: unauthorized: peer role needed: the token presented does not grant it"},
	}
	for _, tt := range tests {
		err := error(&tt.r)
		if err.Error() != tt.want {
			t.Errorf("Error() = %q, want %q", err.Error(), tt.want)
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%v does not match ErrUnauthorized", err)
		}
	}
}

func TestFailuresRateLimited(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	clk := clock.NewFake(time.Unix(1000, 0))
	reg := prometheus.NewRegistry()
	f, err := NewFailures(FailuresConfig{Protocol: "native", Interval: 10 * time.Second},
		FailuresDeps{Log: logrus.NewEntry(logger), Clock: clk, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	lines := func(event string) []*logrus.Entry {
		var out []*logrus.Entry
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && e.Data[logging.FieldEvent] == event {
				out = append(out, e)
			}
		}
		return out
	}
	const attempts = 500
	for range attempts {
		f.Record(KindBadToken, "10.0.0.9:5555", protocol.RoleClient, "")
	}
	if got := len(lines(logging.EventBadToken)); got != 1 {
		t.Fatalf("%d bad-token lines for %d attempts in one interval, want 1", got, attempts)
	}
	f.Record(KindForbidden, "10.0.0.9:5555", protocol.RoleAdmin, "cascade-parent")
	if got := len(lines(logging.EventForbidden)); got != 1 {
		t.Fatalf("%d forbidden lines, want 1: each kind has its own interval", got)
	}
	clk.Advance(10 * time.Second)
	f.Record(KindBadToken, "10.0.0.9:5556", protocol.RoleClient, "")
	got := lines(logging.EventBadToken)
	if len(got) != 2 {
		t.Fatalf("%d bad-token lines after the interval, want 2", len(got))
	}
	if s := got[1].Data["suppressed"]; s != attempts-1 {
		t.Errorf("suppressed = %v, want %d", s, attempts-1)
	}
	if r := got[1].Data[logging.FieldRemote]; r != "10.0.0.9:5556" {
		t.Errorf("remote = %v", r)
	}
	for _, c := range []struct {
		role protocol.Role
		want float64
	}{{protocol.RoleClient, attempts + 1}, {protocol.RoleAdmin, 1}, {protocol.RolePeer, 0}} {
		if n, err := FailureCount(reg, "native", c.role); err != nil || n != c.want {
			t.Errorf("%s failures = %v (%v), want %v", c.role, n, err, c.want)
		}
	}
}

func TestFailuresConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  FailuresConfig
		ok   bool
	}{
		{"valid", FailuresConfig{Protocol: "resp"}, true},
		{"no protocol", FailuresConfig{}, false},
		{"negative interval", FailuresConfig{Protocol: "http", Interval: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v does not wrap ErrInvalidConfig", tt.name, err)
		}
	}
}
