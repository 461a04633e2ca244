package cascade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// fakeStore holds system keys as plain values and a log of timestamps.
type fakeStore struct {
	mu     sync.Mutex
	system map[string][]byte
	logTS  map[crdt.NodeID]map[uint64]time.Time
}

func (s *fakeStore) ReadSystem(key []byte) (crdt.View, crdt.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.system[string(key)]
	if !ok {
		return crdt.View{}, crdt.Record{}, store.ErrNotFound
	}
	return crdt.View{Found: true, Value: v}, crdt.Record{}, nil
}

func (s *fakeStore) ApplyBatch(_ context.Context, ws []store.Write, out []store.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range ws {
		if !w.System {
			out[i].Err = errors.New("fake store: data write")
			continue
		}
		if w.Op == store.OpDel {
			delete(s.system, string(w.Key))
		} else {
			s.system[string(w.Key)] = w.Value
		}
	}
}

func (s *fakeStore) ReadLog(origin crdt.NodeID, from uint64, _ int) ([]store.LogEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.logTS[origin][from]
	if !ok {
		return nil, store.ErrLogTrimmed
	}
	return []store.LogEntry{{Origin: origin, Seq: from, TS: crdt.Timestamp(at.UnixMilli()) << 16}}, nil
}

func (s *fakeStore) ScanSystem(_ context.Context, fn func([]byte, crdt.Record) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.system {
		rec := crdt.Record{Entries: []crdt.Entry{{Kind: crdt.KindValue, Value: v, Dot: crdt.Dot{Node: 1, Counter: 1}}}}
		if !fn([]byte(k), rec) {
			break
		}
	}
	return nil
}

type fakeMembers struct{ live []gossip.Member }

func (m *fakeMembers) Members() []gossip.Member { return m.live }
func (m *fakeMembers) Subscribe() (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

type fakeRepl struct {
	mu    sync.Mutex
	up    replication.Peer
	relay bool
	hold  bool
	stats replication.Stats
}

func (r *fakeRepl) SetUpstream(p replication.Peer, relay bool) {
	r.mu.Lock()
	r.up, r.relay = p, relay
	r.mu.Unlock()
}
func (r *fakeRepl) ClearUpstream() { r.SetUpstream(replication.Peer{}, false) }
func (r *fakeRepl) HoldCollection(hold bool) {
	r.mu.Lock()
	r.hold = hold
	r.mu.Unlock()
}
func (r *fakeRepl) Stats() replication.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// fakeLinks routes Calls to handlers by node ID; addresses name nodes
// "addr-ID". down nodes fail.
type fakeLinks struct {
	mu    sync.Mutex
	nodes map[string]peer.Handler
	down  map[string]bool
	calls []string // node IDs called, in order
	self  peer.Handler
}

func (l *fakeLinks) Call(ctx context.Context, to peer.Node, _ peer.Kind, req []byte) ([]byte, error) {
	l.mu.Lock()
	h, down := l.nodes[to.ID], l.down[to.ID]
	l.calls = append(l.calls, to.ID)
	l.mu.Unlock()
	if h == nil || down {
		return nil, fmt.Errorf("fake links: %s: %w", to.ID, peer.ErrUnreachable)
	}
	return h(ctx, "0000000000000001", req)
}

func (l *fakeLinks) Identify(_ context.Context, addr string) (string, error) {
	id, ok := strings.CutPrefix(addr, "addr-")
	if !ok {
		return "", peer.ErrNoRoute
	}
	return id, nil
}

func (l *fakeLinks) Register(_ peer.Kind, h peer.Handler) { l.self = h }

type fakeReader struct {
	mu   sync.Mutex
	rids []reqid.ID
	hops []int
}

func (r *fakeReader) ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error) {
	r.mu.Lock()
	r.rids, r.hops = append(r.rids, rid), append(r.hops, hopsOf(ctx))
	r.mu.Unlock()
	return crdt.Record{
		Entries: []crdt.Entry{{Kind: crdt.KindValue, Value: []byte("v-" + string(key)), Dot: crdt.Dot{Node: 9, Counter: 1}}},
		Context: crdt.Context{VV: crdt.VersionVector{{Node: 9, Counter: 1}}},
	}, "region", nil
}

