package replication

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/upu/upu/replication/crdt"
	"github.com/upu/upu/store"
)

// Store is what replication needs of a node's store. *store.Store has all
// of it but RaiseApplied.
type Store interface {
	// Applied returns, per origin, the highest sequence number up to which
	// every log entry has been applied. The vector must not be modified.
	Applied() crdt.VersionVector
	// ReadLog returns up to limit of origin's log entries from fromSeq on;
	// an error wrapping store.ErrLogTrimmed when fromSeq is no longer held.
	ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]store.LogEntry, error)
	// Scan calls fn for every record with key >= start, in key order, until
	// fn returns false or limit records were seen.
	Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error
	// ApplyRemote applies peers' log entries: duplicates are skipped, an
	// entry beyond a gap is not applied.
	ApplyRemote(ctx context.Context, entries []store.LogEntry) (int, error)
	// MergeRecord merges a whole record into the key's, writing no log
	// entry.
	MergeRecord(ctx context.Context, key []byte, rec crdt.Record, seen crdt.VersionVector) error
	// RaiseApplied raises applied[o] to vv[o] for every origin o other
	// than the store's own node where vv[o] is higher, dropping o's log
	// entries (the log now begins after vv[o]). The caller has merged
	// records covering every delta up to vv first: a snapshot.
	RaiseApplied(ctx context.Context, vv crdt.VersionVector) error
}

// Peer is a member of the domain as replication sees it.
type Peer struct {
	ID   crdt.NodeID
	Addr string // binary protocol address
}

// Envelope is a message to send.
type Envelope struct {
	To  Peer
	Msg Message
}

// Machine is the replication protocol of one node as a pure state machine,
// in the manner of etcd raft's RawNode: inputs arrive through SetMembers,
// Tick, LocalWrite and Step; the messages they cause leave through Ready.
// It starts no goroutine, does no I/O beyond calls to its Store, and reads
// no clock. It is not safe for concurrent use.
type Machine struct {
	cfg   Config
	st    Store
	rng   *rand.Rand
	sizer *sizer

	tick      uint64
	nextRound uint64

	ring       []Peer
	peers      []*peer // every member but this node, in ring order
	byID       map[crdt.NodeID]*peer
	succ, pred *peer

	// lastRound is the applied vector at the last probe round, aged the one
	// at the round before: what this node has held for a whole round, which
	// anti-entropy repairs (newer entries are still travelling the ring).
	lastRound, aged crdt.VersionVector

	dirty   bool // something happened since Ready last pushed
	outbox  []Envelope
	origins []crdt.NodeID // scratch
	stats   Counters
}

// peer is what this node knows and has in flight towards another member.
type peer struct {
	Peer
	heard    bool               // acked holds something the peer said
	acked    crdt.VersionVector // a lower bound of the peer's applied vector
	repair   crdt.VersionVector // what anti-entropy decided to bring it to
	inflight []push             // pushes awaiting their ack, oldest first
	nextID   uint64
	probing  bool // a probe awaits its ack, sent at probeAt
	probeAt  uint64
	timeouts int // waits that ran out since the peer last acknowledged anything
	cursor   int // rotates the origin a push starts with, for fairness
	snap     *snapshot
	sent     Counters
}

type push struct {
	id   uint64
	at   uint64
	upto []crdt.VVEntry // the last sequence number sent, per origin
}

// snapshot is a snapshot stream in progress towards one peer, for origins
// whose log no longer reaches back to what the peer has. It sends one chunk
// at a time; every chunk is merged before the last one raises the peer's
// applied vector to vv.
type snapshot struct {
	vv      crdt.VersionVector // this node's applied vector when it began
	start   []byte             // first key of the current chunk
	next    []byte             // first key after it
	id      uint64             // the chunk awaiting its ack; 0: none
	at      uint64
	last    bool
	trimmed []crdt.NodeID // origins the log cannot serve meanwhile
}

