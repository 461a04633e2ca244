package replication

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/upu/upu/crdt"
)

// scanFactor bounds the records a sync chunk's scan looks at, as a
// multiple of MaxBatchEntries: a chunk of a store where few buckets differ
// ends after that many records rather than after the whole key space, so
// that no one Ready holds the loop for a whole scan.
const scanFactor = 16

// digestSync is a digest sync in progress towards one peer: it asks for
// the peer's bucket digests, compares them with this node's, and streams
// the records of the buckets that differ, one chunk in flight at a time.
// Every chunk is merged before the last one raises the peer's applied
// vector to seen, what this node had applied when it asked.
//
// The peer takes one sync at a time, and from its answer to the sync's end
// applies no log entry that seen covers (the fence, see incoming): an
// older delta applied after it computed its digests could bring back, in a
// bucket that compared equal, what this node had seen superseded, and the
// raise would then skip the delta that superseded it.
type digestSync struct {
	resync  uint64        // the peer's resync request it answers; 0: none
	trimmed []crdt.NodeID // origins the log cannot serve meanwhile
	bits    uint8
	seen    crdt.VersionVector // this node's applied vector when it asked

	askID uint64 // the digest request awaiting its answer; 0: none
	busy  bool   // the peer said it is taking another sync

	// Set once the digests are compared.
	streaming bool
	syncID    uint64 // the digest request the peer answered
	buckets   []byte // bitmap of the buckets that differ; nil: none
	start     []byte // first key of the current chunk
	next      []byte // first key after it; nil: the end
	id        uint64 // the chunk awaiting its ack; 0: none
	last      bool

	at uint64 // when the digest request or chunk in flight was sent
}

// incoming is the digest sync this node is taking: one at a time, from the
// peer whose digest request it answered, until the last chunk or until
// that peer goes quiet for staleRounds retransmission timeouts. Meanwhile
// the node refuses pushed log entries that seen covers (its fence), and
// its probes and acks say so.
type incoming struct {
	from crdt.NodeID
	id   uint64 // the digest request
	seen crdt.VersionVector
	at   uint64 // when the sync was last heard of
}

// syncRef names a sync: its sender, and the digest request that began it.
type syncRef struct {
	from crdt.NodeID
	id   uint64
}

// staleRounds is how many retransmission timeouts a sync taken or a
// resync request may go without progress before it is given up.
const staleRounds = 3

// fence returns the Seen vector of the digest sync this node is taking;
// nil if none.
func (m *Machine) fence() crdt.VersionVector {
	if m.in == nil {
		return nil
	}
	return m.in.seen
}

// AddContact makes p, a node outside this node's ring (of this domain or
// another), one it takes part in digest syncs with: those SyncWith begins
// towards p, and p's towards this node, answered at p.Addr. It pushes
// nothing to a contact, and a contact's vectors count for nothing else
// (StableVector, acks of pushes); a member's messages are a member's.
// Adding a contact again updates its address.
func (m *Machine) AddContact(p Peer) {
	if p.ID == m.cfg.Self || p.ID == 0 {
		return
	}
	i, ok := m.findContact(p.ID)
	if ok {
		m.contacts[i].Peer = p
		return
	}
	m.contacts = slices.Insert(m.contacts, i, &peer{Peer: p})
}

// RemoveContact forgets the contact id, with the sync towards it, if any.
func (m *Machine) RemoveContact(id crdt.NodeID) {
	if i, ok := m.findContact(id); ok {
		m.contacts = slices.Delete(m.contacts, i, i+1)
	}
}

func (m *Machine) findContact(id crdt.NodeID) (int, bool) {
	return slices.BinarySearchFunc(m.contacts, id, func(p *peer, id crdt.NodeID) int { return cmp.Compare(p.ID, id) })
}

