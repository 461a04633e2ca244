package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/replication/simkit"
	"github.com/upu/upu/store"
)

// unit is a Machine over a simkit.Store, driven by hand.
type unit struct {
	t  *testing.T
	id crdt.NodeID
	st *simkit.Store
	m  *Machine
}

func newUnit(t *testing.T, id crdt.NodeID, cfg Config) *unit {
	t.Helper()
	cfg.Self = id
	st := simkit.NewStore(id, func() int64 { return 1_700_000_000_000 })
	m, err := NewMachine(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return &unit{t: t, id: id, st: st, m: m}
}

func (u *unit) set(key, value string) {
	u.t.Helper()
	if res, _ := u.st.Write(store.Write{Op: store.OpSet, Key: []byte(key), Value: []byte(value)}); res.Err != nil {
		u.t.Fatal(res.Err)
	}
	u.m.LocalWrite()
}

// step hands u's machine msg and makes the store write it asks for at
// once, as if the store had no latency; the messages wait for ready.
func (u *unit) step(from crdt.NodeID, msg Message) {
	u.t.Helper()
	if err := u.m.Step(context.Background(), from, msg); err != nil {
		u.t.Fatal(err)
	}
	ws := u.m.writes
	u.m.writes = nil
	for i := range ws {
		u.m.Persisted(&ws[i], ws[i].Apply(context.Background(), u.st))
	}
}

// ready hands out what u's machine has ready (drive).
func (u *unit) ready() []Envelope { return drive(u.m, u.st) }

// drive hands out what m has ready: it makes the writes in st at once, in
// order, reports them, and returns the messages, those the reports caused
// included.
func drive(m *Machine, st StoreWriter) []Envelope {
	var out []Envelope
	for {
		rd := m.Ready()
		out = append(out, rd.Messages...)
		if len(rd.Writes) == 0 {
			return out
		}
		for i := range rd.Writes {
			w := &rd.Writes[i]
			m.Persisted(w, w.Apply(context.Background(), st))
		}
	}
}

// ringOf returns peers in the given order (tests choose rings directly).
func ringOf(ids ...crdt.NodeID) []Peer {
	var ring []Peer
	for _, id := range ids {
		ring = append(ring, Peer{ID: id, Addr: "addr-" + id.String()})
	}
	return ring
}

// only returns the envelopes of one type.
func only(envs []Envelope, typ MsgType) []Envelope {
	return slices.DeleteFunc(envs, func(e Envelope) bool { return e.Msg.Type != typ })
}

// quietCfg never probes on its own during a short test.
var quietCfg = Config{ProbeTicks: 1000, RetransmitTicks: 5}

func TestMachinePushesToSuccessorOnly(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	a.m.SetMembers(ringOf(nA, nB, nC))
	a.set("k", "v")
	envs := a.ready()
	if len(envs) != 1 || envs[0].Msg.Type != MsgProbe || envs[0].To.ID != nB || envs[0].To.Addr != "addr-"+nB.String() {
		t.Fatalf("first contact with the successor should be a probe: %+v", envs)
	}
	a.step(nB, Message{Type: MsgAck, Applied: vv(uint64(nB), 4)})
	envs = a.ready()
	if len(envs) != 1 || envs[0].Msg.Type != MsgPush || envs[0].To.ID != nB {
		t.Fatalf("want one push to the successor: %+v", envs)
	}
	if e := envs[0].Msg.Entries; len(e) != 1 || e[0].Origin != nA || e[0].Seq != 1 || string(e[0].Key) != "k" {
		t.Fatalf("push entries %+v", e)
	}
	if got := a.ready(); len(got) != 0 {
		t.Fatalf("nothing new, yet %+v", got)
	}
}

func TestMachineForwardsAllButSuccessorOrigin(t *testing.T) {
	// B's ring: B -> C -> A. B holds entries of A and C; it forwards A's to
	// C, never C's own.
	b := newUnit(t, nB, quietCfg)
	b.m.SetMembers(ringOf(nB, nC, nA))
	b.step(nA, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nA, 1, "a1", "x", 0), sampleEntry(nA, 2, "a2", "x", 0)}})
	b.step(nC, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nC, 1, "c1", "x", 0)}})
	acks := only(b.ready(), MsgAck)
	if len(acks) != 2 {
		t.Fatalf("acks %+v", acks)
	}
	for _, ack := range acks {
		// An ack of a push speaks only of the origins it carried.
		if want := vv(uint64(ack.To.ID), b.st.Applied().Get(ack.To.ID)); !ack.Msg.Applied.Equal(want) || ack.Msg.ID != 1 {
			t.Fatalf("ack to %s: %+v, want applied %s", ack.To.ID, ack.Msg, want)
		}
	}
	b.step(nC, Message{Type: MsgAck, Applied: nil}) // C has nothing
	pushes := only(b.ready(), MsgPush)
	if len(pushes) != 1 || pushes[0].To.ID != nC {
		t.Fatalf("pushes %+v", pushes)
	}
	for _, e := range pushes[0].Msg.Entries {
		if e.Origin == nC {
			t.Fatalf("pushed C its own entry %s:%d", e.Origin, e.Seq)
		}
	}
	if n := len(pushes[0].Msg.Entries); n != 2 {
		t.Fatalf("pushed %d entries, want A's 2", n)
	}
}