// NewMachine returns a machine for cfg.Self over st. It knows no members
// until SetMembers.
func NewMachine(cfg Config, st Store) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w: a store is required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	m := &Machine{
		cfg:   cfg,
		st:    st,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		sizer: newSizer(),
		byID:  map[crdt.NodeID]*peer{},
	}
	// Nodes start their rounds out of phase, so probes spread over time.
	m.nextRound = 1 + uint64(m.rng.IntN(cfg.ProbeTicks))
	return m, nil
}

// SetMembers sets the live members of the domain, in ring order, this node
// included (gossip.BuildRing orders them). The successor is the member
// after this node; with this node absent there is none, and the machine
// only answers and probes. What is known of members that stay is kept;
// members that left are forgotten, with whatever was in flight to them.
func (m *Machine) SetMembers(ring []Peer) {
	m.ring = slices.Clone(ring)
	old := m.byID
	m.byID = make(map[crdt.NodeID]*peer, len(ring))
	m.peers = m.peers[:0]
	after := -1 // how many peers come before this node
	for _, r := range m.ring {
		if r.ID == m.cfg.Self {
			after = len(m.peers)
			continue
		}
		if _, dup := m.byID[r.ID]; dup || r.ID == 0 {
			continue
		}
		p := old[r.ID]
		if p == nil {
			p = &peer{}
		}
		p.Peer = r
		m.byID[r.ID] = p
		m.peers = append(m.peers, p)
	}
	m.succ, m.pred = nil, nil
	if after >= 0 && len(m.peers) > 0 {
		m.succ = m.peers[after%len(m.peers)]
		m.pred = m.peers[(after-1+len(m.peers))%len(m.peers)]
	}
	m.dirty = true
}

// Tick advances the machine's clock by one tick: retransmission timeouts
// and anti-entropy rounds count ticks.
func (m *Machine) Tick() {
	m.tick++
	m.dirty = true
	if m.tick >= m.nextRound {
		m.nextRound = m.tick + uint64(m.cfg.ProbeTicks)
		m.round()
	}
	rt := uint64(m.cfg.RetransmitTicks)
	for _, p := range m.peers {
		if p.probing && m.tick-p.probeAt >= rt {
			p.probing = false
			p.timeouts++
		}
		if len(p.inflight) > 0 && m.tick-p.inflight[0].at >= rt {
			// Go back: whatever was not acknowledged is sent again.
			p.inflight = p.inflight[:0]
			p.timeouts++
			m.stats.Retransmits++
		}
		if s := p.snap; s != nil && s.id != 0 && m.tick-s.at >= rt {
			s.id = 0
			p.timeouts++
			m.stats.Retransmits++
		}
	}
}

// LocalWrite tells the machine that the local log grew.
func (m *Machine) LocalWrite() { m.dirty = true }

// round is one anti-entropy round: exchange vectors with the predecessor
// and with a random member.
func (m *Machine) round() {
	m.aged, m.lastRound = m.lastRound, m.st.Applied()
	if m.pred != nil {
		m.probe(m.pred)
	}
	var candidates int
	for _, p := range m.peers {
		if p != m.pred {
			candidates++
		}
	}
	if candidates == 0 {
		return
	}
	k := m.rng.IntN(candidates)
	for _, p := range m.peers {
		if p == m.pred {
			continue
		}
		if k == 0 {
			m.probe(p)
			return
		}
		k--
	}
}

func (m *Machine) probe(p *peer) {
	p.probing, p.probeAt = true, m.tick
	m.stats.ProbesSent++
	m.send(p, Message{Type: MsgProbe, Applied: m.st.Applied()}, 0, 0)
}