// syncPeer returns what this node knows of id for a digest sync: the
// member, the upstream, else the contact; nil if none.
func (m *Machine) syncPeer(id crdt.NodeID) *peer {
	if p := m.byID[id]; p != nil {
		return p
	}
	if m.up != nil && m.up.ID == id {
		return m.up
	}
	if i, ok := m.findContact(id); ok {
		return m.contacts[i]
	}
	return nil
}

// SyncWith begins a digest sync towards id, any member (not only a ring
// neighbour) or a contact: id's store is brought to hold what this node's
// does, by the records of the buckets whose digests differ, and its
// applied vector raised to this node's. It reports whether a sync towards
// id is under way: not when id is neither a member nor a contact, nor
// while this node resyncs (Resync).
func (m *Machine) SyncWith(id crdt.NodeID) bool {
	p := m.syncPeer(id)
	return p != nil && m.startSync(p, 0)
}

// onContactAck takes an ack from a contact: only that of a sync chunk
// means something.
func (m *Machine) onContactAck(p *peer, msg *Message) {
	if s := p.sync; s != nil && msg.ID != 0 && s.id == msg.ID {
		p.timeouts = 0
		m.onChunkAck(p, s)
	}
}

// waiting reports whether a digest request or a chunk awaits its answer.
func (s *digestSync) waiting() bool { return s.askID != 0 || s.id != 0 }

// syncTrimmed begins a digest sync towards p, if none is under way, because
// origin's log no longer reaches back to what p has.
func (m *Machine) syncTrimmed(p *peer, origin crdt.NodeID) {
	if p.sync == nil && !m.startSync(p, 0) {
		return
	}
	if !slices.Contains(p.sync.trimmed, origin) {
		p.sync.trimmed = append(p.sync.trimmed, origin)
	}
}

// startSync begins a digest sync towards p, answering the resync request
// resync (0: none), unless this node is resyncing: its records may be
// older than what the domain has collected, so it spreads none. A sync
// already under way for another reason starts over, so that its digests
// are compared after the request.
func (m *Machine) startSync(p *peer, resync uint64) bool {
	if m.rs.active {
		return false
	}
	var trimmed []crdt.NodeID
	if old := p.sync; old != nil {
		if resync == 0 || old.resync == resync {
			return true
		}
		trimmed = old.trimmed
	}
	p.sync = &digestSync{resync: resync, trimmed: trimmed, bits: uint8(m.cfg.DigestBits)}
	m.stats.SyncsStarted++
	m.dirty = true
	return true
}

// pumpSync sends what p's sync needs next: the digest request, or the
// next chunk.
func (m *Machine) pumpSync(p *peer) {
	s := p.sync
	switch {
	case s.waiting():
	case !s.streaming:
		// Read before this node's digests and records: everything it
		// covers is in them.
		s.seen = m.st.Applied()
		s.askID, s.at, s.busy = p.newID(), m.tick, false
		m.stats.DigestRequestsSent++
		m.send(p, Message{Type: MsgDigestReq, ID: s.askID, Bits: s.bits, Seen: s.seen, Resync: s.resync}, 0, 0)
	default:
		m.sendChunk(p)
	}
}

// syncTimeout handles a digest request or chunk to p unanswered for rt
// ticks: it is sent again (a refused request is asked again without
// counting against p).
func (m *Machine) syncTimeout(p *peer, rt uint64) {
	s := p.sync
	if !s.waiting() || m.tick-s.at < rt {
		return
	}
	if !s.busy {
		p.timeouts++
		m.stats.Retransmits++
	}
	s.askID, s.id, s.busy = 0, 0, false
}

// onDigestReq raises the fence for a peer that begins a digest sync
// towards this node, and asks for this node's bucket digests, read in
// order with the writes asked for before (digestsRead answers); or, when
// this node is taking another peer's sync, refuses.
func (m *Machine) onDigestReq(p *peer, from crdt.NodeID, msg *Message) {
	m.stats.DigestRequestsReceived++
	m.resyncProgress(msg.Resync)
	if m.in != nil && m.in.from != from {
		m.stats.DigestRequestsRefused++
		m.reply(p, from, Message{Type: MsgDigest, ID: msg.ID})
		return
	}
	// A new request of the same peer replaces its sync.
	m.in = &incoming{from: from, id: msg.ID, seen: msg.Seen, at: m.tick}
	m.writes = append(m.writes, Write{From: from, kind: writeDigests, id: msg.ID, bits: msg.Bits})
}

