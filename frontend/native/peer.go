package native

import (
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication"
)

// peerOnly refuses a peer request from a connection that did not prove the
// peer role: a client cannot inject replication traffic.
func (c *conn) peerOnly(f protocol.Frame, what string) bool {
	if c.role == protocol.RolePeer {
		return true
	}
	rid := c.newID()
	c.log.WithFields(logrus.Fields{logging.FieldReqID: rid.String(), "role": c.role}).Warn(what + " refused: connection lacks the peer role")
	c.fail(f, rid, protocol.CodeUnauthorized, "replication needs the peer role", false)
	return false
}

// replicate hands a peer's replication message to the replicator.
func (c *conn) replicate(f protocol.Frame) {
	if !c.peerOnly(f, "replication message") {
		return
	}
	if c.s.inbox == nil {
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
	if err := c.s.inbox.Deliver(c.peer, msg); err != nil {
		// Full or closing: the sender retransmits.
		c.fail(f, c.newID(), protocol.CodeUnavailable, err.Error(), false)
		return
	}
	c.reply(f, nil)
}

// acceptLink answers a peer's request to turn the connection into a peer
// link; once the answer is written the connection loop hands the socket,
// with buffered (what was read past the request), to Deps.Links.
func (c *conn) acceptLink(f protocol.Frame, buffered []byte) {
	if !c.peerOnly(f, "peer link") {
		return
	}
	if c.s.links == nil {
		c.fail(f, c.newID(), protocol.CodeUnavailable, "this node takes no peer links", false)
		return
	}
	c.reply(f, nil)
	c.handoff = append(make([]byte, 0, len(buffered)), buffered...)
}
