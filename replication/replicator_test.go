package replication

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/replication/simkit"
	"github.com/upu/upu/store"
)

// The node hands the Replicator its gossip pool.
var _ MemberSource = (*gossip.Gossip)(nil)

// lockedStore lets a test write to a simkit.Store while a Replicator uses it.
type lockedStore struct {
	mu sync.Mutex
	s  *simkit.Store
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

func (l *lockedStore) ScanSystem(ctx context.Context, fn func([]byte, crdt.Record) bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.ScanSystem(ctx, fn)
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

func (l *lockedStore) MergeRecords(ctx context.Context, recs []store.KeyRecord, seen crdt.VersionVector) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.MergeRecords(ctx, recs, seen)
}

func (l *lockedStore) BucketDigests(ctx context.Context, bits uint) ([]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.BucketDigests(ctx, bits)
}

func (l *lockedStore) SetStable(vv crdt.VersionVector) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s.SetStable(vv)
}

func (l *lockedStore) LastContact() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.LastContact()
}

func (l *lockedStore) SetLastContact(ctx context.Context, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetLastContact(ctx, t)
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
	if res, _ := l.s.Write(store.Write{Op: store.OpSet, Key: []byte(key), Value: []byte(value)}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func (l *lockedStore) digest() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Digest(0)
}

// fakeMembers is a MemberSource whose members the test sets.
type fakeMembers struct {
	mu      sync.Mutex
	members []gossip.Member
	subs    []chan struct{}
}

func (f *fakeMembers) Ring() []gossip.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return gossip.BuildRing(f.members)
}

func (f *fakeMembers) Members() []gossip.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *fakeMembers) Subscribe() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

// set makes ids the alive members and forgets the others.
func (f *fakeMembers) set(ids []crdt.NodeID) {
	states := make(map[crdt.NodeID]gossip.State, len(ids))
	for _, id := range ids {
		states[id] = gossip.StateAlive
	}
	f.setStates(states)
}