// digestsRead answers the digest request w stands for with the digests
// read, if this node still takes that sync; a failed read lowers the fence
// and answers nothing (the sender asks again).
func (m *Machine) digestsRead(w *Write, err error) {
	in := m.in
	if in == nil || in.from != w.From || in.id != w.id {
		return // replaced or given up meanwhile
	}
	if err != nil {
		m.stats.ReadErrors++
		m.in = nil
		return
	}
	m.reply(m.syncPeer(w.From), w.From, Message{Type: MsgDigest, ID: w.id, Digests: w.digests})
}

// onDigest compares p's digests with this node's and starts streaming the
// buckets that differ. A refusal of the request waits for the next try; a
// refusal of a chunk (p no longer takes the sync) starts the sync over.
func (m *Machine) onDigest(ctx context.Context, p *peer, msg *Message) error {
	s := p.sync
	if s == nil || msg.ID == 0 {
		return nil
	}
	if s.streaming && msg.ID == s.syncID && len(msg.Digests) == 0 {
		p.timeouts = 0
		p.sync = &digestSync{resync: s.resync, trimmed: s.trimmed, bits: s.bits}
		m.stats.SyncsRestarted++
		return nil
	}
	if s.askID == 0 || msg.ID != s.askID {
		return nil // an answer to a request given up on
	}
	p.timeouts = 0
	if len(msg.Digests) == 0 {
		s.busy = true // asked again when the request times out
		return nil
	}
	s.askID = 0
	if len(msg.Digests) != 1<<s.bits {
		return fmt.Errorf("%w: %d digests for %d bits from %s", ErrBadMessage, len(msg.Digests), s.bits, p.ID)
	}
	own, err := m.st.BucketDigests(ctx, uint(s.bits))
	if err != nil {
		m.stats.ReadErrors++
		return fmt.Errorf("replication: digests for a sync to %s: %w", p.ID, err)
	}
	var differ uint64
	for b, d := range own {
		if d != msg.Digests[b] {
			if s.buckets == nil {
				s.buckets = make([]byte, bitmapLen(uint(s.bits)))
			}
			s.buckets[b/8] |= 1 << (b % 8)
			differ++
		}
	}
	m.stats.BucketsDiffering += differ
	p.sent.BucketsDiffering += differ
	s.streaming, s.syncID, s.start = true, msg.ID, nil
	return nil
}

// inBuckets reports whether key's bucket is set in the bitmap.
func inBuckets(bitmap []byte, bits uint8, key []byte) bool {
	b := crdt.Bucket(key, uint(bits))
	return bitmap[b/8]&(1<<(b%8)) != 0
}

