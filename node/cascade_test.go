package node

import (
	"context"
	"errors"
	"testing"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// TestCascadeThreeLevels: dc1 (two nodes) -> region -> top, parents set on
// running nodes: a write in dc1 reaches region and top, deletes and
// counters too; a key written at top is found from dc1 only with scope up
// or root, and the answer names top.
func TestCascadeThreeLevels(t *testing.T) {
	ctx := context.Background()
	top := startMember(t, Config{Domain: "top"})
	region := startMember(t, Config{Domain: "region"})
	dc1a := startMember(t, Config{Domain: "dc1"})
	dc1b := startMember(t, Config{Domain: "dc1"}, dc1a)
	eventually(t, "dc1 has two members", func() bool { return dc1a.domain.gossip.NumMembers() == 2 })

	if err := region.domain.casc.SetParent(ctx, "top", []string{top.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	// Set on one member of dc1: the other follows by replication.
	if err := dc1b.domain.casc.SetParent(ctx, "region", []string{region.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both dc1 members follow the parent", func() bool {
		for _, n := range []*Node{dc1a, dc1b} {
			if st := n.domain.casc.Status(); st.Parent != "region" || len(st.Path) != 3 {
				return false
			}
		}
		return true
	})
	relays := 0
	for _, n := range []*Node{dc1a, dc1b} {
		if n.domain.casc.Status().State == cascade.StateRelaying {
			relays++
		}
	}
	if relays != 1 {
		t.Fatalf("%d relays in dc1, want 1", relays)
	}

	leaf := newClient(t, dc1a, protocol.RoleClient, "")
	leafB := newClient(t, dc1b, protocol.RoleClient, "")
	mid := newClient(t, region, protocol.RoleClient, "")
	root := newClient(t, top, protocol.RoleClient, "")
	if _, err := leaf.Set(ctx, []byte("k"), []byte("from-dc1")); err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Incr(ctx, []byte("n"), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := leafB.Incr(ctx, []byte("n"), 3); err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*client.Client{"region": mid, "top": root} {
		eventually(t, name+" has dc1's writes", func() bool {
			return valueOn(cl, "k") == "from-dc1" && valueOn(cl, "n") == "5"
		})
	}
	if err := leafB.Del(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the delete reaches top", func() bool {
		_, err := root.Get(ctx, []byte("k"))
		return errors.Is(err, client.ErrNotFound)
	})

	if _, err := root.Set(ctx, []byte("t"), []byte("at-top")); err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Get(ctx, []byte("t")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("scope local at dc1 of a key written at top: %v, want not found", err)
	}
	for _, scope := range []protocol.Scope{protocol.ScopeUp, protocol.ScopeRoot} {
		it, err := leaf.Get(ctx, []byte("t"), client.WithScope(scope))
		if err != nil || string(it.Value) != "at-top" {
			t.Fatalf("scope %d at dc1: %q, %v; want at-top", scope, it.Value, err)
		}
	}
	// Nothing flows down.
	if _, err := mid.Get(ctx, []byte("t")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a key written at top reached region: %v", err)
	}
	eventually(t, "region lists dc1 as its child", func() bool {
		ch := region.domain.casc.Status().Children
		return len(ch) == 1 && ch[0].Domain == "dc1"
	})
}

// TestCascadeSetParentRefusals: a parent that would make a cycle, that is
// not the domain named, or that no seed reaches is refused.
func TestCascadeSetParentRefusals(t *testing.T) {
	ctx := context.Background()
	top := startMember(t, Config{Domain: "top"})
	region := startMember(t, Config{Domain: "region"})
	if err := region.domain.casc.SetParent(ctx, "top", []string{top.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "region knows its path", func() bool { return len(region.domain.casc.Status().Path) == 2 })
	tests := []struct {
		name   string
		domain string
		seeds  []string
		want   error
	}{
		{"cycle through a child", "region", []string{region.Addr().String()}, cascade.ErrCycle},
		{"itself", "top", []string{top.Addr().String()}, cascade.ErrCycle},
		{"another domain at the seed", "elsewhere", []string{region.Addr().String()}, cascade.ErrBadParent},
		{"no seed", "region", nil, cascade.ErrBadParent},
		{"bad seed", "region", []string{"nohostport"}, cascade.ErrBadParent},
		{"unreachable", "region", []string{"127.0.0.1:1"}, cascade.ErrParentUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := top.domain.casc.SetParent(ctx, tc.domain, tc.seeds); !errors.Is(err, tc.want) {
				t.Fatalf("SetParent(%s, %v) = %v, want %v", tc.domain, tc.seeds, err, tc.want)
			}
		})
	}
	if st := top.domain.casc.Status(); st.Parent != "" || st.State != cascade.StateRoot {
		t.Fatalf("a refused setting changed the status: %+v", st)
	}
}

// TestCascadeRelayFailoverAndReparent: when dc1's relay stops, the other
// member relays and its writes reach the parent; dc1 moved under another
// parent gives it everything it holds; cleared, it relays nothing more.
func TestCascadeRelayFailoverAndReparent(t *testing.T) {
	ctx := context.Background()
	region := startMember(t, Config{Domain: "region"})
	region2 := startMember(t, Config{Domain: "region2"})
	a := startMember(t, Config{Domain: "dc1"})
	b := startMember(t, Config{Domain: "dc1"}, a)
	eventually(t, "dc1 has two members", func() bool { return a.domain.gossip.NumMembers() == 2 })
	if err := a.Cascade().SetParent(ctx, "region", []string{region.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	var relay, other *Node
	eventually(t, "dc1 has a relay", func() bool {
		for _, n := range []*Node{a, b} {
			if n.Cascade().Status().State == cascade.StateRelaying {
				relay = n
			}
		}
		return relay != nil
	})
	other = a
	if relay == a {
		other = b
	}
	up := newClient(t, region, protocol.RoleClient, "")
	cl := newClient(t, other, protocol.RoleClient, "")
	if _, err := cl.Set(ctx, []byte("before"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a write reaches region", func() bool { return valueOn(up, "before") == "1" })

	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other member relays", func() bool { return other.Cascade().Status().State == cascade.StateRelaying })
	if _, err := cl.Set(ctx, []byte("after"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a write made after the failover reaches region", func() bool { return valueOn(up, "after") == "2" })

	if err := other.Cascade().SetParent(ctx, "region2", []string{region2.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	up2 := newClient(t, region2, protocol.RoleClient, "")
	eventually(t, "the new parent receives everything dc1 holds", func() bool {
		return valueOn(up2, "before") == "1" && valueOn(up2, "after") == "2"
	})
	if err := other.Cascade().ClearParent(ctx); err != nil {
		t.Fatal(err)
	}
	if st := other.Cascade().Status(); st.State != cascade.StateRoot || st.Parent != "" {
		t.Fatalf("after clear-parent: %+v", st)
	}
	if _, err := cl.Set(ctx, []byte("cleared"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	// Scoped reads now answer locally, naming dc1.
	it, err := cl.Get(ctx, []byte("cleared"), client.WithScope(protocol.ScopeRoot))
	if err != nil || it.Domain != "dc1" {
		t.Fatalf("scope root at a root: %+v, %v", it, err)
	}
	// Nothing pushes to the old parent any more.
	eventually(t, "replication has no upstream", func() bool { return other.domain.repl.Stats().Upstream == nil })
	if _, err := up2.Get(ctx, []byte("cleared")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a write made after clear-parent reached the old parent: %v", err)
	}
}
