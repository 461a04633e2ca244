package gossip

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
)

func TestMembersSeeEachOther(t *testing.T) {
	g := startDomain(t, "east", 3)

	want := make([]Member, len(g))
	for i, x := range g {
		self := x.LocalMember()
		if !self.Self || self.ID != x.cfg.NodeID || self.State != StateAlive {
			t.Fatalf("LocalMember = %+v, want self %s alive", self, x.cfg.NodeID)
		}
		if _, port, err := net.SplitHostPort(self.GossipAddr); err != nil || port == "0" {
			t.Fatalf("GossipAddr %q: want the bound port (%v)", self.GossipAddr, err)
		}
		want[i] = Member{
			ID: x.cfg.NodeID, Domain: "east", Addr: x.cfg.ProtoAddr, GossipAddr: self.GossipAddr,
			Role: DefaultRole, State: StateAlive,
		}
	}
	slices.SortFunc(want, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })

	firstRing := g[0].Ring()
	for _, x := range g {
		got := x.Members()
		for i := range got {
			if got[i].Self != (got[i].ID == x.cfg.NodeID) {
				t.Errorf("%s: member %s has Self=%v", x.cfg.NodeID, got[i].ID, got[i].Self)
			}
			got[i].Self = false
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Members = %+v\nwant %+v", x.cfg.NodeID, got, want)
		}
		if ring := x.Ring(); !sameIDs(ring, firstRing) || len(ring) != 3 {
			t.Errorf("%s: Ring = %v, want %v", x.cfg.NodeID, ids(ring), ids(firstRing))
		}
		if n := x.NumMembers(); n != 3 {
			t.Errorf("%s: NumMembers = %d, want 3", x.cfg.NodeID, n)
		}
		if st := x.Stats(); st != (Stats{Alive: 3, HealthScore: st.HealthScore}) {
			t.Errorf("%s: Stats = %+v, want 3 alive, not encrypted", x.cfg.NodeID, st)
		}
	}
}

func TestCrashedMemberFails(t *testing.T) {
	g := startDomain(t, "east", 3)
	crashed := g[2]
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}
	for _, x := range g[:2] {
		waitFor(t, x, "failed member", func(ms []Member) bool {
			return stateOfID(ms, crashed.cfg.NodeID) == StateFailed
		})
		ring := x.Ring()
		if len(ring) != 2 || slices.ContainsFunc(ring, func(m Member) bool { return m.ID == crashed.cfg.NodeID }) {
			t.Errorf("%s: Ring = %v, want the two live members", x.cfg.NodeID, ids(ring))
		}
		if st := x.Stats(); st.Alive != 2 || st.Failed != 1 {
			t.Errorf("%s: Stats = %+v, want 2 alive, 1 failed", x.cfg.NodeID, st)
		}
	}
	if _, err := crashed.Join(context.Background(), []string{g[0].LocalMember().GossipAddr}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close = %v, want ErrClosed", err)
	}
	if err := crashed.Leave(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Leave after Close = %v, want ErrClosed", err)
	}
}

func TestLeftMember(t *testing.T) {
	g := startDomain(t, "east", 3)
	leaver := g[2]
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if err := leaver.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for _, x := range g[:2] {
		waitFor(t, x, "left member", func(ms []Member) bool {
			return stateOfID(ms, leaver.cfg.NodeID) == StateLeft
		})
		if ring := x.Ring(); len(ring) != 2 {
			t.Errorf("%s: Ring = %v, want the two live members", x.cfg.NodeID, ids(ring))
		}
	}
	if _, err := leaver.Join(ctx, []string{g[0].LocalMember().GossipAddr}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Leave = %v, want ErrClosed", err)
	}
}