// sendChunk sends p the sync chunk starting at p.sync.start: the records of
// the differing buckets, until the chunk is full or the scan has looked at
// scanFactor batches' worth of records.
func (m *Machine) sendChunk(p *peer) {
	s := p.sync
	var (
		recs []KeyRecord
		size int
	)
	s.next, s.last = nil, true
	if s.buckets != nil && len(s.start) == 0 {
		// The first chunk leads with the differing buckets' system records:
		// they are few, and kept whole (tombstones too), so they need no
		// drops.
		err := m.st.ScanSystem(context.Background(), func(key []byte, r crdt.Record) bool {
			if inBuckets(s.buckets, s.bits, key) {
				kr := KeyRecord{Key: key, Record: r, System: true}
				size += m.sizer.record(&kr)
				recs = append(recs, kr)
			}
			return true
		})
		if err != nil {
			m.stats.ReadErrors++
			return // tried again at the next tick
		}
	}
	if s.buckets != nil {
		looked := 0
		err := m.st.Scan(context.Background(), s.start, 0, func(key []byte, r crdt.Record) bool {
			if looked == scanFactor*m.cfg.MaxBatchEntries {
				s.next, s.last = key, false
				return false
			}
			if !inBuckets(s.buckets, s.bits, key) {
				looked++
				return true
			}
			kr := KeyRecord{Key: key, Record: r}
			sz := m.sizer.record(&kr)
			if len(recs) >= m.cfg.MaxBatchEntries || (len(recs) > 0 && size+sz > m.cfg.MaxBatchBytes) {
				s.next, s.last = key, false
				return false
			}
			looked++
			recs = append(recs, kr)
			size += sz
			return true
		})
		if err != nil {
			m.stats.ReadErrors++
			return // tried again at the next tick
		}
	}
	s.id, s.at = p.newID(), m.tick
	msg := Message{
		Type: MsgSnap, ID: s.id, Records: recs, Done: s.last, Bits: s.bits, Start: s.start,
		End: s.next, Buckets: s.buckets, Seen: s.seen, Resync: s.resync, Sync: s.syncID,
	}
	if s.last {
		// The receiver's own origin is its authority.
		msg.Applied = without(s.seen, p.ID)
	}
	m.stats.SyncChunksSent++
	m.stats.SyncRecordsSent += uint64(len(recs))
	p.sent.SyncChunksSent++
	p.sent.SyncRecordsSent += uint64(len(recs))
	m.send(p, msg, len(recs), size)
}

func (m *Machine) onChunkAck(p *peer, s *digestSync) {
	s.id = 0
	if s.last {
		p.sync = nil
		m.stats.SyncsDone++
		return
	}
	s.start = s.next
}

// onChunk merges a sync chunk: its records, and for every key this node
// holds in the chunk's range and buckets that the chunk lacks, a zero
// record, both under the sender's Seen vector: whatever the sender saw and
// no longer holds, this node drops too. That is how a replica loses data
// whose tombstone was collected elsewhere.
func (m *Machine) onChunk(ctx context.Context, p *peer, from crdt.NodeID, msg *Message) error {
	m.stats.SyncChunksReceived++
	if in := m.in; in == nil || in.from != from || in.id != msg.Sync {
		if m.done == (syncRef{from, msg.Sync}) {
			// A copy of a chunk of the sync that just ended, all merged.
			m.reply(p, from, Message{Type: MsgAck, ID: msg.ID, Applied: m.st.Applied()})
			return nil
		}
		// Not the sync this node takes (it restarted, or gave the sync
		// up): the sender must start over, with digests of now.
		m.stats.SyncChunksRefused++
		m.reply(p, from, Message{Type: MsgDigest, ID: msg.Sync})
		return nil
	}
	if err := checkChunk(msg); err != nil {
		return fmt.Errorf("%w: chunk %d from %s: %w", ErrBadMessage, msg.ID, from, err)
	}
	if !msg.Seen.Equal(m.in.seen) {
		return fmt.Errorf("%w: chunk %d from %s: seen %s, the request said %s", ErrBadMessage, msg.ID, from, msg.Seen, m.in.seen)
	}
	m.in.at = m.tick
	m.resyncProgress(msg.Resync)
	recs := msg.Records
	var drops int
	if len(msg.Buckets) > 0 {
		sys := systemPrefix(msg.Records)
		var err error
		if recs, drops, err = m.withDrops(ctx, msg.Records[len(sys):], msg.Start, msg.End, msg.Buckets, msg.Bits); err != nil {
			m.stats.ReadErrors++
			return fmt.Errorf("replication: chunk %d from %s: %w", msg.ID, from, err)
		}
		if len(sys) > 0 {
			recs = append(slices.Clip(sys), recs...)
		}
	}
	w := Write{From: from, Records: recs, Seen: msg.Seen, kind: writeChunk, id: msg.ID, sync: msg.Sync, resync: msg.Resync, drops: drops}
	if msg.Done {
		// Every earlier chunk was acknowledged, so merged, before the
		// sender sent this one: the records cover msg.Applied.
		w.Last, w.Raise = true, without(msg.Applied, m.cfg.Self)
	}
	m.writes = append(m.writes, w)
	return nil
}

