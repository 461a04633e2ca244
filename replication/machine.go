package replication

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// StoreReader is what the Machine reads of a node's store, as etcd raft's
// RawNode reads its Storage; *store.Store is one. The Machine writes
// nothing: the writes its inputs cause leave through Ready.
type StoreReader interface {
	// Applied returns, per origin, the highest sequence number up to which
	// every log entry has been applied. The vector must not be modified.
	Applied() crdt.VersionVector
	// ReadLog returns up to limit of origin's log entries from fromSeq on;
	// an error wrapping store.ErrLogTrimmed when fromSeq is no longer held.
	ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]store.LogEntry, error)
	// Scan calls fn for every record with key >= start, in key order, until
	// fn returns false or limit records were seen (limit <= 0: no limit).
	// fn may keep key and r.
	Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error
	// BucketDigests returns 1<<bits digests of the visible data: per
	// bucket (crdt.Bucket), the XOR of its keys' fingerprints.
	BucketDigests(ctx context.Context, bits uint) ([]uint64, error)
	// ScanSystem calls fn for every system record (store.ReadSystem's
	// keyspace), in key order, until fn returns false. fn may keep key and r.
	ScanSystem(ctx context.Context, fn func(key []byte, r crdt.Record) bool) error
}

// StoreWriter is what a Write needs of a node's store; *store.Store is one.
type StoreWriter interface {
	// BucketDigests is StoreReader's: a digest request's digests are read
	// in order with the writes, after every earlier one.
	BucketDigests(ctx context.Context, bits uint) ([]uint64, error)
	// ApplyRemote applies peers' log entries: duplicates are skipped, an
	// entry beyond a gap is not applied.
	ApplyRemote(ctx context.Context, entries []store.LogEntry) (int, error)
	// MergeRecords merges whole records of a peer into the keys', writing
	// no log entry. seen is the peer's applied vector when it read them:
	// what it covers that a record does not hold, the peer saw superseded,
	// and the store drops it too (crdt.MergeSeen); a zero record so drops
	// what the peer no longer has at all.
	MergeRecords(ctx context.Context, recs []store.KeyRecord, seen crdt.VersionVector) error
	// RaiseApplied raises applied[o] to vv[o] for every origin o other
	// than the store's own node where vv[o] is higher, dropping o's log
	// entries (the log now begins after vv[o]). The caller has merged
	// records covering every delta up to vv first: a digest sync.
	RaiseApplied(ctx context.Context, vv crdt.VersionVector) error
}