func TestMachineRetransmitsAfterTimeout(t *testing.T) {
	a := newUnit(t, nA, Config{ProbeTicks: 1000, RetransmitTicks: 3, MaxInflight: 1})
	a.m.SetMembers(ringOf(nA, nB))
	a.step(nB, Message{Type: MsgProbe})
	a.set("k1", "v")
	first := only(a.ready(), MsgPush)
	if len(first) != 1 {
		t.Fatalf("want a push, got %+v", first)
	}
	a.set("k2", "v")
	if got := only(a.ready(), MsgPush); len(got) != 0 {
		t.Fatalf("MaxInflight 1, yet a second push: %+v", got)
	}
	for range 2 {
		a.m.Tick()
		if got := only(a.ready(), MsgPush); len(got) != 0 {
			t.Fatalf("retransmitted early: %+v", got)
		}
	}
	if a.m.Unresponsive(nB) {
		t.Fatal("unresponsive before the timeout")
	}
	a.m.Tick()
	again := only(a.ready(), MsgPush)
	if len(again) != 1 || len(again[0].Msg.Entries) != 2 || again[0].Msg.Entries[0].Seq != 1 || again[0].Msg.ID == first[0].Msg.ID {
		t.Fatalf("want everything unacknowledged again under a new ID: %+v", again)
	}
	if !a.m.Unresponsive(nB) || a.m.Stats().Retransmits != 1 {
		t.Fatalf("unresponsive=%v stats=%+v", a.m.Unresponsive(nB), a.m.Stats().Counters)
	}
	// A late ack of the first push still counts, and B answering clears
	// the alarm.
	a.step(nB, Message{Type: MsgAck, ID: first[0].Msg.ID, Applied: vv(uint64(nA), 1)})
	if a.m.Unresponsive(nB) {
		t.Fatal("still unresponsive after an answer")
	}
	a.step(nB, Message{Type: MsgAck, ID: again[0].Msg.ID, Applied: vv(uint64(nA), 2)})
	if got := a.ready(); len(got) != 0 {
		t.Fatalf("all acknowledged, yet %+v", got)
	}
}

func TestMachineGoesBackOnGap(t *testing.T) {
	a := newUnit(t, nA, Config{ProbeTicks: 1000, RetransmitTicks: 100, MaxInflight: 2, MaxBatchEntries: 1})
	a.m.SetMembers(ringOf(nA, nB))
	a.step(nB, Message{Type: MsgProbe})
	a.set("k1", "v")
	a.set("k2", "v")
	a.set("k3", "v")
	pushes := only(a.ready(), MsgPush)
	if len(pushes) != 2 {
		t.Fatalf("want two pushes in flight, got %d", len(pushes))
	}
	// The first was lost: B applied nothing of the second.
	a.step(nB, Message{Type: MsgAck, ID: pushes[1].Msg.ID})
	resent := only(a.ready(), MsgPush)
	if len(resent) != 2 || resent[0].Msg.Entries[0].Seq != 1 || resent[1].Msg.Entries[0].Seq != 2 {
		t.Fatalf("want seq 1 and 2 again, got %+v", resent)
	}
	if a.m.Stats().GoBacks != 1 {
		t.Fatalf("go-backs %d", a.m.Stats().GoBacks)
	}
}