// checkChunk checks what onChunk relies on: a bitmap that fits the bits,
// and records in key order within the range.
func checkChunk(msg *Message) error {
	if msg.Done && !msg.Seen.Descends(msg.Applied) {
		return fmt.Errorf("raise to %s beyond seen %s", msg.Applied, msg.Seen)
	}
	if len(msg.Buckets) > 0 && len(msg.Buckets) != bitmapLen(uint(msg.Bits)) {
		return fmt.Errorf("bitmap of %d bytes for %d bits", len(msg.Buckets), msg.Bits)
	}
	if len(msg.End) > 0 && bytes.Compare(msg.Start, msg.End) >= 0 {
		return fmt.Errorf("empty range [%q, %q)", msg.Start, msg.End)
	}
	sys := systemPrefix(msg.Records)
	if len(sys) > 0 && len(msg.Start) > 0 {
		return fmt.Errorf("system records in a chunk from %q: only the first chunk carries them", msg.Start)
	}
	for i := 1; i < len(sys); i++ {
		if bytes.Compare(sys[i-1].Key, sys[i].Key) >= 0 {
			return fmt.Errorf("system records not in key order at %q", sys[i].Key)
		}
	}
	data := msg.Records[len(sys):]
	for i := range data {
		if data[i].System {
			return fmt.Errorf("system record %q after data records", data[i].Key)
		}
	}
	for i := range data {
		k := data[i].Key
		if bytes.Compare(k, msg.Start) < 0 || (len(msg.End) > 0 && bytes.Compare(k, msg.End) >= 0) {
			return fmt.Errorf("record %q outside [%q, %q)", k, msg.Start, msg.End)
		}
		if i > 0 && bytes.Compare(data[i-1].Key, k) >= 0 {
			return fmt.Errorf("records not in key order at %q", k)
		}
	}
	return nil
}

// systemPrefix returns the system records a chunk leads with.
func systemPrefix(recs []KeyRecord) []KeyRecord {
	n := 0
	for n < len(recs) && recs[n].System {
		n++
	}
	return recs[:n]
}

// withDrops returns a chunk's records followed by a zero record for every
// key this node holds in the chunk's range and buckets that the chunk
// lacks, and how many those are. (It takes the chunk's fields rather than
// the message, which its scan's closure would make escape.)
func (m *Machine) withDrops(ctx context.Context, chunk []KeyRecord, start, end, buckets []byte, bits uint8) ([]KeyRecord, int, error) {
	recs := chunk
	i, drops := 0, 0
	err := m.st.Scan(ctx, start, 0, func(key []byte, _ crdt.Record) bool {
		if len(end) > 0 && bytes.Compare(key, end) >= 0 {
			return false
		}
		for i < len(chunk) && bytes.Compare(chunk[i].Key, key) < 0 {
			i++
		}
		if i < len(chunk) && bytes.Equal(chunk[i].Key, key) {
			return true
		}
		if inBuckets(buckets, bits, key) {
			if drops == 0 {
				recs = slices.Clip(recs) // never append into the message
			}
			recs = append(recs, KeyRecord{Key: key})
			drops++
		}
		return true
	})
	return recs, drops, err
}

// resync is this node's forced resync (Machine.Resync) in progress.
type resync struct {
	active bool
	// first and id bound the request IDs this resync asked under; id is
	// the latest. They grow across resyncs.
	first, id uint64
	target    crdt.NodeID // the member asked last; 0: none yet
	at        uint64      // when it was asked, or a sync last progressed
	progress  bool        // a sync progressed since target was asked
	tries     int         // requests to target without progress
}

// asked reports whether id names a request of the resync under way.
func (r *resync) asked(id uint64) bool {
	return r.active && id != 0 && id >= r.first && id <= r.id
}

