package native

import (
	"bytes"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
)

// peerLink answers OpPeerLink; once the answer is written the connection
// loop hands the socket, with what was read past the request, to
// Deps.Links and ends without closing it. Only a connection that proved
// the peer role may ask: a client cannot inject peer traffic. A refusal
// closes the connection, whose peer would otherwise go on in the link's
// format.
func (c *conn) peerLink(f protocol.Frame) {
	if c.role != protocol.RolePeer {
		rid := c.newID()
		c.log.WithFields(logrus.Fields{logging.FieldReqID: rid.String(), "role": c.role}).WithField(logging.FieldEvent, logging.EventForbidden).Warn("peer link refused: connection lacks the peer role")
		c.fail(f, rid, protocol.CodeUnauthorized, "a peer link needs the peer role", true)
		return
	}
	if c.s.links == nil {
		c.fail(f, c.newID(), protocol.CodeUnavailable, "this node does not replicate", true)
		return
	}
	c.flushWrites()
	c.reply(f, nil)
	c.handoff = bytes.Clone(c.dec.Unread())
	if c.handoff == nil {
		c.handoff = []byte{} // set: the link takes the socket even with nothing read past the request
	}
}