// Store is what the Replicator needs of a node's store; *store.Store is
// one.
type Store interface {
	StoreReader
	StoreWriter
	// SetStable sets the domain's stable vector (nil: unknown): dead
	// records whose context it covers may be dropped.
	SetStable(vv crdt.VersionVector)
	// LastContact returns the time SetLastContact last recorded; zero if
	// never.
	LastContact() time.Time
	// SetLastContact records when a peer last answered this node.
	SetLastContact(ctx context.Context, t time.Time) error
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

// Ready is what the Machine has for its driver: the store writes to make,
// and the messages to send. The writes come in the order the messages that
// caused them arrived, and must be made in that order (a push's entries
// after an earlier push's); each is reported back with Persisted, and the
// acknowledgement it owes the sender waits for that. Messages and writes
// are independent: a message never waits for a write of the same Ready.
type Ready struct {
	Writes   []Write
	Messages []Envelope
}

// Write is one store write a received message asks for: a push's log
// entries, or a sync chunk's records merged under the sender's Seen vector
// and, on its last chunk, the applied vector raised to what the sync
// covers; or the bucket digests a digest request asks for, read in order
// with the writes so that none received before the request lands after
// the digests (the fence holds back those received after). Apply makes it.
type Write struct {
	From    crdt.NodeID
	Entries []store.LogEntry  // a push's entries, to ApplyRemote
	Records []store.KeyRecord // a chunk's records, to MergeRecords under Seen
	Seen    crdt.VersionVector
	// Raise, on a sync's last chunk (Last), is what RaiseApplied raises
	// the applied vector to once the records are merged.
	Raise crdt.VersionVector
	Last  bool

	kind    writeKind
	id      uint64 // the message's ID, which the answer echoes
	bits    uint8  // a digest request's
	digests []uint64
	sync    uint64 // a chunk's digest request
	resync  uint64 // the resync request a chunk answers
	drops   int    // zero records among Records (keys the chunk lacked)
	applied int    // entries ApplyRemote applied
}

type writeKind uint8

const (
	writePush writeKind = iota
	writeChunk
	writeDigests
)

// Type returns the type of the message w comes from.
func (w *Write) Type() MsgType {
	return [...]MsgType{writePush: MsgPush, writeChunk: MsgSnap, writeDigests: MsgDigestReq}[w.kind]
}

// Apply makes w's writes in st: ApplyRemote for a push; MergeRecords and,
// on a sync's last chunk, RaiseApplied for a chunk; for a digest request,
// it reads the digests. On an error, part of it may be written; making it
// again is harmless.
func (w *Write) Apply(ctx context.Context, st StoreWriter) error {
	switch w.kind {
	case writePush:
		n, err := st.ApplyRemote(ctx, w.Entries)
		w.applied = n
		if err != nil {
			return fmt.Errorf("replication: apply push %d from %s: %w", w.id, w.From, err)
		}
		return nil
	case writeDigests:
		d, err := st.BucketDigests(ctx, uint(w.bits))
		if err != nil {
			return fmt.Errorf("replication: digests for %s: %w", w.From, err)
		}
		w.digests = d
		return nil
	}
	if err := st.MergeRecords(ctx, w.Records, w.Seen); err != nil {
		return fmt.Errorf("replication: merge chunk %d from %s: %w", w.id, w.From, err)
	}
	if w.Last {
		if err := st.RaiseApplied(ctx, w.Raise); err != nil {
			return fmt.Errorf("replication: finish sync from %s: %w", w.From, err)
		}
	}
	return nil
}

// Machine is the replication protocol of one node as a pure state machine,
// in the manner of etcd raft's RawNode: inputs arrive through SetMembers,
// SetDown, Tick, LocalWrite, Resync, Step and Persisted; the store writes
// and the messages they cause leave through Ready. It starts no goroutine,
// writes nothing, does no I/O beyond reads of its store, and reads no
// clock. It is not safe for concurrent use.
type Machine struct {
	cfg   Config
	st    StoreReader
	rng   *rand.Rand
	sizer *sizer

	tick      uint64
	nextRound uint64

	ring       []Peer
	peers      []*peer // every member but this node, in ring order
	byID       map[crdt.NodeID]*peer
	succ, pred *peer
	// contacts are nodes outside the ring (AddContact), sorted by ID:
	// digest syncs only.
	contacts []*peer
	// up is the member of the parent domain this node reports to
	// (SetUpstream); upRelay, whether it also pushes it the log.
	up      *peer
	upRelay bool
	// hold stops collection by stability: the domain has child domains.
	hold bool

	// down are the members gossip knows that are not alive (failed or
	// leaving), sorted; reports holds the full applied vector each member
	// last reported, kept while it is live or down: StableVector speaks
	// for them all.
	down    []crdt.NodeID
	reports map[crdt.NodeID]crdt.VersionVector
	stable  stability

	// lastRound is the applied vector at the last probe round, aged the one
	// at the round before: what this node has held for a whole round, which
	// anti-entropy repairs (newer entries are still travelling the ring).
	lastRound, aged crdt.VersionVector

	rs   resync
	in   *incoming // the digest sync this node is taking, if any
	done syncRef   // the last one it took to its end

	dirty   bool // something happened since Ready last pushed
	outbox  []Envelope
	writes  []Write
	origins []crdt.NodeID // scratch
	stats   Counters
}

// peer is what this node knows and has in flight towards another member.
type peer struct {
	Peer
	heard     bool               // acked holds something the peer said
	acked     crdt.VersionVector // a lower bound of the peer's applied vector
	full      crdt.VersionVector // the same, from whole vectors only (probes, their acks)
	fullHeard bool               // full holds something the peer said
	repair    crdt.VersionVector // what anti-entropy decided to bring it to
	inflight  []push             // pushes awaiting their ack, oldest first
	nextID    uint64
	probing   bool // a probe awaits its ack, sent at probeAt
	probeAt   uint64
	timeouts  int                // waits that ran out since the peer last acknowledged anything
	resyncing bool               // its last probe ack said it is resyncing
	fence     crdt.VersionVector // its last probe or ack: entries it refuses now
	cursor    int                // rotates the origin a push starts with, for fairness
	sync      *digestSync
	sent      Counters
}

type push struct {
	id   uint64
	at   uint64
	upto []crdt.VVEntry // the last sequence number sent, per origin
}

// NewMachine returns a machine for cfg.Self over st. It knows no members
// until SetMembers.
func NewMachine(cfg Config, st StoreReader) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w: a store is required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	m := &Machine{
		cfg:     cfg,
		st:      st,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		sizer:   newSizer(),
		byID:    map[crdt.NodeID]*peer{},
		reports: map[crdt.NodeID]crdt.VersionVector{},
	}
	// Nodes start their rounds out of phase, so probes spread over time.
	m.nextRound = 1 + uint64(m.rng.IntN(cfg.ProbeTicks))
	// Resync request IDs of different incarnations must not collide.
	m.rs.id = m.rng.Uint64() >> 2
	return m, nil
}