// resyncTries is how many requests a member gets, each staleRounds
// retransmission timeouts apart, before another is asked.
const resyncTries = 2

// Resync makes this node drop the state it may hold that the domain has
// collected since: it asks a member for a full digest sync (its
// predecessor first, then any other live member it has heard from,
// another one whenever one does not progress or is resyncing itself), and
// merges it; every chunk's Seen vector makes it drop each sibling the
// member saw superseded. Until a Done chunk of a sync it asked for is
// merged, the node begins no digest sync towards others, so it spreads no
// stale record. If every live member turns out to be resyncing too, none
// has fresher state and the resync ends. The Replicator calls it after an
// absence longer than Config.ResyncAfter.
func (m *Machine) Resync() {
	if m.rs.active {
		return
	}
	m.rs = resync{active: true, first: m.rs.id + 1, id: m.rs.id}
	m.stats.ResyncsStarted++
	for _, p := range m.peers {
		p.sync = nil // a source no longer
	}
	for _, c := range m.contacts {
		c.sync = nil
	}
	m.dirty = true
}

// Resyncing reports whether a resync (Resync) is under way.
func (m *Machine) Resyncing() bool { return m.rs.active }

// resyncTick asks a member for the full sync when none was asked yet, when
// the one asked stopped answering, turned out to be resyncing or left, or
// when its sync has made no progress for a while (then it is asked again,
// up to resyncTries times, before another member is).
func (m *Machine) resyncTick() {
	rs := &m.rs
	p := m.byID[rs.target]
	ok := p != nil && m.resyncCandidate(p)
	if p != nil && (ok || rs.progress) && m.tick-rs.at < staleRounds*uint64(m.cfg.RetransmitTicks) {
		return // asked, and it answers or its sync progresses
	}
	if !ok || rs.tries >= resyncTries {
		if p = m.nextResyncTarget(); p == nil {
			rs.target = 0
			if len(m.peers) > 0 && !slices.ContainsFunc(m.peers, func(p *peer) bool { return !p.heard || !p.resyncing }) {
				m.endResync() // every live member is resyncing: none is fresher
			}
			return
		}
		rs.id++
		rs.target, rs.tries = p.ID, 0
	}
	rs.tries++
	rs.at, rs.progress = m.tick, false
	m.stats.ResyncRequestsSent++
	m.probe(p, rs.id)
}

// resyncCandidate reports whether p may be asked for a full sync: heard
// from, answering, not resyncing itself.
func (m *Machine) resyncCandidate(p *peer) bool {
	return p.heard && p.timeouts == 0 && !p.resyncing
}

// nextResyncTarget returns the member to ask next: the predecessor first,
// then the candidates after the last one asked, in ring order.
func (m *Machine) nextResyncTarget() *peer {
	if m.rs.target == 0 && m.pred != nil && m.resyncCandidate(m.pred) {
		return m.pred
	}
	from := slices.IndexFunc(m.peers, func(p *peer) bool { return p.ID == m.rs.target })
	for i := 1; i <= len(m.peers); i++ {
		if p := m.peers[(from+i+len(m.peers))%len(m.peers)]; m.resyncCandidate(p) {
			return p
		}
	}
	return nil
}

// resyncProgress notes that a sync answering the resync request id is
// under way.
func (m *Machine) resyncProgress(id uint64) {
	if m.rs.asked(id) {
		m.rs.at, m.rs.progress, m.rs.tries = m.tick, true, 0
	}
}

func (m *Machine) endResync() {
	m.rs = resync{id: m.rs.id}
	m.stats.ResyncsDone++
}

// serveResync answers p's resync request with a full digest sync, unless
// this node is resyncing itself (its probe ack says so).
func (m *Machine) serveResync(p *peer, id uint64) {
	if s := p.sync; s != nil && s.resync == id {
		return // a duplicate request
	}
	if m.startSync(p, id) {
		m.stats.ResyncsServed++
	}
}
