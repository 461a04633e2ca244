package replication

import (
	"slices"

	"github.com/upu/upu/crdt"
)

// Counters count what replication did since the machine started. In
// PeerStats only the sending counters are filled.
type Counters struct {
	MessagesSent uint64 `json:"messages_sent"`
	BytesSent    uint64 `json:"bytes_sent"` // encoded message bodies
	PushesSent   uint64 `json:"pushes_sent"`
	EntriesSent  uint64 `json:"entries_sent"`
	AcksSent     uint64 `json:"acks_sent"`
	ProbesSent   uint64 `json:"probes_sent"`
	// Digest syncs towards peers whose logs no longer reach back, or that
	// asked for a resync: begun, finished, digest requests sent, buckets
	// found differing, chunks and records sent.
	SyncsStarted       uint64 `json:"syncs_started"`
	SyncsDone          uint64 `json:"syncs_done"`
	DigestRequestsSent uint64 `json:"digest_requests_sent"`
	BucketsDiffering   uint64 `json:"buckets_differing"`
	SyncChunksSent     uint64 `json:"sync_chunks_sent"`
	SyncRecordsSent    uint64 `json:"sync_records_sent"`
	// SyncsRestarted counts syncs the peer no longer took (it restarted,
	// or gave up waiting), begun again from the digests.
	SyncsRestarted uint64 `json:"syncs_restarted"`
	// ResyncsServed counts full syncs begun at a peer's resync request.
	ResyncsServed uint64 `json:"resyncs_served"`
	// Retransmits counts waits for an ack that ran out; GoBacks, acks that
	// showed a push was not applied (an earlier one was lost).
	Retransmits uint64 `json:"retransmits"`
	GoBacks     uint64 `json:"go_backs"`

	MessagesReceived       uint64 `json:"messages_received"`
	PushesReceived         uint64 `json:"pushes_received"`
	EntriesReceived        uint64 `json:"entries_received"`
	EntriesApplied         uint64 `json:"entries_applied"` // not duplicates
	AcksReceived           uint64 `json:"acks_received"`
	ProbesReceived         uint64 `json:"probes_received"`
	DigestRequestsReceived uint64 `json:"digest_requests_received"`
	// DigestRequestsRefused counts requests refused while taking another
	// peer's sync; SyncChunksRefused, chunks of a sync not (or no longer)
	// taken; SyncsAbandoned, syncs whose sender went quiet.
	DigestRequestsRefused uint64 `json:"digest_requests_refused"`
	SyncChunksRefused     uint64 `json:"sync_chunks_refused"`
	SyncsAbandoned        uint64 `json:"syncs_abandoned"`
	// EntriesFenced counts pushed entries refused while taking a sync
	// whose end covers them.
	EntriesFenced      uint64 `json:"entries_fenced"`
	SyncChunksReceived uint64 `json:"sync_chunks_received"`
	RecordsMerged      uint64 `json:"records_merged"`
	// RecordsDropped counts keys a chunk lacked that this node held in the
	// chunk's range and buckets: merged as zero records under the sender's
	// seen vector.
	RecordsDropped uint64 `json:"records_dropped"`

	// This node's own resyncs (Machine.Resync): begun, requests sent to
	// members, finished.
	ResyncsStarted     uint64 `json:"resyncs_started"`
	ResyncRequestsSent uint64 `json:"resync_requests_sent"`
	ResyncsDone        uint64 `json:"resyncs_done"`

	// OffRingReplies counts answers to a node outside the ring and the
	// contacts, sent back over the link the node's message came on.
	OffRingReplies uint64 `json:"off_ring_replies"`
	// ReadErrors counts failed reads of the log or the records;
	// WriteErrors, pushes and chunks the store did not (wholly) take
	// (Persisted with an error), left unacknowledged.
	ReadErrors  uint64 `json:"read_errors"`
	WriteErrors uint64 `json:"write_errors"`
}