// SetMembers sets the live members of the domain, in ring order, this node
// included (gossip.BuildRing orders them). The successor is the member
// after this node; with this node absent there is none, and the machine
// only answers and probes. What is known of members that stay is kept;
// members that left the ring are forgotten, with whatever was in flight to
// them, but for the vector they last reported, which StableVector counts
// while they are down (SetDown).
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
	m.checkKnown()
}

// SetDown sets the members that gossip knows but that are not alive:
// failed, or leaving. Their last reported vectors keep holding
// StableVector down, so that nothing they may still send is collected
// before they have seen it; a member that is neither live nor down (it
// left) is forgotten.
func (m *Machine) SetDown(ids []crdt.NodeID) {
	m.down = m.down[:0]
	for _, id := range ids {
		if id != m.cfg.Self && id != 0 {
			m.down = append(m.down, id)
		}
	}
	slices.Sort(m.down)
	m.down = slices.Compact(m.down)
	for id := range m.reports {
		if m.byID[id] == nil && !m.isDown(id) {
			delete(m.reports, id)
		}
	}
	m.checkKnown()
}

func (m *Machine) isDown(id crdt.NodeID) bool {
	_, ok := slices.BinarySearch(m.down, id)
	return ok
}

// SetUpstream makes p, a member of the parent domain, the node this one
// reports to (the cascade chooses it). It is probed every round, and its
// applied vector, for the origins this node holds, holds StableVector
// down as a member's does: nothing is collected, and no log entry let go,
// before the parent has it. With relay, this node also pushes it the log,
// everything it has applied, as it does to its successor, and syncs it by
// digests when the log no longer reaches back to what it has. Setting
// another node forgets what was known of the one before; setting the same
// one changes only relay.
func (m *Machine) SetUpstream(p Peer, relay bool) {
	m.dirty = true
	m.upRelay = relay
	if m.up != nil && m.up.ID == p.ID {
		m.up.Addr = p.Addr
		if !relay {
			m.up.inflight = m.up.inflight[:0]
		}
		return
	}
	if p.ID == m.cfg.Self || p.ID == 0 {
		m.up = nil
	} else {
		m.up = &peer{Peer: p}
	}
	m.checkKnown()
}

