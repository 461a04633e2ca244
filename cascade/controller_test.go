package cascade

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func parentOf(domain string, seeds ...string) *Parent { return &Parent{Domain: domain, Seeds: seeds} }

func members(ids ...string) []memberInfo {
	var out []memberInfo
	for _, id := range ids {
		out = append(out, memberInfo{ID: id, Addr: "addr-" + id})
	}
	return out
}

func TestControllerFollowsTheSetting(t *testing.T) {
	c := newController("dc1", "a")
	if c.tick() {
		t.Fatal("a root asks no parent for anything")
	}
	if st, _ := c.state(""); st != StateRoot {
		t.Fatalf("state %s without a parent", st)
	}
	if !c.setParent(parentOf("region", "s1:1", "s2:1")) {
		t.Fatal("a new parent is a change")
	}
	if c.setParent(parentOf("region", "s1:1", "s2:1")) {
		t.Fatal("the same parent again is no change")
	}
	if !c.tick() {
		t.Fatal("nothing is known of the new parent: ask")
	}
	if st, _ := c.state(""); st != StateConnecting {
		t.Fatalf("state %s before any answer", st)
	}
	targets := c.infoTargets()
	if len(targets) != 2 || targets[0].Addr != "s1:1" || targets[0].ID != "" {
		t.Fatalf("before any answer the seeds are asked, by address: %+v", targets)
	}
	if _, err := c.takeInfo(targets[0], &infoResponse{Domain: "elsewhere"}); !errors.Is(err, ErrBadParent) {
		t.Fatalf("an answer of another domain: %v, want ErrBadParent", err)
	}
	res, err := c.takeInfo(targets[0], &infoResponse{Domain: "region", Path: []string{"region", "top"}, Members: members("p", "q", "r")})
	if err != nil || !res.newUpstream || res.cycleChanged {
		t.Fatalf("takeInfo = %+v, %v", res, err)
	}
	if !slices.Equal(c.path, []string{"dc1", "region", "top"}) {
		t.Fatalf("path %v", c.path)
	}
	up, _ := c.upstream()
	if want := preference("a", members("p", "q", "r"))[0]; up != want {
		t.Fatalf("upstream %+v, want the first in this node's order %+v", up, want)
	}
	// Re-parenting forgets the old parent's members and path.
	if !c.setParent(parentOf("region2", "t:1")) || c.up.ID != "" || len(c.members) != 0 || len(c.path) != 1 {
		t.Fatalf("after re-parenting: up %+v members %v path %v", c.up, c.members, c.path)
	}
	if !c.setParent(nil) || c.infoTargets() != nil {
		t.Fatal("clearing the parent leaves nothing to ask")
	}
}

func TestControllerRelayOnlyWhenChosen(t *testing.T) {
	live := []string{"a", "b", "c"}
	relay := chooseRelay("dc1", live)
	for _, self := range live {
		c := newController("dc1", self)
		c.setParent(parentOf("region", "s:1"))
		c.setLive(live)
		if _, err := c.takeInfo(memberInfo{Addr: "s:1"}, &infoResponse{Domain: "region", Path: []string{"region"}, Members: members("p")}); err != nil {
			t.Fatal(err)
		}
		up, push := c.upstream()
		if up.ID != "p" || push != (self == relay) {
			t.Fatalf("node %s: upstream %+v push %v; relay is %s", self, up, push, relay)
		}
		want := StateStandby
		if self == relay {
			want = StateRelaying
		}
		if st, _ := c.state(""); st != want {
			t.Fatalf("node %s: state %s, want %s", self, st, want)
		}
	}
}

func TestControllerFailsOverAcrossTheParent(t *testing.T) {
	c := newController("dc1", "a")
	c.setParent(parentOf("region", "s:1"))
	c.setLive([]string{"a"})
	c.takeInfo(memberInfo{Addr: "s:1"}, &infoResponse{Domain: "region", Path: []string{"region"}, Members: members("p", "q", "r")})
	order := preference("a", members("p", "q", "r"))
	seen := []string{c.up.ID}
	for range 3 {
		prev := c.unresponsive()
		if prev.ID != seen[len(seen)-1] {
			t.Fatalf("gave up on %s, want %s", prev.ID, seen[len(seen)-1])
		}
		if !c.tick() {
			t.Fatal("after a failover the parent is asked again")
		}
		seen = append(seen, c.up.ID)
	}
	want := []string{order[0].ID, order[1].ID, order[2].ID, order[0].ID}
	if !slices.Equal(seen, want) {
		t.Fatalf("upstreams in turn %v, want %v", seen, want)
	}
	// The info answer that follows keeps the upstream while the parent
	// still lists it, and moves it when the parent no longer does.
	keep := c.up
	c.takeInfo(c.up, &infoResponse{Domain: "region", Path: []string{"region"}, Members: members("p", "q", "r")})
	if c.up != keep {
		t.Fatalf("upstream moved from %+v to %+v", keep, c.up)
	}
	var rest []string
	for _, m := range order {
		if m.ID != keep.ID {
			rest = append(rest, m.ID)
		}
	}
	c.takeInfo(memberInfo{ID: rest[0]}, &infoResponse{Domain: "region", Path: []string{"region"}, Members: members(rest...)})
	if c.up.ID == keep.ID || c.up.ID == "" {
		t.Fatalf("upstream %+v after the parent dropped it", c.up)
	}
}

