package gossip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
)

// convergeTimeout bounds every wait for the pool to agree: with the fast
// timings below it converges in well under a second, even under -race.
const convergeTimeout = 15 * time.Second

// nextID makes node IDs unique within the test binary.
var nextID atomic.Uint64

// fastConfig returns a valid config for an in-process member of domain on a
// free loopback port, with timings that converge in a fraction of a second.
func fastConfig(domain string) Config {
	id := nextID.Add(1)
	return Config{
		BindAddr:            "127.0.0.1:0",
		Domain:              domain,
		NodeID:              fmt.Sprintf("%016x", 0xa0000000+id),
		ProtoAddr:           fmt.Sprintf("127.0.0.1:%d", 17000+id),
		ProbeInterval:       100 * time.Millisecond,
		ProbeTimeout:        50 * time.Millisecond,
		GossipInterval:      20 * time.Millisecond,
		SuspicionMult:       2,
		PushPullInterval:    time.Second,
		StreamTimeout:       time.Second,
		LeavePropagateDelay: 50 * time.Millisecond,
	}
}

// start runs a member with cfg, closed at the end of the test.
func start(t *testing.T, cfg Config) *Gossip {
	t.Helper()
	return startWithClock(t, cfg, clock.Real())
}

func startWithClock(t *testing.T, cfg Config, clk clock.Clock) *Gossip {
	t.Helper()
	g, err := newGossip(cfg, logging.NewTest(t), clk)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g
}

// startDomain runs n members of domain, all joined through the first.
func startDomain(t *testing.T, domain string, n int) []*Gossip {
	t.Helper()
	members := make([]*Gossip, n)
	for i := range members {
		members[i] = start(t, fastConfig(domain))
	}
	for _, g := range members[1:] {
		join(t, g, members[0])
	}
	for _, g := range members {
		waitFor(t, g, fmt.Sprintf("%d alive members", n), func(ms []Member) bool {
			return countState(ms, StateAlive) == n
		})
	}
	return members
}

func join(t *testing.T, g, via *Gossip) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if n, err := g.Join(ctx, []string{via.LocalMember().GossipAddr}); err != nil || n != 1 {
		t.Fatalf("Join = %d, %v; want 1, nil", n, err)
	}
}

// waitFor waits, woken by g's notifications rather than by polling, until
// cond holds for g's members.
func waitFor(t *testing.T, g *Gossip, what string, cond func([]Member) bool) {
	t.Helper()
	changed, cancel := g.Subscribe()
	defer cancel()
	deadline := time.NewTimer(convergeTimeout)
	defer deadline.Stop()
	for {
		select {
		case <-changed:
			if cond(g.Members()) {
				return
			}
		case <-deadline.C:
			t.Fatalf("%s: no %s after %v; members: %+v", g.cfg.NodeID, what, convergeTimeout, g.Members())
		}
	}
}

func countState(ms []Member, s State) int {
	n := 0
	for _, m := range ms {
		if m.State == s {
			n++
		}
	}
	return n
}

func stateOfID(ms []Member, id string) State {
	for _, m := range ms {
		if m.ID == id {
			return m.State
		}
	}
	return StateUnknown
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