// setStates sets the members and their states.
func (f *fakeMembers) setStates(states map[crdt.NodeID]gossip.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = f.members[:0]
	for id, state := range states {
		f.members = append(f.members, gossip.Member{ID: id.String(), Addr: "addr-" + id.String(), State: state})
	}
	slices.SortFunc(f.members, func(a, b gossip.Member) int { return strings.Compare(a.ID, b.ID) })
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// hub is a Transport that hands every message, encoded and decoded, to the
// addressed Replicator. A node in blocked never gets anything: Send to it
// waits for its context, like a dial to a black hole. drop, when set, loses
// the messages it returns true for.
type hub struct {
	mu      sync.Mutex
	from    crdt.NodeID
	reps    map[crdt.NodeID]*Replicator
	blocked map[crdt.NodeID]bool
	drop    func(from, to crdt.NodeID, msg *Message) bool
}

func (h *hub) setDrop(drop func(from, to crdt.NodeID, msg *Message) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop = drop
}

type hubSender struct {
	h    *hub
	from crdt.NodeID
}

func (s hubSender) Send(ctx context.Context, to Peer, msg Message) error {
	s.h.mu.Lock()
	r, blocked, drop := s.h.reps[to.ID], s.h.blocked[to.ID], s.h.drop
	s.h.mu.Unlock()
	if blocked {
		<-ctx.Done()
		return ctx.Err()
	}
	if drop != nil && drop(s.from, to.ID, &msg) {
		return errors.New("lost")
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
	// logHooks are what start gives each node's Replicator; none when absent.
	logHooks map[crdt.NodeID]LogHooks
}

func newTestDomain(t *testing.T, ids ...crdt.NodeID) *testDomain {
	t.Helper()
	return newTestDomainWith(t, nil, ids...)
}

// newTestDomainWith is newTestDomain with prepare, when not nil, called for
// each node's config and store before its Replicator starts.
func newTestDomainWith(t *testing.T, prepare func(id crdt.NodeID, cfg *Config, st *simkit.Store), ids ...crdt.NodeID) *testDomain {
	t.Helper()
	d := &testDomain{
		clk:     clock.NewFake(time.UnixMilli(1_700_000_000_000)),
		members: &fakeMembers{},
		hub:     &hub{reps: map[crdt.NodeID]*Replicator{}, blocked: map[crdt.NodeID]bool{}},
		ids:     ids,
		stores:  map[crdt.NodeID]*lockedStore{},
		reps:    map[crdt.NodeID]*Replicator{},
		hooks:   map[crdt.NodeID]*logtest.Hook{},

		logHooks: map[crdt.NodeID]LogHooks{},
	}
	d.members.set(ids)
	for _, id := range ids {
		st := &lockedStore{s: simkit.NewStore(id, func() int64 { return d.clk.Now().UnixMilli() })}
		cfg := Config{Self: id, TickInterval: 10 * time.Millisecond, ProbeTicks: 4, RetransmitTicks: 3, SendQueue: 4}
		if prepare != nil {
			prepare(id, &cfg, st.s)
		}
		d.stores[id] = st
		d.start(t, id, cfg)
	}
	// Tick only once every loop waits on its ticker.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.clk.BlockUntil(ctx, len(ids)); err != nil {
		t.Fatal(err)
	}
	return d
}

// start starts a Replicator for id over its store, under cfg.
func (d *testDomain) start(t *testing.T, id crdt.NodeID, cfg Config) {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	r, err := New(cfg, d.stores[id], d.members, hubSender{h: d.hub, from: id}, d.clk, logrus.NewEntry(logger), d.logHooks[id])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d.reps[id], d.hooks[id] = r, hook
	d.hub.mu.Lock()
	d.hub.reps[id] = r
	d.hub.mu.Unlock()
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
	d.advance(t, 10*time.Millisecond)
}

// advance moves the clock on by dur, and waits until every open
// Replicator has taken a tick since (one, or many when dur spans many).
func (d *testDomain) advance(t *testing.T, dur time.Duration) {
	t.Helper()
	before := make(map[crdt.NodeID]uint64, len(d.ids))
	for _, id := range d.ids {
		before[id] = d.reps[id].Stats().Tick
	}
	d.clk.Advance(dur)
	for _, id := range d.ids {
		r := d.reps[id]
		waitFor(t, func() bool { return r.isClosed() || r.Stats().Tick > before[id] })
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
	// Stats are published at ticks: wait for one after A's pushes.
	d.tickUntil(t, "stats published", func() bool { return d.reps[nA].Stats().PushesSent > 0 })
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

// chanSender is a Transport that hands every message to a channel.
type chanSender chan Envelope

func (c chanSender) Send(ctx context.Context, to Peer, msg Message) error {
	select {
	case c <- Envelope{To: to, Msg: msg}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestReplicatorStuckStore: with the store stuck in a commit, pushes are
// held for it up to InboxSize and refused past that, the refusals counted;
// the loop goes on answering probes; Close cancels the stuck commit.
func TestReplicatorStuckStore(t *testing.T) {
	st := &lockedStore{s: simkit.NewStore(nA, func() int64 { return 0 }), gate: make(chan struct{})}
	members := &fakeMembers{}
	members.set([]crdt.NodeID{nA, nB})
	sent := make(chanSender, 1024)
	r, err := New(Config{Self: nA, InboxSize: 2}, st, members, sent, clock.NewFake(time.Unix(0, 0)), nil, LogHooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	deliver := func(msg Message) {
		t.Helper()
		for range 1_000_000 {
			switch err := r.Deliver(nB, msg); {
			case err == nil:
				return
			case !errors.Is(err, ErrBusy):
				t.Fatal(err)
			}
			runtime.Gosched()
		}
		t.Fatal("Deliver refuses for good")
	}
	for id := uint64(1); r.Stats().Transport.WritesDropped == 0; id++ {
		if id == 1_000_000 {
			t.Fatal("pushes never refused with the store stuck")
		}
		deliver(Message{Type: MsgPush, ID: id, Entries: []store.LogEntry{sampleEntry(nB, 1, "k", "v", 0)}})
	}
	deliver(Message{Type: MsgProbe, Applied: vv(uint64(nB), 1)})
	for answered := false; !answered; {
		select {
		case env := <-sent:
			answered = env.To.ID == nB && env.Msg.Type == MsgAck && env.Msg.ID == 0
			if env.Msg.Type == MsgAck && env.Msg.ID != 0 {
				t.Fatalf("acknowledged push %d the store has not taken", env.Msg.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ack of the probe while the store is stuck")
		}
	}
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
	st := &lockedStore{s: simkit.NewStore(nA, nil)}
	if _, err := New(Config{}, st, &fakeMembers{}, hubSender{}, clock.Real(), nil, LogHooks{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no Self: %v", err)
	}
	if _, err := New(Config{Self: nA}, st, nil, hubSender{}, clock.Real(), nil, LogHooks{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no members: %v", err)
	}
}

// cutOff returns a drop function for hub that loses every message from or
// to id.
func cutOff(id crdt.NodeID) func(from, to crdt.NodeID, msg *Message) bool {
	return func(from, to crdt.NodeID, _ *Message) bool { return from == id || to == id }
}

// noSyncTo returns a drop function for hub that loses what a digest sync
// sends id, so that id's resync cannot end.
func noSyncTo(id crdt.NodeID) func(from, to crdt.NodeID, msg *Message) bool {
	return func(_, to crdt.NodeID, msg *Message) bool {
		return to == id && (msg.Type == MsgDigestReq || msg.Type == MsgSnap)
	}
}

// TestReplicatorResyncAtStart: a node whose store last heard from a peer
// longer ago than ResyncAfter resyncs from the start; until the resync
// ends its last contact is not saved, then it is. Nodes with a recent or
// no last contact do not resync.
func TestReplicatorResyncAtStart(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	old := start.Add(-2 * time.Hour)
	d := newTestDomainWith(t, func(id crdt.NodeID, cfg *Config, st *simkit.Store) {
		cfg.ResyncAfter = time.Hour
		switch id {
		case nA:
			st.SetLastContact(context.Background(), old)
		case nB:
			st.SetLastContact(context.Background(), start.Add(-30*time.Minute))
		}
	}, nA, nB, nC)
	d.hub.setDrop(noSyncTo(nA))
	if !d.reps[nA].Stats().Resyncing || d.reps[nB].Stats().Resyncing || d.reps[nC].Stats().Resyncing {
		t.Fatal("want A alone resyncing")
	}
	if n := countLogs(d.hooks[nA], logrus.InfoLevel, "replication resync:"); n != 1 {
		t.Fatalf("A logged %d resyncs", n)
	}
	d.tickUntil(t, "A hears from its peers", func() bool { return d.reps[nA].Stats().AcksReceived >= 2 })
	if lc := d.stores[nA].LastContact(); !lc.Equal(old) || !d.reps[nA].Stats().Resyncing {
		t.Fatalf("mid-resync: last contact %v, resyncing %v", lc, d.reps[nA].Stats().Resyncing)
	}
	d.hub.setDrop(nil)
	d.tickUntil(t, "A's resync ends", func() bool { return !d.reps[nA].Stats().Resyncing })
	if lc := d.stores[nA].LastContact(); !lc.After(start) || lc.After(d.clk.Now()) {
		t.Fatalf("after the resync: last contact %v, now %v", lc, d.clk.Now())
	}
	st := d.reps[nA].Stats()
	served := d.reps[nB].Stats().ResyncsServed + d.reps[nC].Stats().ResyncsServed
	if st.ResyncsStarted != 1 || st.ResyncsDone != 1 || served == 0 || countLogs(d.hooks[nA], logrus.InfoLevel, "replication resync done") != 1 {
		t.Fatalf("A %+v, served %d", st.Counters, served)
	}
	for _, id := range []crdt.NodeID{nB, nC} {
		if n := d.reps[id].Stats().ResyncsStarted; n != 0 {
			t.Fatalf("%s resynced %d times", id, n)
		}
	}
}

// TestReplicatorResyncAfterSilence: a node that no peer answers for longer
// than ResyncAfter resyncs when one answers again; the others, which kept
// answering each other, do not.
func TestReplicatorResyncAfterSilence(t *testing.T) {
	d := newTestDomainWith(t, func(_ crdt.NodeID, cfg *Config, _ *simkit.Store) { cfg.ResyncAfter = time.Hour }, nA, nB, nC)
	d.tickUntil(t, "everyone heard", func() bool {
		for _, id := range d.ids {
			if d.reps[id].Stats().AcksReceived < 2 {
				return false
			}
		}
		return true
	})
	d.hub.setDrop(cutOff(nA))
	for range 13 { // 130 minutes; B and C probe each other every 40
		d.advance(t, 10*time.Minute)
	}
	if d.reps[nA].Stats().ResyncsStarted != 0 {
		t.Fatal("A resynced before anyone answered it")
	}
	back := d.clk.Now()
	d.hub.setDrop(nil)
	d.tickUntil(t, "A resyncs and is done", func() bool {
		st := d.reps[nA].Stats()
		return st.ResyncsDone == 1 && !st.Resyncing
	})
	if n := countLogs(d.hooks[nA], logrus.InfoLevel, "replication resync:"); n != 1 {
		t.Fatalf("A logged %d resyncs", n)
	}
	if lc := d.stores[nA].LastContact(); lc.Before(back) {
		t.Fatalf("last contact %v, before A was back at %v", lc, back)
	}
	for _, id := range []crdt.NodeID{nB, nC} {
		if n := d.reps[id].Stats().ResyncsStarted; n != 0 {
			t.Fatalf("%s resynced %d times", id, n)
		}
	}
}

// TestReplicatorLastContactSaved: the last contact is saved at the first
// answer, then at most once a minute, and on Close.
func TestReplicatorLastContactSaved(t *testing.T) {
	d := newTestDomain(t, nA, nB)
	lastContact := func() time.Time { return d.stores[nA].LastContact() }
	d.tickUntil(t, "first contact saved", func() bool { return !lastContact().IsZero() })
	first := lastContact()
	acks := d.reps[nA].Stats().AcksReceived
	d.tickUntil(t, "more answers", func() bool { return d.reps[nA].Stats().AcksReceived > acks+2 })
	if lc := lastContact(); !lc.Equal(first) {
		t.Fatalf("saved again within a minute: %v after %v", lc, first)
	}
	d.advance(t, time.Minute)
	d.tickUntil(t, "saved a minute later", func() bool { return lastContact().After(first) })
	second := lastContact()
	acks = d.reps[nA].Stats().AcksReceived
	d.tickUntil(t, "more answers", func() bool { return d.reps[nA].Stats().AcksReceived > acks+2 })
	if lc := lastContact(); !lc.Equal(second) {
		t.Fatalf("saved again within a minute: %v after %v", lc, second)
	}
	if err := d.reps[nA].Close(); err != nil {
		t.Fatal(err)
	}
	if lc := lastContact(); !lc.After(second) || lc.After(d.clk.Now()) {
		t.Fatalf("Close saved %v (before: %v, now %v)", lc, second, d.clk.Now())
	}
}

// TestReplicatorResyncInterrupted: a node stopped mid-resync has not saved
// its last contact, although peers answered it, so it resyncs again when
// it starts again, and that resync ends.
func TestReplicatorResyncInterrupted(t *testing.T) {
	old := time.UnixMilli(1_700_000_000_000).Add(-48 * time.Hour)
	var cfgA Config
	d := newTestDomainWith(t, func(id crdt.NodeID, cfg *Config, st *simkit.Store) {
		if id == nA {
			st.SetLastContact(context.Background(), old)
			cfgA = *cfg
		}
	}, nA, nB, nC)
	d.hub.setDrop(noSyncTo(nA))
	d.tickUntil(t, "A hears from its peers", func() bool { return d.reps[nA].Stats().AcksReceived >= 2 })
	if err := d.reps[nA].Close(); err != nil {
		t.Fatal(err)
	}
	if lc := d.stores[nA].LastContact(); !lc.Equal(old) {
		t.Fatalf("last contact saved mid-resync: %v", lc)
	}
	d.start(t, nA, cfgA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.clk.BlockUntil(ctx, len(d.ids)); err != nil {
		t.Fatal(err)
	}
	if !d.reps[nA].Stats().Resyncing {
		t.Fatal("not resyncing after the restart")
	}
	d.hub.setDrop(nil)
	d.tickUntil(t, "the resync ends", func() bool { return !d.reps[nA].Stats().Resyncing })
	if lc := d.stores[nA].LastContact(); !lc.After(old) {
		t.Fatalf("last contact %v after the resync", lc)
	}
}

// chanFeed is a LogFeed the test signals itself.
type chanFeed chan struct{}

func (c chanFeed) C() <-chan struct{} { return c }

// ackRecorder is a LogHolder that keeps every vector acknowledged to it.
type ackRecorder struct {
	mu   sync.Mutex
	acks []crdt.VersionVector
}

func (h *ackRecorder) Ack(vv crdt.VersionVector) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acks = append(h.acks, vv)
}

func (h *ackRecorder) all() []crdt.VersionVector {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.acks)
}

// TestReplicatorLogHooks: a Replicator started with log hooks wakes on its
// feed (no Notify), and acknowledges to its holder only what every member
// has applied, until that covers A's writes.
func TestReplicatorLogHooks(t *testing.T) {
	var cfgA Config
	d := newTestDomainWith(t, func(id crdt.NodeID, cfg *Config, _ *simkit.Store) {
		if id == nA {
			cfgA = *cfg
		}
	}, nA, nB, nC)
	if err := d.reps[nA].Close(); err != nil {
		t.Fatal(err)
	}
	feed, holder := make(chanFeed, 1), &ackRecorder{}
	d.logHooks[nA] = LogHooks{Feed: feed, Holder: holder}
	d.start(t, nA, cfgA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.clk.BlockUntil(ctx, len(d.ids)); err != nil {
		t.Fatal(err)
	}
	const writes = 10
	for k := range writes {
		d.stores[nA].set(t, "k"+string(rune('a'+k)), "v")
		select {
		case feed <- struct{}{}:
		default:
		}
	}
	d.tickUntil(t, "the holder acknowledged A's writes", func() bool {
		acks := holder.all()
		return len(acks) > 0 && acks[len(acks)-1].Get(nA) == writes
	})
	if d.reps[nA].Stats().PushesSent == 0 {
		t.Error("A pushed nothing")
	}
	for _, vv := range holder.all() {
		for _, id := range d.ids {
			if applied := d.stores[id].Applied(); !applied.Descends(vv) {
				t.Errorf("acknowledged %s, beyond what %s applied: %s", vv, id, applied)
			}
		}
	}
}