func TestControllerCycle(t *testing.T) {
	c := newController("dc1", "a")
	c.setParent(parentOf("region", "s:1"))
	c.setLive([]string{"a"})
	res, _ := c.takeInfo(memberInfo{Addr: "s:1"}, &infoResponse{Domain: "region", Path: []string{"region", "dc1", "region"}, Members: members("p")})
	if !res.cycleChanged || !c.cycle {
		t.Fatalf("a path through this domain is a cycle: %+v", res)
	}
	if _, push := c.upstream(); push {
		t.Fatal("a relay in a cycle pushes nothing")
	}
	if st, why := c.state(""); st != StateCycle || why == "" {
		t.Fatalf("state %s (%s)", st, why)
	}
	res, _ = c.takeInfo(memberInfo{ID: "p"}, &infoResponse{Domain: "region", Path: []string{"region", "top"}, Members: members("p")})
	if !res.cycleChanged || c.cycle {
		t.Fatal("a path without this domain ends the cycle")
	}
	if _, push := c.upstream(); !push {
		t.Fatal("out of the cycle the relay pushes again")
	}
	// A path longer than maxHops is cut.
	long := make([]string, 3*maxHops)
	for i := range long {
		long[i] = fmt.Sprint("d", i)
	}
	c.takeInfo(memberInfo{ID: "p"}, &infoResponse{Domain: "region", Path: long, Members: members("p")})
	if len(c.path) != maxHops {
		t.Fatalf("path of %d domains kept", len(c.path))
	}
}

func TestParentCheck(t *testing.T) {
	tests := []struct {
		p    Parent
		want error
	}{
		{Parent{Domain: "region", Seeds: []string{"10.0.0.1:7700", "host:1"}}, nil},
		{Parent{Seeds: []string{"h:1"}}, ErrBadParent},
		{Parent{Domain: "dc1", Seeds: []string{"h:1"}}, ErrCycle},
		{Parent{Domain: "region"}, ErrBadParent},
		{Parent{Domain: "region", Seeds: []string{"h"}}, ErrBadParent},
		{Parent{Domain: "region", Seeds: []string{":1"}}, ErrBadParent},
	}
	for _, tc := range tests {
		if err := tc.p.check("dc1"); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("check(%+v) = %v, want %v", tc.p, err, tc.want)
		}
	}
	p := &Parent{Domain: "region", Seeds: []string{"a:1", "b:2"}}
	b, err := encodeParent(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeParent(b)
	if err != nil || !got.equal(p) || got.String() != "region@a:1,b:2" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := decodeParent([]byte{0xc1}); err == nil {
		t.Fatal("a bad setting decoded")
	}
	var none *Parent
	if none.String() != "none" || !none.equal(nil) || none.equal(p) {
		t.Fatal("the empty setting")
	}
}

func TestRendezvous(t *testing.T) {
	ids := []string{"0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004"}
	relay := chooseRelay("dc1", ids)
	// Every order of the same members names the same relay; a member
	// other than the relay leaving changes nothing.
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if chooseRelay("dc1", rev) != relay {
		t.Fatal("the relay depends on the order of the view")
	}
	for _, id := range ids {
		if id == relay {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(ids), func(x string) bool { return x == id })
		if chooseRelay("dc1", rest) != relay {
			t.Fatalf("%s leaving moved the relay", id)
		}
	}
	if chooseRelay("dc1", nil) != "" {
		t.Fatal("no members, no relay")
	}
	// Over many domains each member relays some.
	count := map[string]int{}
	for i := range 400 {
		count[chooseRelay(fmt.Sprint("d", i), ids)]++
	}
	for _, id := range ids {
		if count[id] < 50 {
			t.Fatalf("relays per member over 400 domains: %v", count)
		}
	}
}