// HoldCollection says whether this domain has child domains. While it
// does, CollectVector is nil: dead records are collected only past the
// tombstone horizon, never by stability, because a child may yet send a
// write concurrent with a delete made elsewhere, which it never saw
// (changes flow up only, so no vector of this domain bounds what its
// descendants will still send), and a delete dropped here before that
// write arrives would let the write show here while ancestors that kept
// the delete hide it. The log is still let go by StableVector.
func (m *Machine) HoldCollection(hold bool) { m.hold = hold }

// CollectVector returns the vector under which the store may collect dead
// records: StableVector, or nil while collection is held.
func (m *Machine) CollectVector() crdt.VersionVector {
	if m.hold {
		return nil
	}
	return m.stable.safe
}

// ClearUpstream forgets the upstream: this domain has no parent.
func (m *Machine) ClearUpstream() {
	m.up, m.upRelay = nil, false
	m.dirty = true
}

// Tick advances the machine's clock by one tick: retransmission timeouts,
// anti-entropy rounds and resync requests count ticks.
func (m *Machine) Tick() {
	m.tick++
	m.dirty = true
	if m.tick >= m.nextRound {
		m.nextRound = m.tick + uint64(m.cfg.ProbeTicks)
		m.round()
	}
	rt := uint64(m.cfg.RetransmitTicks)
	for _, p := range m.peers {
		m.timeouts(p, rt)
	}
	if m.up != nil {
		m.timeouts(m.up, rt)
	}
	for _, c := range m.contacts {
		if c.sync != nil {
			m.syncTimeout(c, rt)
		}
	}
	if m.in != nil && m.tick-m.in.at >= staleRounds*rt {
		m.in = nil // its sender stopped: another may sync this node
		m.stats.SyncsAbandoned++
	}
	if m.rs.active {
		m.resyncTick()
	}
}

// timeouts handles the waits for p's answers that ran out at this tick.
func (m *Machine) timeouts(p *peer, rt uint64) {
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
	if p.sync != nil {
		m.syncTimeout(p, rt)
	}
}

// LocalWrite tells the machine that the local log grew.
func (m *Machine) LocalWrite() { m.dirty = true }

// round is one anti-entropy round: exchange vectors with the predecessor
// and with a random member.
func (m *Machine) round() {
	m.aged, m.lastRound = m.lastRound, m.st.Applied()
	m.advanceStable()
	if m.up != nil && !m.up.probing {
		m.probe(m.up, 0)
	}
	if m.pred != nil {
		m.probe(m.pred, 0)
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
			m.probe(p, 0)
			return
		}
		k--
	}
}

// probe sends p this node's applied vector; resync, when not zero, asks p
// for a full sync under that request ID.
func (m *Machine) probe(p *peer, resync uint64) {
	p.probing, p.probeAt = true, m.tick
	m.stats.ProbesSent++
	m.send(p, Message{Type: MsgProbe, Applied: m.st.Applied(), Resync: resync, Fence: m.fence()}, 0, 0)
}

// Step hands the machine a message from another member. A push or a sync
// chunk becomes a Write in the next Ready, acknowledged once Persisted
// reports it made; Step itself only reads the store. An error means the
// message was refused (unknown, malformed, or a read failed) and not
// acknowledged, so the sender will send it again.
func (m *Machine) Step(ctx context.Context, from crdt.NodeID, msg Message) error {
	m.stats.MessagesReceived++
	m.dirty = true
	p := m.byID[from]
	if p == nil && m.up != nil && m.up.ID == from {
		p = m.up // its answers are a member's; it sends nothing else
	}
	sp := m.syncPeer(from) // a member, the upstream or a contact: digest syncs go both
	switch msg.Type {
	case MsgProbe:
		m.stats.ProbesReceived++
		if p != nil {
			m.learn(p, &msg)
			m.planRepair(p)
			if msg.Resync != 0 {
				m.serveResync(p, msg.Resync)
			}
		}
		m.reply(p, from, Message{Type: MsgAck, Applied: m.st.Applied(), Resyncing: m.rs.active})
	case MsgAck:
		m.stats.AcksReceived++
		switch {
		case p != nil:
			m.onAck(p, &msg)
		case sp != nil:
			m.onContactAck(sp, &msg)
		}
	case MsgPush:
		m.onPush(from, &msg)
	case MsgSnap:
		return m.onChunk(ctx, sp, from, &msg)
	case MsgDigestReq:
		m.onDigestReq(sp, from, &msg)
	case MsgDigest:
		if sp != nil {
			return m.onDigest(ctx, sp, &msg)
		}
	default:
		return fmt.Errorf("%w: type %d from %s", ErrUnknownMessage, msg.Type, from)
	}
	return nil
}