// PeerStats is what this node knows of one other member.
type PeerStats struct {
	ID          crdt.NodeID `json:"id"`
	Addr        string      `json:"addr"`
	Successor   bool        `json:"successor"`
	Predecessor bool        `json:"predecessor"`
	// Heard is whether the member has reported its applied vector; Acked
	// is the latest report (a lower bound, stale for members other than
	// the successor).
	Heard bool               `json:"heard"`
	Acked crdt.VersionVector `json:"acked"`
	// Behind counts the log entries this node holds that the member has
	// not reported, over every origin but its own; Lag breaks it down by
	// origin.
	Behind       uint64             `json:"behind"`
	Lag          crdt.VersionVector `json:"lag"`
	Unresponsive bool               `json:"unresponsive"`
	Resyncing    bool               `json:"resyncing"` // as its last probe ack said
	Inflight     int                `json:"inflight"`
	Snapshot     bool               `json:"snapshot"` // a digest sync towards it is under way
	Sent         Counters           `json:"sent"`
}

// Stats describes replication at one instant.
type Stats struct {
	Self        crdt.NodeID        `json:"self"`
	Successor   crdt.NodeID        `json:"successor"` // 0: none
	Predecessor crdt.NodeID        `json:"predecessor"`
	Members     int                `json:"members"` // the ring, this node included
	Tick        uint64             `json:"tick"`
	Applied     crdt.VersionVector `json:"applied"`
	// Stable is StableVector: what every member (and the parent) has
	// applied (nil: unknown), which lets the log go. Collect is
	// CollectVector: what the store may collect dead records under (nil:
	// unknown, or held while the domain has child domains).
	Stable  crdt.VersionVector `json:"stable"`
	Collect crdt.VersionVector `json:"collect"`
	// Down are the members known down (Machine.SetDown), whose last
	// reported vectors Stable includes.
	Down []crdt.NodeID `json:"down"`
	// Resyncing is true while this node resyncs (Machine.Resync).
	Resyncing bool        `json:"resyncing"`
	Peers     []PeerStats `json:"peers"`
	// Upstream is the member of the parent domain this node reports to
	// (Machine.SetUpstream); nil: none. UpstreamRelay says whether this
	// node pushes it the log.
	Upstream      *PeerStats `json:"upstream,omitempty"`
	UpstreamRelay bool       `json:"upstream_relay,omitempty"`
	Counters
	// Transport is filled by Replicator.Stats.
	Transport TransportCounters `json:"transport"`
}

// Stats returns the machine's state and counters.
func (m *Machine) Stats() Stats {
	applied := m.st.Applied()
	st := Stats{
		Self:      m.cfg.Self,
		Members:   len(m.ring),
		Tick:      m.tick,
		Applied:   applied,
		Stable:    m.StableVector(),
		Collect:   m.CollectVector(),
		Down:      slices.Clone(m.down),
		Resyncing: m.rs.active,
		Peers:     make([]PeerStats, 0, len(m.peers)),
		Counters:  m.stats,
	}
	if m.succ != nil {
		st.Successor = m.succ.ID
	}
	if m.pred != nil {
		st.Predecessor = m.pred.ID
	}
	for _, p := range m.peers {
		st.Peers = append(st.Peers, m.peerStats(p, applied))
	}
	if m.up != nil {
		ps := m.peerStats(m.up, applied)
		st.Upstream, st.UpstreamRelay = &ps, m.upRelay
	}
	return st
}

func (m *Machine) peerStats(p *peer, applied crdt.VersionVector) PeerStats {
	ps := PeerStats{
		ID:           p.ID,
		Addr:         p.Addr,
		Successor:    p == m.succ,
		Predecessor:  p == m.pred,
		Heard:        p.heard,
		Acked:        p.acked,
		Unresponsive: p.timeouts > 0,
		Resyncing:    p.resyncing,
		Inflight:     len(p.inflight),
		Snapshot:     p.sync != nil,
		Sent:         p.sent,
	}
	ps.Lag = crdt.Lag(without(applied, p.ID), p.acked)
	ps.Behind = ps.Lag.Sum()
	return ps
}
