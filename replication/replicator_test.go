package replication

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/replication/crdt"
	"github.com/upu/upu/store"
)

// The node hands the Replicator its gossip pool.
var _ MemberSource = (*gossip.Gossip)(nil)

// lockedStore lets a test write to a memStore while a Replicator uses it.
type lockedStore struct {
	mu sync.Mutex
	s  *memStore
	// gate, when set, holds ApplyRemote until it is closed or its context
	// ends.
	gate chan struct{}
}

func (l *lockedStore) Applied() crdt.VersionVector {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Applied()
}

func (l *lockedStore) ReadLog(o crdt.NodeID, from uint64, limit int) ([]store.LogEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.ReadLog(o, from, limit)
}

func (l *lockedStore) Scan(ctx context.Context, start []byte, limit int, fn func([]byte, crdt.Record) bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Scan(ctx, start, limit, fn)
}

func (l *lockedStore) ApplyRemote(ctx context.Context, e []store.LogEntry) (int, error) {
	if l.gate != nil {
		select {
		case <-l.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.ApplyRemote(ctx, e)
}

func (l *lockedStore) MergeRecord(ctx context.Context, k []byte, r crdt.Record, seen crdt.VersionVector) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.MergeRecord(ctx, k, r, seen)
}

func (l *lockedStore) RaiseApplied(ctx context.Context, v crdt.VersionVector) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.RaiseApplied(ctx, v)
}

func (l *lockedStore) set(t *testing.T, key, value string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if res, _ := l.s.write(store.Write{Op: store.OpSet, Key: []byte(key), Value: []byte(value)}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func (l *lockedStore) digest() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.digest(0)
}

// fakeMembers is a MemberSource whose ring the test sets.
type fakeMembers struct {
	mu   sync.Mutex
	ring []gossip.Member
	subs []chan struct{}
}

func (f *fakeMembers) Ring() []gossip.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return gossip.BuildRing(f.ring)
}

func (f *fakeMembers) Subscribe() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

func (f *fakeMembers) set(ids []crdt.NodeID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring = f.ring[:0]
	for _, id := range ids {
		f.ring = append(f.ring, gossip.Member{ID: id.String(), Addr: "addr-" + id.String(), State: gossip.StateAlive})
	}
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// hub is a Transport that hands every message, encoded and decoded, to the
// addressed Replicator. A node in blocked never gets anything: Send to it
// waits for its context, like a dial to a black hole.
type hub struct {
	mu      sync.Mutex
	from    crdt.NodeID
	reps    map[crdt.NodeID]*Replicator
	blocked map[crdt.NodeID]bool
}

type hubSender struct {
	h    *hub
	from crdt.NodeID
}

func (s hubSender) Send(ctx context.Context, to Peer, msg Message) error {
	s.h.mu.Lock()
	r, blocked := s.h.reps[to.ID], s.h.blocked[to.ID]
	s.h.mu.Unlock()
	if blocked {
		<-ctx.Done()
		return ctx.Err()
	}
	if r == nil || to.Addr != "addr-"+to.ID.String() {
		return errors.New("no such peer")
	}
	m, err := UnmarshalMessage(AppendMessage(nil, &msg))
	if err != nil {
		return err
	}
	return r.Deliver(s.from, m)
}

type testDomain struct {
	clk     *clock.Fake
	members *fakeMembers
	hub     *hub
	ids     []crdt.NodeID
	stores  map[crdt.NodeID]*lockedStore
	reps    map[crdt.NodeID]*Replicator
	hooks   map[crdt.NodeID]*logtest.Hook
	ticks   uint64 // ticks advanced so far
}

func newTestDomain(t *testing.T, ids ...crdt.NodeID) *testDomain {
	t.Helper()
	d := &testDomain{
		clk:     clock.NewFake(time.UnixMilli(1_700_000_000_000)),
		members: &fakeMembers{},
		hub:     &hub{reps: map[crdt.NodeID]*Replicator{}, blocked: map[crdt.NodeID]bool{}},
		ids:     ids,
		stores:  map[crdt.NodeID]*lockedStore{},
		reps:    map[crdt.NodeID]*Replicator{},
		hooks:   map[crdt.NodeID]*logtest.Hook{},
	}
	d.members.set(ids)
	for _, id := range ids {
		st := &lockedStore{s: newMemStore(id, func() int64 { return 1_700_000_000_000 })}
		logger, hook := logtest.NewNullLogger()
		logger.SetLevel(logrus.DebugLevel)
		r, err := New(Config{Self: id, TickInterval: 10 * time.Millisecond, ProbeTicks: 4, RetransmitTicks: 3, SendQueue: 4},
			st, d.members, hubSender{h: d.hub, from: id}, d.clk, logrus.NewEntry(logger))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		d.stores[id], d.reps[id], d.hooks[id] = st, r, hook
		d.hub.mu.Lock()
		d.hub.reps[id] = r
		d.hub.mu.Unlock()
	}
	// Tick only once every loop waits on its ticker.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.clk.BlockUntil(ctx, len(ids)); err != nil {
		t.Fatal(err)
	}
	return d
}

// tickUntil advances the clock a tick at a time until cond holds, letting
// every open Replicator take each tick before the next (a ticker holds one
// tick and drops the rest). It fails after a bounded number of ticks.
func (d *testDomain) tickUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 2000 {
			t.Fatalf("%s: not after %d ticks", what, i)
		}
		d.tick(t)
	}
}