func (m *Machine) onPush(from crdt.NodeID, msg *Message) {
	m.stats.PushesReceived++
	m.stats.EntriesReceived += uint64(len(msg.Entries))
	// This node is the authority on its own origin: a peer cannot extend
	// it. Entries the fence covers wait for the sync's end.
	entries := msg.Entries
	if slices.ContainsFunc(entries, m.refuses) {
		entries = slices.DeleteFunc(slices.Clone(entries), m.refuses)
		m.stats.EntriesFenced += uint64(len(msg.Entries) - len(entries))
	}
	m.writes = append(m.writes, Write{From: from, Entries: entries, id: msg.ID})
}

// Persisted reports that the driver made w, one of Ready's writes, in the
// store (err nil), or failed to (then nothing is acknowledged, and the
// sender sends it again). It sends the acknowledgement w owes, and on a
// sync's last chunk ends the sync.
func (m *Machine) Persisted(w *Write, err error) {
	m.dirty = true
	m.stats.EntriesApplied += uint64(w.applied)
	switch {
	case w.kind == writeDigests:
		m.digestsRead(w, err)
		return
	case err != nil:
		m.stats.WriteErrors++
		return
	case w.kind == writePush:
		m.origins = sortedOrigins(m.origins, w.Entries)
		m.reply(m.byID[w.From], w.From, Message{Type: MsgAck, ID: w.id, Applied: crdt.Restrict(m.st.Applied(), m.origins)})
		return
	}
	m.stats.RecordsMerged += uint64(len(w.Records) - w.drops)
	m.stats.RecordsDropped += uint64(w.drops)
	if w.Last {
		ref := syncRef{w.From, w.sync}
		if in := m.in; in != nil && (syncRef{in.from, in.id}) == ref {
			m.in = nil
		}
		m.done = ref
		if m.rs.asked(w.resync) {
			m.endResync()
		}
	}
	m.reply(m.syncPeer(w.From), w.From, Message{Type: MsgAck, ID: w.id, Applied: m.st.Applied()})
}

// refuses reports whether a pushed entry is not to be applied now: one of
// this node's own origin, or one the fence covers.
func (m *Machine) refuses(e store.LogEntry) bool {
	return e.Origin == m.cfg.Self || (m.in != nil && e.Seq <= m.in.seen.Get(e.Origin))
}