// parentNode answers info as a member of domain region with members, at
// path.
func parentNode(members []memberInfo, path []string) peer.Handler {
	return func(ctx context.Context, from string, body []byte) ([]byte, error) {
		var req request
		if err := decodeInto(body, &req); err != nil {
			return nil, err
		}
		switch req.Op {
		case opInfo:
			return encode(&infoResponse{Domain: "region", Path: path, Members: members})
		case opRead:
			rec := crdt.Record{
				Entries: []crdt.Entry{{Kind: crdt.KindValue, Value: req.Key, Dot: crdt.Dot{Node: 7, Counter: 1}}},
				Context: crdt.Context{VV: crdt.VersionVector{{Node: 7, Counter: 1}}},
			}
			return encode(&readResponse{Record: crdt.AppendRecord(nil, rec), Domain: "top"})
		}
		return nil, errors.New("unknown op")
	}
}

type rig struct {
	c     *Cascade
	st    *fakeStore
	repl  *fakeRepl
	links *fakeLinks
	read  *fakeReader
	clk   *clock.Fake
	logs  *test.Hook
	reg   *prometheus.Registry
}

func newRig(t *testing.T) *rig {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	logger.SetLevel(logrus.DebugLevel)
	r := &rig{
		st:    &fakeStore{system: map[string][]byte{}, logTS: map[crdt.NodeID]map[uint64]time.Time{}},
		repl:  &fakeRepl{},
		links: &fakeLinks{nodes: map[string]peer.Handler{}, down: map[string]bool{}},
		read:  &fakeReader{},
		clk:   clock.NewFake(time.Unix(1_700_000_000, 0)),
		logs:  test.NewLocal(logger),
		reg:   prometheus.NewRegistry(),
	}
	c, err := newCascade(Config{Domain: "dc1", Self: 1, Addr: "addr-self"}, Deps{
		Store: r.st, Members: &fakeMembers{}, Replication: r.repl, Links: r.links, Reader: r.read,
		Clock: r.clk, Log: logrus.NewEntry(logger), Registerer: r.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// setParent writes the setting as SetParent does, without its checks.
func (r *rig) setParent(t *testing.T, p *Parent) {
	t.Helper()
	b, err := encodeParent(p)
	if err != nil {
		t.Fatal(err)
	}
	r.st.system[string(settingKey("dc1"))] = b
}

func (r *rig) refresh() { r.c.refresh(context.Background()) }

func (r *rig) logged(level logrus.Level, msg string) int {
	n := 0
	for _, e := range r.logs.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, msg) {
			n++
		}
	}
	return n
}

func TestCascadeRelaysAndWarnsOnLagOnce(t *testing.T) {
	r := newRig(t)
	r.links.nodes["0000000000000050"] = parentNode([]memberInfo{{ID: "0000000000000050", Addr: "addr-0000000000000050"}}, []string{"region", "top"})
	r.setParent(t, &Parent{Domain: "region", Seeds: []string{"addr-0000000000000050"}})
	r.refresh()
	st := r.c.Status()
	if st.State != StateRelaying || st.Upstream != "0000000000000050" || strings.Join(st.Path, ">") != "dc1>region>top" {
		t.Fatalf("status %+v", st)
	}
	if r.repl.up.ID != 0x50 || !r.repl.relay {
		t.Fatalf("replication given %+v relay %v", r.repl.up, r.repl.relay)
	}
	if r.logged(logrus.InfoLevel, "cascade parent changed") != 1 {
		t.Fatal("the change of parent is not logged at info")
	}

	// The parent has A up to 10 of 15; entry 11 was written 40s ago.
	const origin = crdt.NodeID(0xa)
	r.st.logTS[origin] = map[uint64]time.Time{11: r.clk.Now().Add(-40 * time.Second)}
	up := replication.PeerStats{ID: 0x50, Heard: true, Acked: crdt.VersionVector{{Node: origin, Counter: 10}},
		Lag: crdt.VersionVector{{Node: origin, Counter: 5}}, Sent: replication.Counters{EntriesSent: 7, BytesSent: 700}}
	applied := crdt.VersionVector{{Node: origin, Counter: 15}}
	r.repl.stats = replication.Stats{Applied: applied, Upstream: &up, UpstreamRelay: true}
	for range 3 {
		r.refresh()
	}
	st = r.c.Status()
	if st.LagEntries != 5 || st.LagSeconds < 39 || st.LagSeconds > 41 || len(st.Origins) != 1 || st.EntriesRelayed != 7 || st.BytesRelayed != 700 {
		t.Fatalf("lag status %+v", st)
	}
	if n := r.logged(logrus.WarnLevel, "cascade relay lagging"); n != 1 {
		t.Fatalf("%d lag warnings over three refreshes, want 1", n)
	}
	if got := gauge(t, r.reg, "upu_cascade_lag_entries"); got != 5 {
		t.Fatalf("upu_cascade_lag_entries %v", got)
	}
	if got := gauge(t, r.reg, "upu_cascade_origin_lag_entries"); got != 5 {
		t.Fatalf("upu_cascade_origin_lag_entries %v", got)
	}
	// The parent goes silent, and the next member has not answered: the
	// lag is still counted from the last vector the parent reported, and
	// grows with the writes.
	applied = crdt.VersionVector{{Node: origin, Counter: 20}}
	r.repl.stats = replication.Stats{Applied: applied, Upstream: &replication.PeerStats{ID: 0x51}}
	r.refresh()
	if st := r.c.Status(); st.LagEntries != 10 {
		t.Fatalf("lag with the upstream not heard from: %d entries, want 10", st.LagEntries)
	}
	// Back to the first member: the replicator's counters for it start
	// over with the new peer.
	up.Lag, up.Acked, up.Sent = nil, applied, replication.Counters{}
	r.repl.stats = replication.Stats{Applied: applied, Upstream: &up, UpstreamRelay: true}
	r.refresh()
	if st := r.c.Status(); st.LagEntries != 0 || r.logged(logrus.InfoLevel, "cascade relay caught up") != 1 {
		t.Fatalf("after catching up: %+v", st)
	}
	// A new upstream's counters start at zero: the totals go on.
	up2 := replication.PeerStats{ID: 0x52, Heard: true, Sent: replication.Counters{EntriesSent: 2, BytesSent: 20}}
	r.c.relayed.observe(&up2)
	if entries, bytes := r.c.relayed.totals(); entries != 9 || bytes != 720 {
		t.Fatalf("relayed across upstreams %+v", r.c.relayed)
	}
}

// gauge returns the value of the registered gauge name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestCascadeFailsOverAndWarnsOnce(t *testing.T) {
	r := newRig(t)
	ms := []memberInfo{{ID: "0000000000000050", Addr: "addr-0000000000000050"}, {ID: "0000000000000051", Addr: "addr-0000000000000051"}}
	for _, m := range ms {
		r.links.nodes[m.ID] = parentNode(ms, []string{"region"})
	}
	r.setParent(t, &Parent{Domain: "region", Seeds: []string{"addr-0000000000000050"}})
	r.refresh()
	first := r.c.Status().Upstream
	id, _ := crdt.ParseNodeID(first)
	r.repl.stats = replication.Stats{Upstream: &replication.PeerStats{ID: id, Unresponsive: true}}
	r.links.down[first] = true
	r.refresh()
	second := r.c.Status().Upstream
	if second == first || second == "" || r.c.Status().State != StateRelaying {
		t.Fatalf("after the upstream went silent: %+v", r.c.Status())
	}
	if r.logged(logrus.WarnLevel, "failing over") != 1 {
		t.Fatal("failover not warned")
	}
	// The whole parent down: unreachable, warned once over many refreshes,
	// and an info line when it answers again.
	for _, m := range ms {
		r.links.down[m.ID] = true
	}
	r.repl.stats = replication.Stats{}
	for range 2 * infoEvery {
		r.c.ctl.infoOK = false // every refresh asks
		r.refresh()
	}
	if st := r.c.Status(); st.State != StateUnreachable || st.LastError == "" {
		t.Fatalf("parent down: %+v", st)
	}
	if n := r.logged(logrus.WarnLevel, "parent domain unreachable"); n != 1 {
		t.Fatalf("%d unreachable warnings, want 1", n)
	}
	for _, m := range ms {
		r.links.down[m.ID] = false
	}
	r.refresh()
	if st := r.c.Status(); st.State != StateRelaying || r.logged(logrus.InfoLevel, "answering again") != 1 {
		t.Fatalf("parent back: %+v", st)
	}
}

