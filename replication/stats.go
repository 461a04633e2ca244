package replication

import (
	"github.com/upu/upu/replication/crdt"
)

// Counters count what replication did since the machine started. In
// PeerStats only the sending counters are filled.
type Counters struct {
	MessagesSent        uint64 `json:"messages_sent"`
	BytesSent           uint64 `json:"bytes_sent"` // encoded message bodies
	PushesSent          uint64 `json:"pushes_sent"`
	EntriesSent         uint64 `json:"entries_sent"`
	AcksSent            uint64 `json:"acks_sent"`
	ProbesSent          uint64 `json:"probes_sent"`
	SnapshotsStarted    uint64 `json:"snapshots_started"`
	SnapshotsDone       uint64 `json:"snapshots_done"`
	SnapshotChunksSent  uint64 `json:"snapshot_chunks_sent"`
	SnapshotRecordsSent uint64 `json:"snapshot_records_sent"`
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
	SnapshotChunksReceived uint64 `json:"snapshot_chunks_received"`
	RecordsMerged          uint64 `json:"records_merged"`

	// Unroutable counts answers dropped because their addressee is not a
	// member this node knows (so it has no address for it).
	Unroutable uint64 `json:"unroutable"`
	// ReadErrors counts failed reads of the log or the records.
	ReadErrors uint64 `json:"read_errors"`
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
	Inflight     int                `json:"inflight"`
	Snapshot     bool               `json:"snapshot"` // a snapshot stream is under way
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
	Stable      crdt.VersionVector `json:"stable"`
	Peers       []PeerStats        `json:"peers"`
	Counters
	// Transport is filled by Replicator.Stats.
	Transport TransportCounters `json:"transport"`
}

// Stats returns the machine's state and counters.
func (m *Machine) Stats() Stats {
	applied := m.st.Applied()
	st := Stats{
		Self:     m.cfg.Self,
		Members:  len(m.ring),
		Tick:     m.tick,
		Applied:  applied,
		Stable:   m.StableVector(),
		Peers:    make([]PeerStats, 0, len(m.peers)),
		Counters: m.stats,
	}
	if m.succ != nil {
		st.Successor = m.succ.ID
	}
	if m.pred != nil {
		st.Predecessor = m.pred.ID
	}
	for _, p := range m.peers {
		ps := PeerStats{
			ID:           p.ID,
			Addr:         p.Addr,
			Successor:    p == m.succ,
			Predecessor:  p == m.pred,
			Heard:        p.heard,
			Acked:        p.acked,
			Unresponsive: p.timeouts > 0,
			Inflight:     len(p.inflight),
			Snapshot:     p.snap != nil,
			Sent:         p.sent,
		}
		for _, e := range applied {
			if have := p.acked.Get(e.Node); e.Node != p.ID && e.Counter > have {
				ps.Lag = append(ps.Lag, crdt.VVEntry{Node: e.Node, Counter: e.Counter - have})
				ps.Behind += e.Counter - have
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}
