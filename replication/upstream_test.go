package replication

import (
	"fmt"
	"slices"
	"testing"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// nP is a member of the parent domain in these tests; nQ another.
const (
	nP crdt.NodeID = 0x50
	nQ crdt.NodeID = 0x51
)

func TestUpstreamRelayPushesEverything(t *testing.T) {
	// B is the relay of its domain A -> B: it pushes the parent P its own
	// entries and A's, which B holds.
	b := newUnit(t, nB, quietCfg)
	b.m.SetMembers(ringOf(nA, nB))
	b.step(nA, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nA, 1, "a1", "x", 0), sampleEntry(nA, 2, "a2", "x", 0)}})
	b.set("k", "v")
	b.m.SetUpstream(Peer{ID: nP, Addr: "addr-p"}, true)
	probes := slices.DeleteFunc(only(b.ready(), MsgProbe), func(e Envelope) bool { return e.To.ID != nP })
	if len(probes) != 1 {
		t.Fatalf("first contact with the upstream should be a probe: %+v", probes)
	}
	// The parent holds entries of its own origin and of another child's.
	b.step(nP, Message{Type: MsgAck, Applied: vv(uint64(nP), 9, uint64(nQ), 3)})
	pushes := only(b.ready(), MsgPush)
	if len(pushes) != 1 || pushes[0].To.ID != nP {
		t.Fatalf("want one push to the upstream: %+v", pushes)
	}
	got := map[crdt.NodeID]int{}
	for _, e := range pushes[0].Msg.Entries {
		got[e.Origin]++
	}
	if got[nA] != 2 || got[nB] != 1 || len(got) != 2 {
		t.Fatalf("pushed per origin %v, want A:2 B:1", got)
	}
	b.step(nP, Message{Type: MsgAck, ID: pushes[0].Msg.ID, Applied: vv(uint64(nA), 2, uint64(nB), 1)})
	if more := only(b.ready(), MsgPush); len(more) != 0 {
		t.Fatalf("the upstream has everything, yet %+v", more)
	}
	st := b.m.Stats()
	if st.Upstream == nil || st.Upstream.ID != nP || !st.UpstreamRelay || st.Upstream.Behind != 0 {
		t.Fatalf("upstream stats %+v relay %v", st.Upstream, st.UpstreamRelay)
	}
}

func TestUpstreamStandbyOnlyProbes(t *testing.T) {
	a := newUnit(t, nA, Config{ProbeTicks: 2, RetransmitTicks: 5})
	a.m.SetMembers(ringOf(nA))
	a.set("k", "v")
	a.m.SetUpstream(Peer{ID: nP, Addr: "addr-p"}, false)
	var probes int
	for range 6 {
		a.m.Tick()
		for _, e := range a.ready() {
			if e.To.ID != nP {
				continue
			}
			if e.Msg.Type != MsgProbe {
				t.Fatalf("a member that does not relay sent the upstream %s", e.Msg.Type)
			}
			probes++
			a.step(nP, Message{Type: MsgAck, Applied: vv(uint64(nP), 1)})
		}
	}
	if probes < 2 {
		t.Fatalf("%d probes to the upstream in 3 rounds", probes)
	}
	if st := a.m.Stats(); st.Upstream == nil || st.Upstream.Behind != 1 || st.UpstreamRelay {
		t.Fatalf("upstream stats %+v: want 1 entry behind, not relaying", st.Upstream)
	}
}