func TestCascadeChildrenHoldCollection(t *testing.T) {
	r := newRig(t)
	info, _ := encode(&request{Op: opInfo, Domain: "leaf", Relay: true})
	body, err := r.links.self(context.Background(), "00000000000000aa", info)
	if err != nil {
		t.Fatal(err)
	}
	var resp infoResponse
	if err := decodeInto(body, &resp); err != nil || resp.Domain != "dc1" || len(resp.Members) != 1 || resp.Members[0].Addr != "addr-self" {
		t.Fatalf("info answer %+v, %v", resp, err)
	}
	if ch := r.c.Status().Children; len(ch) != 1 || ch[0].Domain != "leaf" || ch[0].Relay != "00000000000000aa" {
		t.Fatalf("children %+v", ch)
	}
	r.refresh()
	if !r.repl.hold {
		t.Fatal("a domain with a child relaying to it still collects by stability")
	}
	// The child's relay goes quiet; its setting naming dc1 keeps the hold.
	b, _ := encodeParent(&Parent{Domain: "dc1", Seeds: []string{"x:1"}})
	r.st.system[string(settingKey("leaf"))] = b
	r.clk.Advance(time.Minute)
	for range infoEvery {
		r.refresh()
	}
	// It is still listed, by its setting, without a relay heard here.
	if ch := r.c.Status().Children; !r.repl.hold || len(ch) != 1 || ch[0].Domain != "leaf" || ch[0].Relay != "" {
		t.Fatalf("hold %v children %+v", r.repl.hold, ch)
	}
	// The child moved elsewhere: its setting names another parent.
	b, _ = encodeParent(&Parent{Domain: "other", Seeds: []string{"x:1"}})
	r.st.system[string(settingKey("leaf"))] = b
	for range infoEvery {
		r.refresh()
	}
	if r.repl.hold || len(r.c.Status().Children) != 0 {
		t.Fatalf("hold %v children %+v with no child", r.repl.hold, r.c.Status().Children)
	}
}