// learn takes in the vectors of a probe or ack from p. A probe and its ack
// carry the whole applied vector; acks of pushes and chunks may not.
func (m *Machine) learn(p *peer, msg *Message) {
	p.acked = crdt.MergeVV(p.acked, msg.Applied)
	p.heard = true
	p.fence = msg.Fence
	if msg.Type == MsgProbe || msg.ID == 0 {
		p.full, p.fullHeard = crdt.MergeVV(p.full, msg.Applied), true
		if p != m.up {
			m.reports[p.ID] = p.full
		}
	}
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
	m.learn(p, msg)
	if msg.ID == 0 {
		p.probing = false
		p.resyncing = msg.Resyncing
		m.planRepair(p)
		return
	}
	if s := p.sync; s != nil && s.id == msg.ID {
		m.onChunkAck(p, s)
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
func (m *Machine) reply(p *peer, to crdt.NodeID, msg Message) {
	if msg.Type == MsgAck {
		m.stats.AcksSent++
		msg.Fence = m.fence()
	}
	if p == nil {
		// A node outside the ring and the contacts (one this node's view
		// has not caught up with, or has already let go): no address, so
		// the answer goes back over the link it came on, and the sender
		// stops retransmitting.
		m.stats.OffRingReplies++
		m.enqueue(Peer{ID: to}, nil, msg, 0, 0)
		return
	}
	m.send(p, msg, 0, 0)
}

// Ready returns the store writes to make and the messages to send now,
// and forgets them. Making and sending them is the driver's job; a message
// that never arrives is retransmitted.
func (m *Machine) Ready() Ready {
	if m.dirty {
		m.dirty = false
		applied := m.st.Applied()
		for _, p := range m.peers {
			m.pump(p, applied)
		}
		switch {
		case m.up != nil && m.upRelay:
			m.pump(m.up, applied)
		case m.up != nil && m.up.sync != nil:
			m.pumpSync(m.up)
		}
		for _, c := range m.contacts {
			if c.sync != nil {
				m.pumpSync(c)
			}
		}
	}
	rd := Ready{Writes: m.writes, Messages: m.outbox}
	m.writes, m.outbox = nil, nil
	return rd
}

// pump sends p what it lacks: to the successor and to the upstream of a
// relay everything but its own entries, to anyone its repair target.
func (m *Machine) pump(p *peer, applied crdt.VersionVector) {
	target := p.repair
	if p == m.succ || p == m.up {
		target = applied
	}
	if m.lacks(p, target) {
		if !p.heard {
			if !p.probing {
				m.probe(p, 0)
			}
			return
		}
		for len(p.inflight) < m.cfg.MaxInflight && m.push(p, target) {
		}
	} else if p.fence != nil && !p.probing && m.tick-p.probeAt >= uint64(m.cfg.RetransmitTicks) && m.fencedOut(p, target) {
		// Only what p's fence holds back is left: ask now and then
		// whether the fence is still up.
		m.probe(p, 0)
	}
	// A push may have found the log trimmed and begun a digest sync.
	if p.sync != nil {
		m.pumpSync(p)
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
		if e.Node != p.ID && e.Counter > p.sentTo(e.Node) && !p.blocked(e.Node) {
			return true
		}
	}
	return false
}

// fencedOut reports whether p lacks something of target that its fence
// alone holds back.
func (m *Machine) fencedOut(p *peer, target crdt.VersionVector) bool {
	for _, e := range target {
		if e.Node != p.ID && e.Counter > p.sentTo(e.Node) && p.fence.Get(e.Node) > p.sentTo(e.Node) {
			return true
		}
	}
	return false
}

// blocked reports whether origin's entries are not to be pushed to p now:
// a digest sync towards p stands in for origin's log, which no longer
// reaches back to what p has; or p takes a digest sync that will cover
// what it lacks of origin, and refuses those entries until then.
func (p *peer) blocked(origin crdt.NodeID) bool {
	return (p.sync != nil && slices.Contains(p.sync.trimmed, origin)) || p.fence.Get(origin) > p.sentTo(origin)
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
		if o == p.ID || p.blocked(o) {
			continue
		}
		from := p.sentTo(o) + 1
		if from > e.Counter {
			continue
		}
		want := min(e.Counter-from+1, uint64(m.cfg.MaxBatchEntries-len(batch)))
		ents, err := m.st.ReadLog(o, from, int(want))
		if errors.Is(err, store.ErrLogTrimmed) {
			m.syncTrimmed(p, o)
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
			sz := entrySize(&ents[j])
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

// send queues msg for p and counts its encoded size. A push or chunk comes
// with its items' count and encoded size, measured while batching, so that
// only the rest of it is measured again.
func (m *Machine) send(p *peer, msg Message, items, itemBytes int) {
	m.enqueue(p.Peer, &p.sent, msg, items, itemBytes)
}

// enqueue is send to any node: its size counts in the machine's counters
// and in sent, the peer's own (nil for a node off the ring).
func (m *Machine) enqueue(to Peer, sent *Counters, msg Message, items, itemBytes int) {
	var size int
	if items > 0 {
		head := msg
		head.Entries, head.Records = nil, nil
		size = m.sizer.message(&head) + 2 + arrayHeaderLen(items) + itemBytes
	} else {
		size = m.sizer.message(&msg)
	}
	m.stats.MessagesSent++
	m.stats.BytesSent += uint64(size)
	if sent != nil {
		sent.MessagesSent++
		sent.BytesSent += uint64(size)
	}
	m.outbox = append(m.outbox, Envelope{To: to, Msg: msg})
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

// StableVector returns a vector under which dead records may be dropped
// (nil: unknown): every member gossip knows, this node included, has
// applied every log entry it covers, and has also applied every write that
// was concurrent with those entries. The second half matters: a write made
// before its node saw a tombstone, still on its way, would come back alone
// on the replicas that dropped the tombstone, and lose to it on those that
// kept it.
//
// It is found in two phases from the whole vectors the members last
// reported (live members their latest, down ones, see SetDown, the last
// they made): at some tick, the pointwise minimum S of the reports, and
// their maximum M, which bounds each member's own writes as of a report
// that covered S; once the minimum of the reports reaches M, every write
// concurrent with anything S covers has been applied everywhere, and S
// becomes the stable vector. It is nil until every live member has
// reported since it joined the ring and while a down member has not
// reported since this machine started; it lags the reports by the time
// writes take to reach every member.
func (m *Machine) StableVector() crdt.VersionVector { return m.stable.safe }

// stability is StableVector's state.
type stability struct {
	safe          crdt.VersionVector // the stable vector; nil: unknown
	pending, upto crdt.VersionVector // S and M of the phase under way
	phase         bool               // a phase is under way
}

// checkKnown makes StableVector unknown at once when a member is: one that
// joined, or is down and was never heard from. Phases advance only at
// rounds, when SetMembers and SetDown have both had their say.
func (m *Machine) checkKnown() {
	if _, _, ok := m.reported(); !ok {
		m.stable = stability{}
	}
}

// advanceStable runs StableVector's phases, at every anti-entropy round:
// reports come with probes.
func (m *Machine) advanceStable() {
	low, high, ok := m.reported()
	st := &m.stable
	switch {
	case !ok:
		*st = stability{} // a member is unknown: so is stability
	case !st.phase:
		st.pending, st.upto, st.phase = low, high, true
	case low.Descends(st.upto):
		st.safe = st.pending
		if st.safe == nil {
			st.safe = crdt.VersionVector{} // known, and empty
		}
		st.pending, st.upto = low, high
	}
}

// reported returns the pointwise minimum and maximum of the whole vectors
// reported by every member known, this node's applied vector included; not
// ok when a live member has not reported since it joined the ring or a
// down one since this machine started.
func (m *Machine) reported() (low, high crdt.VersionVector, ok bool) {
	if len(m.ring) == 0 {
		return nil, nil, false
	}
	low = m.st.Applied()
	high = low
	add := func(v crdt.VersionVector) {
		low = crdt.MinVV(low, v)
		high = crdt.MergeVV(high, v)
	}
	for _, p := range m.peers {
		if !p.fullHeard {
			return nil, nil, false
		}
		add(p.full)
	}
	if up := m.up; up != nil {
		// The parent must have what this domain collects: it counts as a
		// member for the origins this node holds (it has others, which no
		// member here will ever have).
		if !up.fullHeard {
			return nil, nil, false
		}
		add(crdt.Restrict(up.full, vectorNodes(m.st.Applied())))
	}
	for _, id := range m.down {
		if m.byID[id] != nil {
			continue // live again: counted above
		}
		r, heard := m.reports[id]
		if !heard {
			return nil, nil, false
		}
		add(r)
	}
	return low, high, true
}
