package replication

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	peerlink "github.com/upu/upu/peer" // beside the Machine's own type peer
)

// Links is what LinkTransport needs of a *peer.Pool.
type Links interface {
	Send(ctx context.Context, to peerlink.Node, kind peerlink.Kind, msg []byte) error
	Register(kind peerlink.Kind, h peerlink.Handler)
}

// Inbox takes the messages peers send; *Replicator is one.
type Inbox interface {
	Deliver(from crdt.NodeID, msg Message) error
}

// LinkTransport carries replication messages over peer links: each message
// is one one-way message of kind peer.KindReplicate, encoded once here and
// decoded once by the receiver's handler, which hands it to the receiver's
// inbox (one that refuses counts it there, and the sender retransmits as
// for any loss). A Peer with no address is reached over a link it opened
// to this node, so an answer to a node outside the ring still gets there.
type LinkTransport struct {
	links Links
	log   *logrus.Entry
	bufs  sync.Pool // encoding buffers, one per Send under way
}

// NewLinkTransport returns a transport over links; log may be nil.
func NewLinkTransport(links Links, log *logrus.Entry) *LinkTransport {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &LinkTransport{links: links, log: log}
}

// maxKeptBuf is the largest encoding buffer kept for the next Send: a
// digest-sync chunk's goes to the garbage collector.
const maxKeptBuf = 256 << 10

// Send implements Transport.
func (t *LinkTransport) Send(ctx context.Context, to Peer, msg Message) error {
	buf, _ := t.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = AppendMessage((*buf)[:0], &msg)
	// Send has written the message out when it returns.
	err := t.links.Send(ctx, peerlink.Node{ID: to.ID.String(), Addr: to.Addr}, peerlink.KindReplicate, *buf)
	if cap(*buf) <= maxKeptBuf {
		t.bufs.Put(buf)
	}
	if err != nil {
		return fmt.Errorf("upu: send %s to %s: %w", msg.Type, to.ID, err)
	}
	return nil
}

// Serve makes every replication message the links receive go to inbox,
// with the sender's node ID from its link's handshake.
func (t *LinkTransport) Serve(inbox Inbox) {
	t.links.Register(peerlink.KindReplicate, func(_ context.Context, from string, req []byte) ([]byte, error) {
		id, err := crdt.ParseNodeID(from)
		if err != nil {
			return nil, fmt.Errorf("upu: replication from a peer with a bad node id %q: %w", from, err)
		}
		msg, err := UnmarshalMessage(req) // req is the handler's: msg may keep it
		if err != nil {
			t.log.WithError(err).WithField(logging.FieldPeer, from).WithField(logging.FieldEvent, logging.EventProtocolError).Warn("bad replication message")
			return nil, err
		}
		// Full or closing: the inbox counts it, the sender retransmits.
		return nil, inbox.Deliver(id, msg)
	})
}