func TestCascadeReads(t *testing.T) {
	r := newRig(t)
	if _, _, err := r.c.ReadUp(context.Background(), []byte("k"), false, reqid.ID{}); !errors.Is(err, ErrNoParent) {
		t.Fatalf("ReadUp at a root: %v, want ErrNoParent", err)
	}
	ms := []memberInfo{{ID: "0000000000000050", Addr: "addr-0000000000000050"}, {ID: "0000000000000051", Addr: "addr-0000000000000051"}}
	for _, m := range ms {
		r.links.nodes[m.ID] = parentNode(ms, []string{"region"})
	}
	r.setParent(t, &Parent{Domain: "region", Seeds: []string{"addr-0000000000000050"}})
	r.refresh()
	// The upstream is down: the read goes to the other member.
	r.links.down[r.c.Status().Upstream] = true
	rec, domain, err := r.c.ReadUp(context.Background(), []byte("k"), true, reqid.New(r.clk.Now(), 1, 2))
	if err != nil || domain != "top" || len(rec.Entries) != 1 || string(rec.Entries[0].Value) != "k" {
		t.Fatalf("ReadUp = %+v, %q, %v", rec, domain, err)
	}
	for _, m := range ms {
		r.links.down[m.ID] = true
	}
	if _, _, err := r.c.ReadUp(context.Background(), []byte("k"), false, reqid.ID{}); !errors.Is(err, ErrParentUnreachable) {
		t.Fatalf("ReadUp with the parent down: %v", err)
	}
	// A read from a child: the request ID and the hops reach the reader.
	rid := reqid.New(r.clk.Now(), 5, 6)
	body, _ := encode(&request{Op: opRead, Domain: "leaf", Key: []byte("x"), ReqID: rid.String(), Hops: 3})
	out, err := r.links.self(context.Background(), "00000000000000aa", body)
	if err != nil {
		t.Fatal(err)
	}
	var resp readResponse
	if err := decodeInto(out, &resp); err != nil || resp.Domain != "region" || len(resp.Record) == 0 {
		t.Fatalf("read answer %+v, %v", resp, err)
	}
	if r.read.rids[0] != rid || r.read.hops[0] != 3 {
		t.Fatalf("reader got rid %v hops %d", r.read.rids[0], r.read.hops[0])
	}
	// A read that has passed maxHops domains goes no further.
	ctx := context.WithValue(context.Background(), hopsKey{}, maxHops)
	r.links.down = map[string]bool{}
	if _, _, err := r.c.ReadUp(ctx, []byte("k"), false, rid); !errors.Is(err, ErrCycle) {
		t.Fatalf("ReadUp past maxHops: %v, want ErrCycle", err)
	}
	if _, err := r.links.self(context.Background(), "x", []byte{0xc1}); err == nil {
		t.Fatal("a malformed request was served")
	}
}

