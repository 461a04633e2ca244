package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upu/upu/peer"
	"github.com/upu/upu/protocol"
)

// TestPeerLinkHandOff: a node that replicates hands a peer's OpPeerLink
// connection to its links, which serve the peer's requests on it; a bad
// token, or a node that does not replicate, refuses the link.
func TestPeerLinkHandOff(t *testing.T) {
	domainNode := startMember(t, Config{PeerToken: "p"})
	standalone := startNode(t, Config{Standalone: true, PeerToken: "p"})
	tests := []struct {
		name    string
		n       *Node
		token   string
		kind    peer.Kind
		wantErr error
	}{
		{"linked: a bad replication message reaches the replicator's handler", domainNode, "p", peer.KindReplicate, peer.ErrRemote},
		{"linked: a kind nobody serves", domainNode, "p", 99, peer.ErrUnknownKind},
		{"bad token", domainNode, "wrong", peer.KindReplicate, peer.ErrRefused},
		{"standalone node", standalone, "p", peer.KindReplicate, peer.ErrRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			links, err := peer.New(peer.Config{Self: "00000000000000aa", Token: tc.token}, peer.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { links.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			to := peer.Node{ID: tc.n.ID().String(), Addr: tc.n.Addr().String()}
			if _, err := links.Call(ctx, to, tc.kind, []byte{0xc1}); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Call = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestPeerLinkTakesBytesReadAhead: what a peer sent right behind its
// OpPeerLink request, read along with it, reaches the link: a yamux ping
// sent in the same write is answered.
func TestPeerLinkTakesBytesReadAhead(t *testing.T) {
	n := startMember(t, Config{PeerToken: "p"})
	w := dial(t, n)
	w.hello(protocol.Hello{Role: protocol.RolePeer, Token: "p", NodeID: "00000000000000aa"})
	link, _ := w.frame(protocol.OpPeerLink, nil)
	// A yamux header: version 0, type ping, flags SYN, stream 0, ping ID.
	ping := []byte{0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0x12, 0x34}
	w.write(append(link, ping...))
	if f := w.recv(); f.Opcode != protocol.OpPeerLink || !f.IsResponse() {
		t.Fatalf("answer %s: %v", f.Opcode, decodeErr(f))
	}
	// Past the response, the decoder holds raw bytes: read them as such.
	got := append([]byte(nil), w.dec.Unread()...)
	w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(ping) {
		buf := make([]byte, len(ping))
		k, err := w.nc.Read(buf)
		if err != nil {
			t.Fatalf("no ping answer: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	// The answer: type ping, flags ACK, the same ping ID.
	if want := []byte{0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0x12, 0x34}; !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("answer %x, want %x", got, want)
	}
}