// Step hands the machine a message from another member. It applies pushes
// and snapshot chunks to the store before returning; an error means the
// message was not (wholly) applied and not acknowledged, so the sender will
// send it again.
func (m *Machine) Step(ctx context.Context, from crdt.NodeID, msg Message) error {
	m.stats.MessagesReceived++
	m.dirty = true
	p := m.byID[from]
	switch msg.Type {
	case MsgProbe:
		m.stats.ProbesReceived++
		if p != nil {
			p.learn(msg.Applied)
			m.planRepair(p)
		}
		m.reply(p, Message{Type: MsgAck, Applied: m.st.Applied()})
	case MsgAck:
		m.stats.AcksReceived++
		if p != nil {
			m.onAck(p, &msg)
		}
	case MsgPush:
		return m.onPush(ctx, p, from, &msg)
	case MsgSnap:
		return m.onSnap(ctx, p, from, &msg)
	default:
		return fmt.Errorf("%w: type %d from %s", ErrUnknownMessage, msg.Type, from)
	}
	return nil
}

func (m *Machine) onPush(ctx context.Context, p *peer, from crdt.NodeID, msg *Message) error {
	m.stats.PushesReceived++
	m.stats.EntriesReceived += uint64(len(msg.Entries))
	// This node is the authority on its own origin: a peer cannot extend
	// it.
	entries := msg.Entries
	if slices.ContainsFunc(entries, func(e store.LogEntry) bool { return e.Origin == m.cfg.Self }) {
		entries = slices.DeleteFunc(slices.Clone(entries), func(e store.LogEntry) bool { return e.Origin == m.cfg.Self })
	}
	n, err := m.st.ApplyRemote(ctx, entries)
	m.stats.EntriesApplied += uint64(n)
	if err != nil {
		return fmt.Errorf("replication: apply push %d from %s: %w", msg.ID, from, err)
	}
	m.origins = sortedOrigins(m.origins, entries)
	m.reply(p, Message{Type: MsgAck, ID: msg.ID, Applied: restrict(m.st.Applied(), m.origins)})
	return nil
}

func (m *Machine) onSnap(ctx context.Context, p *peer, from crdt.NodeID, msg *Message) error {
	m.stats.SnapshotChunksReceived++
	for i := range msg.Records {
		r := &msg.Records[i]
		if err := m.st.MergeRecord(ctx, r.Key, r.Record, nil); err != nil {
			return fmt.Errorf("replication: merge snapshot chunk %d from %s: %w", msg.ID, from, err)
		}
		m.stats.RecordsMerged++
	}
	if msg.Done {
		// Every earlier chunk was acknowledged, so merged, before the
		// sender sent this one: the records cover msg.Applied.
		if err := m.st.RaiseApplied(ctx, without(msg.Applied, m.cfg.Self)); err != nil {
			return fmt.Errorf("replication: finish snapshot from %s: %w", from, err)
		}
	}
	m.reply(p, Message{Type: MsgAck, ID: msg.ID, Applied: m.st.Applied()})
	return nil
}

func (p *peer) learn(vv crdt.VersionVector) {
	p.acked = crdt.MergeVV(p.acked, vv)
	p.heard = true
}

// planRepair decides, on fresh news of p's vector, what anti-entropy sends
// it: whatever it lacks that this node has held for a whole round.
func (m *Machine) planRepair(p *peer) {
	p.repair = crdt.MergeVV(p.repair, m.aged)
}

func (m *Machine) onAck(p *peer, msg *Message) {
	// Only an answer clears the alarm: a peer that sends but does not
	// receive (a one-way cut) stays unresponsive.
	p.timeouts = 0
	p.learn(msg.Applied)
	if msg.ID == 0 {
		p.probing = false
		m.planRepair(p)
		return
	}
	if s := p.snap; s != nil && s.id == msg.ID {
		s.id = 0
		if s.last {
			p.snap = nil
			m.stats.SnapshotsDone++
			return
		}
		s.start = s.next
		return
	}
	i := slices.IndexFunc(p.inflight, func(x push) bool { return x.id == msg.ID })
	if i < 0 {
		return // an ack of a push already given up on: its vector is all
	}
	for _, e := range p.inflight[i].upto {
		if p.acked.Get(e.Node) < e.Counter {
			// Not applied: an earlier push was lost or overtaken, so this
			// one left a gap. Go back to what the peer has.
			p.inflight = p.inflight[:0]
			m.stats.GoBacks++
			return
		}
	}
	n := copy(p.inflight, p.inflight[i+1:])
	clear(p.inflight[n:])
	p.inflight = p.inflight[:n]
}