func TestMachineBatchBounds(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		values    []int // value sizes of the writes, in order
		wantSizes []int // entries per push
	}{
		{"by entries", Config{MaxBatchEntries: 2}, []int{1, 1, 1, 1, 1}, []int{2, 2, 1}},
		{"by bytes", Config{MaxBatchBytes: 400}, []int{100, 100, 100, 100}, []int{2, 2}},
		{"an entry over the bound goes alone", Config{MaxBatchBytes: 400}, []int{1000, 10, 10}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ProbeTicks, tt.cfg.MaxInflight = 1000, 100
			a := newUnit(t, nA, tt.cfg)
			a.m.SetMembers(ringOf(nA, nB))
			a.step(nB, Message{Type: MsgProbe})
			for i, n := range tt.values {
				if res, _ := a.st.Write(store.Write{Op: store.OpSet, Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, n)}); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			a.m.LocalWrite()
			var sizes []int
			for _, p := range only(a.ready(), MsgPush) {
				sizes = append(sizes, len(p.Msg.Entries))
				if b := len(AppendMessage(nil, &p.Msg)); len(p.Msg.Entries) > 1 && tt.cfg.MaxBatchBytes > 0 && b > tt.cfg.MaxBatchBytes+16 {
					t.Errorf("push of %d bytes, bound %d", b, tt.cfg.MaxBatchBytes)
				}
			}
			if !slices.Equal(sizes, tt.wantSizes) {
				t.Fatalf("push sizes %v, want %v", sizes, tt.wantSizes)
			}
		})
	}
}

func TestMachineIgnoresPushesOfOwnOrigin(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	a.m.SetMembers(ringOf(nA, nB))
	a.step(nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nA, 1, "forged", "x", 0), sampleEntry(nB, 1, "b", "x", 0)}})
	if got := a.st.Applied(); !got.Equal(vv(uint64(nB), 1)) {
		t.Fatalf("applied %s: a peer extended this node's own origin", got)
	}
}

func TestMachineUnknownMessage(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	if err := a.m.Step(context.Background(), nB, Message{Type: 42}); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("got %v", err)
	}
}

func TestMachineStoreFailureNotAcked(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	a.m.SetMembers(ringOf(nA, nB))
	a.st.FailApply = func() (bool, int) { return true, 0 }
	if err := a.m.Step(context.Background(), nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "b", "x", 0)}}); err != nil {
		t.Fatal(err)
	}
	rd := a.m.Ready()
	if len(rd.Writes) != 1 {
		t.Fatalf("want the push as one write: %+v", rd.Writes)
	}
	err := rd.Writes[0].Apply(context.Background(), a.st)
	if !errors.Is(err, simkit.ErrInjected) {
		t.Fatalf("got %v", err)
	}
	a.m.Persisted(&rd.Writes[0], err)
	if got := only(a.ready(), MsgAck); len(got) != 0 {
		t.Fatalf("acknowledged a push the store refused: %+v", got)
	}
	if st := a.m.Stats(); st.WriteErrors != 1 || st.EntriesApplied != 0 {
		t.Fatalf("stats %+v", st.Counters)
	}
}

// TestMachineAckWaitsForPersisted: Step only reads; a push is acknowledged
// once its write is reported made, and ticks, probes and their acks go on
// while it is not.
func TestMachineAckWaitsForPersisted(t *testing.T) {
	a := newUnit(t, nA, Config{ProbeTicks: 2, RetransmitTicks: 5})
	a.m.SetMembers(ringOf(nA, nB))
	if err := a.m.Step(context.Background(), nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "b", "x", 0)}}); err != nil {
		t.Fatal(err)
	}
	rd := a.m.Ready()
	if len(rd.Writes) != 1 || len(only(rd.Messages, MsgAck)) != 0 {
		t.Fatalf("want one write and no ack yet: %+v", rd)
	}
	if got := a.st.Applied().Get(nB); got != 0 {
		t.Fatalf("Step wrote: applied %d", got)
	}
	// The write is slow: the machine still ticks, probes and answers.
	for range 4 {
		a.m.Tick()
	}
	a.step(nB, Message{Type: MsgProbe, Applied: vv(uint64(nB), 1)})
	pending := a.m.Ready().Messages
	if len(only(slices.Clone(pending), MsgProbe)) == 0 || len(only(pending, MsgAck)) != 1 {
		t.Fatalf("want a probe and the probe's ack while the write is pending: %+v", pending)
	}
	w := &rd.Writes[0]
	a.m.Persisted(w, w.Apply(context.Background(), a.st))
	acks := only(a.m.Ready().Messages, MsgAck)
	if len(acks) != 1 || acks[0].Msg.ID != 1 || !acks[0].Msg.Applied.Equal(vv(uint64(nB), 1)) {
		t.Fatalf("want the push's ack once persisted: %+v", acks)
	}
}