func TestUpstreamHoldsStability(t *testing.T) {
	// With a parent, the parent counts as a member of the domain for its
	// origins: nothing is stable while it lags behind what the domain
	// wrote, and the parent's other origins, which no member here will
	// ever have, do not stop stability.
	rounds := func(u *unit, n int, ack func()) {
		for range n {
			u.m.Tick()
			for _, e := range u.ready() {
				if e.To.ID == nP && e.Msg.Type == MsgProbe {
					ack()
				}
			}
		}
	}
	a := newUnit(t, nA, Config{ProbeTicks: 1, RetransmitTicks: 5})
	a.m.SetMembers(ringOf(nA))
	a.set("k", "v")
	a.set("k", "w")
	a.m.SetUpstream(Peer{ID: nP, Addr: "addr-p"}, false)
	rounds(a, 4, func() {})
	if s := a.m.StableVector(); s != nil {
		t.Fatalf("stable %v before the upstream answered", s)
	}
	rounds(a, 8, func() { a.step(nP, Message{Type: MsgAck, Applied: vv(uint64(nA), 1, uint64(nP), 7)}) })
	if s := a.m.StableVector(); s != nil {
		t.Fatalf("stable %v while the parent lacks A:2", s)
	}
	rounds(a, 8, func() { a.step(nP, Message{Type: MsgAck, Applied: vv(uint64(nA), 2, uint64(nP), 7)}) })
	if s := a.m.StableVector(); s == nil || s.Get(nA) != 2 || s.Get(nP) != 0 {
		t.Fatalf("stable %v, want A:2 (what the parent has of this domain, nothing of its own)", s)
	}
	// Another parent member is unknown until it answers.
	a.m.SetUpstream(Peer{ID: nQ, Addr: "addr-q"}, false)
	if s := a.m.StableVector(); s != nil {
		t.Fatalf("stable %v with a new upstream not heard from", s)
	}
	a.m.ClearUpstream()
	rounds(a, 8, func() {})
	if s := a.m.StableVector(); s.Get(nA) != 2 {
		t.Fatalf("stable %v after the parent was cleared, want A:2", s)
	}
}

func TestUpstreamSyncsByDigestsPastTrim(t *testing.T) {
	// B relays to P, a member of the parent domain whose ring is P alone
	// and which holds a key of its own. B's log no longer reaches back to
	// what P has: a digest sync brings P everything B holds, and P keeps
	// its own key, which B never had.
	b := newUnit(t, nB, quietCfg)
	b.m.SetMembers(ringOf(nB))
	p := newUnit(t, nP, quietCfg)
	p.m.SetMembers(ringOf(nP))
	p.set("parent-own", "1")
	for i := range 5 {
		b.set(fmt.Sprintf("k%d", i), "v")
	}
	b.set("k0", "v2")
	b.st.Trim(nB, 2)
	b.m.SetUpstream(Peer{ID: nP, Addr: "addr-p"}, true)
	// Deliver every message between the two until they fall quiet; P
	// answers B over the link B's message came on (no address).
	for range 50 {
		var moved bool
		for _, e := range b.ready() {
			if e.To.ID == nP {
				p.step(nB, e.Msg)
				moved = true
			}
		}
		for _, e := range p.ready() {
			if e.To.ID == nB {
				if e.To.Addr != "" {
					t.Fatalf("answer to the child's relay addressed to %q: it has no address here", e.To.Addr)
				}
				b.step(nP, e.Msg)
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	if b.m.Stats().SyncsDone == 0 {
		t.Fatalf("no digest sync towards the upstream: %+v", b.m.Stats().Counters)
	}
	now := int64(1_700_000_000_000)
	for i := range 5 {
		k := fmt.Sprintf("k%d", i)
		want := "v"
		if i == 0 {
			want = "v2"
		}
		if v := p.st.View(k, now); !v.Found || string(v.Value) != want {
			t.Fatalf("parent %s = %+v, want %q", k, v, want)
		}
	}
	if v := p.st.View("parent-own", now); !v.Found {
		t.Fatal("the parent lost its own key to the child's sync")
	}
	if got := p.st.Applied().Get(nB); got != 6 {
		t.Fatalf("parent applied B:%d, want B:6", got)
	}
}

func TestHoldCollection(t *testing.T) {
	// A domain with children keeps collecting nothing by stability, yet
	// lets its log go by it.
	a := newUnit(t, nA, Config{ProbeTicks: 1, RetransmitTicks: 5})
	a.m.SetMembers(ringOf(nA))
	a.set("k", "v")
	a.m.HoldCollection(true)
	for range 4 {
		a.m.Tick()
		a.ready()
	}
	if s := a.m.StableVector(); s.Get(nA) != 1 {
		t.Fatalf("stable %v, want A:1", s)
	}
	if c := a.m.CollectVector(); c != nil {
		t.Fatalf("collect %v while held", c)
	}
	if st := a.m.Stats(); st.Collect != nil || st.Stable.Get(nA) != 1 {
		t.Fatalf("stats stable %v collect %v", st.Stable, st.Collect)
	}
	a.m.HoldCollection(false)
	if c := a.m.CollectVector(); c.Get(nA) != 1 {
		t.Fatalf("collect %v once released, want A:1", c)
	}
}
