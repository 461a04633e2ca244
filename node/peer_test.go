package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upu/upu/peer"
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
