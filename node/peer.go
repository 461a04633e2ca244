package node

import (
	"bytes"
	"context"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
)

// LinkAcceptor takes over a connection whose authorized peer asked for OpPeerLink.
type LinkAcceptor interface {
	AcceptLink(ctx context.Context, conn net.Conn, buffered []byte, remote string)
}

// peerLink answers OpPeerLink and hands the connection to the node's peer
// links; the connection loop then ends without closing it. Only a
// connection that proved the peer role may ask: a client cannot inject
// peer traffic.
func (c *conn) peerLink(f protocol.Frame) {
	if c.role != protocol.RolePeer {
		rid := c.newID()
		c.log.WithFields(logrus.Fields{logging.FieldReqID: rid.String(), "role": c.role}).Warn("peer link refused: connection lacks the peer role")
		c.fail(f, rid, protocol.CodeUnauthorized, "a peer link needs the peer role", true)
		return
	}
	links := c.s.n.links
	if links == nil {
		c.fail(f, c.newID(), protocol.CodeUnavailable, "this node does not replicate", true)
		return
	}
	c.flushWrites()
	c.reply(f, nil)
	c.closed = true
	if !c.flushOut() {
		return
	}
	c.nc.SetDeadline(time.Time{})
	c.handedOff = true
	links.AcceptLink(context.Background(), c.nc, bytes.Clone(c.dec.Unread()), c.peer.String())
}