func (d *testDomain) tick(t *testing.T) {
	t.Helper()
	want := d.ticks + 1
	d.clk.Advance(10 * time.Millisecond)
	d.ticks = want
	for _, id := range d.ids {
		r := d.reps[id]
		waitFor(t, func() bool { return r.isClosed() || r.Stats().Tick >= want })
	}
}

// waitFor polls cond, for what no channel signals: a loop goroutine
// having taken a tick.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func (r *Replicator) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (d *testDomain) sameApplied(ids ...crdt.NodeID) bool {
	first := d.stores[ids[0]].Applied()
	for _, id := range ids[1:] {
		if !d.stores[id].Applied().Equal(first) {
			return false
		}
	}
	return true
}

func countLogs(h *logtest.Hook, level logrus.Level, msg string) int {
	n := 0
	for _, e := range h.AllEntries() {
		if e.Level == level && strings.HasPrefix(e.Message, msg) {
			n++
		}
	}
	return n
}

func TestReplicatorConverges(t *testing.T) {
	d := newTestDomain(t, nA, nB, nC)
	for i, id := range d.ids {
		for k := range 20 {
			d.stores[id].set(t, string(rune('a'+i))+string(rune('a'+k)), "v")
			d.reps[id].Notify()
		}
	}
	d.tickUntil(t, "convergence", func() bool {
		return d.sameApplied(d.ids...) && len(d.stores[nA].Applied()) == 3
	})
	if a, b, c := d.stores[nA].digest(), d.stores[nB].digest(), d.stores[nC].digest(); a != b || b != c {
		t.Fatalf("digests %s %s %s", a, b, c)
	}
	d.tickUntil(t, "stats published", func() bool { return d.reps[nA].Stats().Tick > 0 })
	st := d.reps[nA].Stats()
	if st.Successor == 0 || st.PushesSent == 0 || st.BytesSent == 0 || st.Members != 3 {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range d.ids {
		if n := countLogs(d.hooks[id], logrus.InfoLevel, "replication successor changed"); n != 1 {
			t.Fatalf("%s logged %d successor changes, want 1", id, n)
		}
		if countLogs(d.hooks[id], logrus.DebugLevel, "replication send") == 0 {
			t.Fatalf("%s logged no sends at debug", id)
		}
	}
	r := d.reps[nA]
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Deliver(nB, Message{Type: MsgProbe}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver after Close: %v", err)
	}
	r.Notify() // must not block or panic
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplicatorDeadSuccessor: A's successor B takes nothing (every send
// to it hangs). A warns once; anti-entropy still brings A's writes to C;
// once gossip drops B, C becomes A's successor; Close does not hang on the
// stuck sends.
func TestReplicatorDeadSuccessor(t *testing.T) {
	d := newTestDomain(t, nA, nB, nC)
	d.tickUntil(t, "ring formed", func() bool { return d.reps[nA].Stats().Successor != 0 })
	bad := d.reps[nA].Stats().Successor
	other := nB
	if bad == nB {
		other = nC
	}
	d.hub.mu.Lock()
	d.hub.blocked[bad] = true
	d.hub.mu.Unlock()
	for k := range 10 {
		d.stores[nA].set(t, "k"+string(rune('a'+k)), "v")
		d.reps[nA].Notify()
	}
	warned := func() int { return countLogs(d.hooks[nA], logrus.WarnLevel, "replication successor not answering") }
	d.tickUntil(t, "A's writes reach the live node by anti-entropy", func() bool {
		return d.stores[other].Applied().Get(nA) == 10 && warned() > 0
	})
	for range 20 {
		d.tick(t)
	}
	if n := warned(); n != 1 {
		t.Fatalf("A warned %d times of its dead successor, want once", n)
	}
	d.members.set([]crdt.NodeID{nA, other})
	d.tickUntil(t, "new successor", func() bool { return d.reps[nA].Stats().Successor == other })
	if st := d.reps[nA].Stats(); st.Transport.QueueDropped == 0 {
		t.Fatalf("a full queue to the dead peer should drop: %+v", st.Transport)
	}
	done := make(chan struct{})
	go func() {
		d.reps[nA].Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on a stuck send")
	}
}

func TestReplicatorInboxBounded(t *testing.T) {
	st := &lockedStore{s: newMemStore(nA, func() int64 { return 0 }), gate: make(chan struct{})}
	members := &fakeMembers{}
	members.set([]crdt.NodeID{nA, nB})
	r, err := New(Config{Self: nA, InboxSize: 1}, st, members, hubSender{h: &hub{}}, clock.NewFake(time.Unix(0, 0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	push := Message{Type: MsgPush, ID: 1, Entries: []store.LogEntry{sampleEntry(nB, 1, "k", "v", 0)}}
	var busy bool
	// The loop takes one push and blocks in the store; one more fits the
	// inbox; the next is refused.
	for range 1000 {
		if err := r.Deliver(nB, push); errors.Is(err, ErrBusy) {
			busy = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !busy {
		t.Fatal("Deliver never refused with the loop stuck")
	}
	if r.Stats().Transport.InboxDropped == 0 {
		t.Fatal("refusal not counted")
	}
	// Close cancels the store call the loop is stuck in.
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on a blocked store call")
	}
}

func TestReplicatorNewValidates(t *testing.T) {
	st := &lockedStore{s: newMemStore(nA, nil)}
	if _, err := New(Config{}, st, &fakeMembers{}, hubSender{}, clock.Real(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no Self: %v", err)
	}
	if _, err := New(Config{Self: nA}, st, nil, hubSender{}, clock.Real(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no members: %v", err)
	}
}