// TestMachineRepliesOffRing: a push from a node outside this node's ring
// (its view lags) is applied and acknowledged back to it by ID alone, for
// the transport to send over the link the push came on.
func TestMachineRepliesOffRing(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	a.m.SetMembers(ringOf(nA))
	a.step(nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "b", "x", 0)}})
	got := a.ready()
	if len(got) != 1 || got[0].To != (Peer{ID: nB}) || got[0].Msg.Type != MsgAck || got[0].Msg.ID != 1 {
		t.Fatalf("answer to a node off the ring: %+v, want one ack to %s with no address", got, nB)
	}
	if st := a.m.Stats(); st.OffRingReplies != 1 || st.EntriesApplied != 1 {
		t.Fatalf("stats %+v", st.Counters)
	}
}

// TestMachineRepairWaitsARound: anti-entropy sends a probed member only
// what this node has held for a whole round; newer entries are left to the
// ring.
func TestMachineRepairWaitsARound(t *testing.T) {
	c := newUnit(t, nC, Config{ProbeTicks: 10, RetransmitTicks: 100})
	// C's ring: C -> A -> B; B is the random partner (A is the successor,
	// B the predecessor).
	c.m.SetMembers(ringOf(nC, nA, nB))
	c.step(nA, Message{Type: MsgProbe, Applied: vv(uint64(nA), 100)})
	c.step(nB, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "b1", "x", 0)}})
	c.set("old", "x")
	for range 20 { // two rounds: "old" and b1 are now aged
		c.m.Tick()
	}
	c.ready()
	c.set("new", "x")
	c.step(nB, Message{Type: MsgProbe}) // B says it has nothing
	var repair []store.LogEntry
	for _, e := range c.ready() {
		if e.To.ID == nB && e.Msg.Type == MsgPush {
			repair = append(repair, e.Msg.Entries...)
		}
	}
	if len(repair) != 1 || string(repair[0].Key) != "old" {
		t.Fatalf("repair to B sent %+v, want only C's aged entry (not B's own, not the new one)", repair)
	}
}

func TestMachineRingChanges(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	if _, ok := a.m.Successor(); ok {
		t.Fatal("successor before any members")
	}
	a.m.SetMembers(ringOf(nA))
	if _, ok := a.m.Successor(); ok {
		t.Fatal("alone, yet a successor")
	}
	a.m.SetMembers(ringOf(nB, nC, nA))
	if s, _ := a.m.Successor(); s.ID != nB {
		t.Fatalf("successor %s, want the wrap-around %s", s.ID, nB)
	}
	a.set("k", "v")
	a.step(nB, Message{Type: MsgProbe})
	if p := only(a.ready(), MsgPush); len(p) != 1 {
		t.Fatalf("pushes %+v", p)
	}
	// B fails: C becomes the successor and gets what B had in flight.
	a.m.SetMembers(ringOf(nC, nA))
	if s, _ := a.m.Successor(); s.ID != nC {
		t.Fatalf("successor %s, want %s", s.ID, nC)
	}
	envs := a.ready()
	if len(envs) != 1 || envs[0].To.ID != nC || envs[0].Msg.Type != MsgProbe {
		t.Fatalf("want a probe to the new successor: %+v", envs)
	}
	a.step(nC, Message{Type: MsgAck})
	if p := only(a.ready(), MsgPush); len(p) != 1 || p[0].To.ID != nC {
		t.Fatalf("pushes %+v", p)
	}
	// Not in the ring: no successor, but it still answers.
	a.m.SetMembers(ringOf(nB, nC))
	if _, ok := a.m.Successor(); ok {
		t.Fatal("absent from the ring, yet a successor")
	}
	a.step(nB, Message{Type: MsgProbe})
	if acks := only(a.ready(), MsgAck); len(acks) != 1 {
		t.Fatalf("acks %+v", acks)
	}
}