// TestCascadeCycleAtRunTime: two domains made each other's parent by two
// concurrent changes, each checked before the other was written: both find
// the cycle from the paths they learn, stop relaying and say why.
func TestCascadeCycleAtRunTime(t *testing.T) {
	a, b := newRig(t), newRig(t)
	b.c.cfg.Domain = "region"
	b.c.ctl = newController("region", "0000000000000002")
	b.c.cfg.Self, b.c.cfg.Addr = 2, "addr-0000000000000002"
	a.links.nodes["0000000000000002"] = b.links.self
	b.links.nodes["0000000000000001"] = a.links.self
	a.setParent(t, &Parent{Domain: "region", Seeds: []string{"addr-0000000000000002"}})
	b.st.system[string(settingKey("region"))], _ = encodeParent(&Parent{Domain: "dc1", Seeds: []string{"addr-0000000000000001"}})
	for range 4 {
		a.refresh()
		b.refresh()
		a.c.ctl.infoOK, b.c.ctl.infoOK = false, false // ask at every refresh
	}
	for name, r := range map[string]*rig{"dc1": a, "region": b} {
		st := r.c.Status()
		if st.State != StateCycle || st.Reason == "" {
			t.Fatalf("%s: %+v", name, st)
		}
		if r.repl.relay {
			t.Fatalf("%s still pushes its log in a cycle", name)
		}
		if n := r.logged(logrus.WarnLevel, "cascade cycle"); n != 1 {
			t.Fatalf("%s warned %d times of the cycle, want 1", name, n)
		}
	}
	if _, _, err := a.c.ReadUp(context.Background(), []byte("k"), false, reqid.ID{}); !errors.Is(err, ErrCycle) {
		t.Fatalf("a read in a cycle: %v, want ErrCycle", err)
	}
	// One side breaks the cycle: both recover.
	delete(b.st.system, string(settingKey("region")))
	for range 3 {
		b.refresh()
		a.refresh()
		a.c.ctl.infoOK = false
	}
	if st := a.c.Status(); st.State != StateRelaying || a.logged(logrus.InfoLevel, "cycle gone") != 1 {
		t.Fatalf("after the cycle was broken: %+v", st)
	}
}
