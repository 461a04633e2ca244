package node

import (
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/replication"
)

// peerInbox takes replication messages that peers send; the replicator
// implements it. Deliver must not block: a full inbox refuses the message
// and the sender retransmits later.
type peerInbox interface {
	Deliver(from crdt.NodeID, msg replication.Message) error
}