func TestOtherDomainCannotJoin(t *testing.T) {
	east := start(t, fastConfig("east"))
	west := start(t, fastConfig("west"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := west.Join(ctx, []string{east.LocalMember().GossipAddr})
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join across domains = %d, %v; want 0 and a deadline error", n, err)
	}
	for _, x := range []*Gossip{east, west} {
		if ms := x.Members(); len(ms) != 1 {
			t.Errorf("%s: Members = %+v, want itself only", x.cfg.NodeID, ms)
		}
	}
}

func TestDomainFilter(t *testing.T) {
	f := domainFilter{domain: "east"}
	east := &serf.Member{Name: "a", Tags: map[string]string{TagDomain: "east"}}
	west := &serf.Member{Name: "b", Tags: map[string]string{TagDomain: "west"}}
	untagged := &serf.Member{Name: "c"}
	tests := []struct {
		name    string
		members []*serf.Member
		ok      bool
	}{
		{"same domain", []*serf.Member{east}, true},
		{"other domain", []*serf.Member{west}, false},
		{"one of several", []*serf.Member{east, west}, false},
		{"no domain tag", []*serf.Member{untagged}, false},
	}
	for _, tc := range tests {
		if err := f.NotifyMerge(tc.members); (err == nil) != tc.ok {
			t.Errorf("%s: NotifyMerge = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestEncryptedDomain(t *testing.T) {
	key := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	k32, k16, k24 := key("0123456789abcdef0123456789abcdef"), key("fedcba9876543210"), key("abcdefghijklmnopqrstuvwx")
	// Each member encrypts with its first key and decrypts with either, so
	// two members whose primary keys differ still talk.
	keyring := writeFile(t, "keyring", `["`+k32+`", "`+k16+`"]`)
	rotated := writeFile(t, "keyring.lines", k16+"\n\n"+k32+"\n")
	wrong := writeFile(t, "wrong", k24+"\n")

	withKeys := func(path string) Config {
		cfg := fastConfig("east")
		cfg.KeyringFile = path
		return cfg
	}
	a := start(t, withKeys(keyring))
	if !a.Stats().Encrypted {
		t.Fatal("Stats.Encrypted = false with a keyring")
	}
	join(t, start(t, withKeys(rotated)), a)
	waitFor(t, a, "2 alive members", func(ms []Member) bool { return countState(ms, StateAlive) == 2 })

	for name, cfg := range map[string]Config{"no key": fastConfig("east"), "wrong key": withKeys(wrong)} {
		x := start(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 750*time.Millisecond)
		n, err := x.Join(ctx, []string{a.LocalMember().GossipAddr})
		cancel()
		if n != 0 || err == nil {
			t.Errorf("%s: Join = %d, %v; want a failure", name, n, err)
		}
		if ms := x.Members(); len(ms) != 1 {
			t.Errorf("%s: Members = %+v, want itself only", name, ms)
		}
	}
	if n := a.NumMembers(); n != 2 {
		t.Errorf("NumMembers = %d after the failed joins, want 2", n)
	}
}

func TestSubscribe(t *testing.T) {
	a := start(t, fastConfig("east"))
	changed, cancel := a.Subscribe()
	defer cancel()
	idle, cancelIdle := a.Subscribe()

	receive := func(what string) {
		t.Helper()
		select {
		case _, ok := <-changed:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
		case <-time.After(convergeTimeout):
			t.Fatalf("no notification for %s", what)
		}
	}
	receive("the current view")

	b := start(t, fastConfig("east"))
	join(t, b, a)
	receive("the join") // a signal may come before the view shows b
	waitFor(t, a, "b alive", func(ms []Member) bool { return stateOfID(ms, b.cfg.NodeID) == StateAlive })

	// Drain what the join left, then see the failure signalled.
	select {
	case <-changed:
	default:
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(convergeTimeout)
	for stateOfID(a.Members(), b.cfg.NodeID) != StateFailed {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no notification of b's failure; members %+v", a.Members())
		}
	}

	// A subscriber that never reads holds one signal and blocks nothing.
	if len(idle) != 1 {
		t.Fatalf("idle subscriber holds %d signals, want 1", len(idle))
	}
	cancelIdle()
	cancelIdle() // idempotent
	if _, ok := <-idle; !ok {
		t.Fatal("cancel dropped the pending signal")
	}
	if _, ok := <-idle; ok {
		t.Fatal("cancelled channel still open")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for range changed { // drains any pending signal, then ends: Close closed it
	}
	late, _ := a.Subscribe()
	<-late
	if _, ok := <-late; ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
}

func TestJoinRetriesWithBackoff(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	g := startWithClock(t, fastConfig("east"), clk)
	dead := deadAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := g.Join(ctx, []string{dead})
		errc <- err
	}()
	wait, stop := context.WithTimeout(context.Background(), convergeTimeout)
	defer stop()
	backoff := joinBackoffMin
	for range 3 { // each failed attempt arms the backoff timer, doubling it
		if err := clk.BlockUntil(wait, 1); err != nil {
			t.Fatalf("Join did not wait to retry: %v", err)
		}
		clk.Advance(backoff)
		backoff *= 2
	}
	if err := clk.BlockUntil(wait, 1); err != nil {
		t.Fatalf("Join did not wait to retry: %v", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Join = %v, want context.Canceled", err)
	}

	// Close ends the retries too.
	go func() {
		_, err := g.Join(context.Background(), []string{dead})
		errc <- err
	}()
	if err := clk.BlockUntil(wait, 1); err != nil {
		t.Fatalf("Join did not wait to retry: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Join during Close = %v, want ErrClosed", err)
	}
}

func TestJoinWithNothingToJoin(t *testing.T) {
	g := start(t, fastConfig("east"))
	if n, err := g.Join(context.Background(), nil); n != 0 || err != nil {
		t.Fatalf("Join(nil) with no Config.Join = %d, %v; want 0, nil", n, err)
	}
}

func TestJoinUsesConfigJoin(t *testing.T) {
	a := start(t, fastConfig("east"))
	cfg := fastConfig("east")
	cfg.Join = []string{a.LocalMember().GossipAddr}
	b := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if n, err := b.Join(ctx, nil); n != 1 || err != nil {
		t.Fatalf("Join(nil) = %d, %v; want 1, nil", n, err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	bad := fastConfig("east")
	bad.NodeID = "not-an-id"
	if _, err := New(bad, logging.Discard()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a bad config = %v, want ErrInvalidConfig", err)
	}
	cfg := fastConfig("east")
	cfg.KeyringFile = writeFile(t, "keyring", "not base64!\n")
	if _, err := New(cfg, logging.Discard()); !errors.Is(err, ErrBadKeyring) {
		t.Fatalf("New with a bad keyring = %v, want ErrBadKeyring", err)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func sameIDs(a, b []Member) bool { return slices.Equal(ids(a), ids(b)) }

func TestSerfMemberEventLinesAtDebug(t *testing.T) {
	var buf strings.Builder
	w := memberEventsAtDebug{&buf}
	for _, line := range []string{
		"[INFO] serf: EventMemberJoin: 00000000000000a1 127.0.0.1\n",
		"[INFO] serf: attempting reconnect to 00000000000000a1\n",
		"[WARN] serf: EventMemberFailed is not logged at info by serf\n",
	} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(line))
		}
	}
	want := "[DEBUG] serf: EventMemberJoin: 00000000000000a1 127.0.0.1\n" +
		"[INFO] serf: attempting reconnect to 00000000000000a1\n" +
		"[WARN] serf: EventMemberFailed is not logged at info by serf\n"
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
}

func TestJoinErrorIsOneLine(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "no address resolved"},
		{errors.New("failed to join 10.0.0.1:7946: connection refused"), "failed to join 10.0.0.1:7946: connection refused"},
		{multiError{errors.New("failed to join a: EOF"), errors.New("failed to join b: i/o timeout")},
			"failed to join a: EOF (the peer hung up: another domain, or another keyring?); failed to join b: i/o timeout"},
	}
	for _, tc := range tests {
		if got := joinError(tc.err).Error(); got != tc.want {
			t.Errorf("joinError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// multiError mimics go-multierror, which memberlist's Join returns.
type multiError []error

func (m multiError) Error() string          { return fmt.Sprintf("%d errors occurred:\n", len(m)) }
func (m multiError) WrappedErrors() []error { return m }