// reply sends msg to the member p; a message from a non-member cannot be
// answered, for want of its address, and its sender will retry.
func (m *Machine) reply(p *peer, msg Message) {
	if p == nil {
		m.stats.Unroutable++
		return
	}
	if msg.Type == MsgAck {
		m.stats.AcksSent++
	}
	m.send(p, msg, 0, 0)
}

// Ready returns the messages to send now, and forgets them. Sending is the
// caller's job; a message that never arrives is retransmitted.
func (m *Machine) Ready() []Envelope {
	if m.dirty {
		m.dirty = false
		applied := m.st.Applied()
		for _, p := range m.peers {
			m.pump(p, applied)
		}
	}
	out := m.outbox
	m.outbox = nil
	return out
}

// pump sends p what it lacks: to the successor everything but its own
// entries, to anyone its repair target.
func (m *Machine) pump(p *peer, applied crdt.VersionVector) {
	target := p.repair
	if p == m.succ {
		target = applied
	}
	if m.lacks(p, target) {
		if !p.heard {
			if !p.probing {
				m.probe(p)
			}
			return
		}
		for len(p.inflight) < m.cfg.MaxInflight && m.push(p, target) {
		}
	}
	// A push may have found the log trimmed and begun a snapshot.
	if p.snap != nil && p.snap.id == 0 {
		m.sendChunk(p)
	}
}

// sentTo returns the highest sequence number of origin that p has or has
// been sent.
func (p *peer) sentTo(origin crdt.NodeID) uint64 {
	s := p.acked.Get(origin)
	for i := range p.inflight {
		for _, e := range p.inflight[i].upto {
			if e.Node == origin {
				s = max(s, e.Counter)
			}
		}
	}
	return s
}

func (m *Machine) lacks(p *peer, target crdt.VersionVector) bool {
	for _, e := range target {
		if e.Node != p.ID && e.Counter > p.sentTo(e.Node) && !p.snapBlocks(e.Node) {
			return true
		}
	}
	return false
}

func (p *peer) snapBlocks(origin crdt.NodeID) bool {
	return p.snap != nil && slices.Contains(p.snap.trimmed, origin)
}

// push sends p one batch of what it lacks of target, reporting whether
// there was any.
func (m *Machine) push(p *peer, target crdt.VersionVector) bool {
	var (
		batch []store.LogEntry
		upto  []crdt.VVEntry
		size  int
		full  bool
	)
	for i := 0; i < len(target) && !full && len(batch) < m.cfg.MaxBatchEntries; i++ {
		e := target[(p.cursor+i)%len(target)]
		o := e.Node
		if o == p.ID || p.snapBlocks(o) {
			continue
		}
		from := p.sentTo(o) + 1
		if from > e.Counter {
			continue
		}
		want := min(e.Counter-from+1, uint64(m.cfg.MaxBatchEntries-len(batch)))
		ents, err := m.st.ReadLog(o, from, int(want))
		if errors.Is(err, store.ErrLogTrimmed) {
			m.startSnapshot(p, o)
			continue
		}
		if err != nil || len(ents) == 0 || ents[0].Seq != from {
			m.stats.ReadErrors++
			continue
		}
		n := 0
		for j := range ents {
			if ents[j].Seq != from+uint64(j) {
				break // a log with a hole: send what is contiguous
			}
			sz := m.sizer.entry(&ents[j])
			if len(batch)+n > 0 && size+sz > m.cfg.MaxBatchBytes {
				full = true
				break
			}
			size += sz
			n++
		}
		if n == 0 {
			continue
		}
		if batch == nil {
			batch = ents[:n]
		} else {
			batch = append(batch, ents[:n]...)
		}
		upto = append(upto, crdt.VVEntry{Node: o, Counter: ents[n-1].Seq})
	}
	p.cursor++
	if len(batch) == 0 {
		return false
	}
	id := p.newID()
	p.inflight = append(p.inflight, push{id: id, at: m.tick, upto: upto})
	m.stats.PushesSent++
	m.stats.EntriesSent += uint64(len(batch))
	p.sent.PushesSent++
	p.sent.EntriesSent += uint64(len(batch))
	m.send(p, Message{Type: MsgPush, ID: id, Entries: batch}, len(batch), size)
	return true
}

