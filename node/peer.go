package node

import (
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication"
)

// peerInbox takes replication messages that peers send; the replicator
// implements it. Deliver must not block: a full inbox refuses the message
// and the sender retransmits later.
type peerInbox interface {
	Deliver(from crdt.NodeID, msg replication.Message) error
}

// replicate hands a peer's replication message to the replicator. Only a
// connection that proved the peer role may send one: a client cannot inject
// replication traffic.
func (c *conn) replicate(f protocol.Frame) {
	if c.role != protocol.RolePeer {
		rid := c.newID()
		c.log.WithFields(logrus.Fields{logging.FieldReqID: rid.String(), "role": c.role}).Warn("replication message refused: connection lacks the peer role")
		c.fail(f, rid, protocol.CodeUnauthorized, "replication needs the peer role", false)
		return
	}
	inbox := c.s.n.inbox()
	if inbox == nil {
		c.fail(f, c.newID(), protocol.CodeUnavailable, "this node does not replicate", false)
		return
	}
	msg, err := replication.UnmarshalMessage(f.Body)
	if err != nil {
		rid := c.newID()
		c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldPeer: c.peer.String()}).Warn("bad replication message")
		c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
		return
	}
	if err := inbox.Deliver(c.peer, msg); err != nil {
		// Full or closing: the sender retransmits.
		c.fail(f, c.newID(), protocol.CodeUnavailable, err.Error(), false)
		return
	}
	c.reply(f, nil)
}

func (n *Node) inbox() peerInbox { return n.peers }