func TestMachineStatsLag(t *testing.T) {
	a := newUnit(t, nA, quietCfg)
	a.m.SetMembers(ringOf(nA, nB))
	a.step(nC, Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nC, 1, "c", "x", 0), sampleEntry(nC, 2, "c", "y", 0)}})
	a.set("k", "v")
	a.step(nB, Message{Type: MsgProbe, Applied: vv(uint64(nC), 1)})
	st := a.m.Stats()
	if len(st.Peers) != 1 {
		t.Fatalf("peers %+v", st.Peers)
	}
	p := st.Peers[0]
	if p.ID != nB || !p.Successor || !p.Predecessor || !p.Heard || p.Behind != 2 || !p.Lag.Equal(vv(uint64(nA), 1, uint64(nC), 1)) {
		t.Fatalf("peer stats %+v", p)
	}
	if st.Successor != nB || st.Members != 2 || !st.Applied.Equal(vv(uint64(nA), 1, uint64(nC), 2)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Self: 1}, true},
		{"no self", Config{}, false},
		{"negative ticks", Config{Self: 1, RetransmitTicks: -1}, false},
		{"negative interval", Config{Self: 1, TickInterval: -1}, false},
		{"batch too large", Config{Self: 1, MaxBatchEntries: maxItems + 1}, false},
		{"negative queue", Config{Self: 1, SendQueue: -5, InboxSize: -1}, false},
		{"digest bits", Config{Self: 1, DigestBits: 16, ResyncAfter: time.Minute}, true},
		{"too many digest bits", Config{Self: 1, DigestBits: 17}, false},
		{"negative digest bits", Config{Self: 1, DigestBits: -1}, false},
		{"negative resync horizon", Config{Self: 1, ResyncAfter: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	if _, err := NewMachine(Config{}, simkit.NewStore(1, nil)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewMachine with an invalid config: %v", err)
	}
	if _, err := NewMachine(Config{Self: 1}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewMachine without a store: %v", err)
	}
	if d := DefaultConfig(); d.withDefaults() != (Config{}).withDefaults() {
		t.Fatalf("zero config does not mean the defaults")
	}
}

// BenchmarkMachineRoundTrip measures the machines' own cost per replicated
// write between two nodes: write, push, apply, ack (simkit.Stores; encoding as
// the transport would do it).
func BenchmarkMachineRoundTrip(b *testing.B) {
	ctx := context.Background()
	mk := func(id crdt.NodeID) (*simkit.Store, *Machine) {
		st := simkit.NewStore(id, func() int64 { return 1_700_000_000_000 })
		m, err := NewMachine(Config{Self: id, ProbeTicks: 1 << 20, RetransmitTicks: 1 << 20}, st)
		if err != nil {
			b.Fatal(err)
		}
		m.SetMembers(ringOf(nA, nB))
		return st, m
	}
	sa, a := mk(nA)
	sb, bm := mk(nB)
	deliver := func(from crdt.NodeID, to *Machine, envs []Envelope) {
		for i := range envs {
			msg, err := UnmarshalMessage(AppendMessage(nil, &envs[i].Msg))
			if err != nil {
				b.Fatal(err)
			}
			if err := to.Step(ctx, from, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	value := make([]byte, 100)
	key := []byte("key")
	b.ReportAllocs()
	for b.Loop() {
		sa.Write(store.Write{Op: store.OpSet, Key: key, Value: value})
		a.LocalWrite()
		deliver(nA, bm, drive(a, sa))
		deliver(nB, a, drive(bm, sb))
	}
	if a.Stats().EntriesSent != uint64(b.N) {
		b.Fatalf("sent %d entries for %d writes", a.Stats().EntriesSent, b.N)
	}
}