func (p *peer) newID() uint64 {
	p.nextID++
	return p.nextID
}

func (m *Machine) startSnapshot(p *peer, origin crdt.NodeID) {
	if p.snap == nil {
		p.snap = &snapshot{vv: without(m.st.Applied(), p.ID)}
		m.stats.SnapshotsStarted++
	}
	if !slices.Contains(p.snap.trimmed, origin) {
		p.snap.trimmed = append(p.snap.trimmed, origin)
	}
}

// sendChunk sends the snapshot chunk starting at p.snap.start.
func (m *Machine) sendChunk(p *peer) {
	s := p.snap
	var (
		recs []KeyRecord
		size int
	)
	s.next, s.last = nil, true
	err := m.st.Scan(context.Background(), s.start, m.cfg.MaxBatchEntries+1, func(key []byte, r crdt.Record) bool {
		kr := KeyRecord{Key: key, Record: r}
		sz := m.sizer.record(&kr)
		if len(recs) == m.cfg.MaxBatchEntries || (len(recs) > 0 && size+sz > m.cfg.MaxBatchBytes) {
			s.next, s.last = key, false
			return false
		}
		recs = append(recs, kr)
		size += sz
		return true
	})
	if err != nil {
		m.stats.ReadErrors++
		return // tried again at the next tick
	}
	s.id, s.at = p.newID(), m.tick
	msg := Message{Type: MsgSnap, ID: s.id, Records: recs, Done: s.last}
	if s.last {
		msg.Applied = s.vv
	}
	m.stats.SnapshotChunksSent++
	m.stats.SnapshotRecordsSent += uint64(len(recs))
	m.send(p, msg, len(recs), size)
}

// send queues msg for p and counts its encoded size. A push or chunk comes
// with its items' count and encoded size, measured while batching, so that
// only the rest of it is measured again.
func (m *Machine) send(p *peer, msg Message, items, itemBytes int) {
	size := m.sizer.message(&msg)
	if items > 0 {
		head := msg
		head.Entries, head.Records = nil, nil
		size = m.sizer.message(&head) + 2 + arrayHeaderLen(items) + itemBytes
	}
	m.stats.MessagesSent++
	m.stats.BytesSent += uint64(size)
	p.sent.MessagesSent++
	p.sent.BytesSent += uint64(size)
	m.outbox = append(m.outbox, Envelope{To: p.Peer, Msg: msg})
}

// arrayHeaderLen is the size of a msgpack array header for n items.
func arrayHeaderLen(n int) int {
	switch {
	case n < 16:
		return 1
	case n < 1<<16:
		return 3
	}
	return 5
}

// Successor returns the member this node pushes to, if any.
func (m *Machine) Successor() (Peer, bool) {
	if m.succ == nil {
		return Peer{}, false
	}
	return m.succ.Peer, true
}

// Unresponsive reports whether a wait for an ack from the member id ran
// out since it last acknowledged anything.
func (m *Machine) Unresponsive(id crdt.NodeID) bool {
	p := m.byID[id]
	return p != nil && p.timeouts > 0
}

// StableVector returns the pointwise minimum of the applied vectors of
// every live member, this node included, as last reported: every member
// has applied every log entry it covers. It is empty until every member
// has reported. Reports lag, so it is conservative; it speaks only for the
// members in the ring, not for members that are down (see the package
// documentation for what that means for dropping tombstones).
func (m *Machine) StableVector() crdt.VersionVector {
	if len(m.ring) == 0 {
		return nil
	}
	v := m.st.Applied()
	for _, p := range m.peers {
		if !p.heard {
			return nil
		}
		v = minVV(v, p.acked)
	}
	return v
}
