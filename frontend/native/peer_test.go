package native

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/upu/upu/protocol"
)

// echoLinks is a LinkAcceptor that answers what the link carries with the
// same bytes: first those read ahead with the OpPeerLink request, then
// whatever else arrives.
type echoLinks struct {
	remotes chan string
}

func (e echoLinks) AcceptLink(_ context.Context, nc net.Conn, buffered []byte, remote string) {
	e.remotes <- remote
	go func() {
		defer nc.Close()
		nc.Write(buffered)
		io.Copy(nc, nc)
	}()
}

// TestPeerLinkTakesBytesReadAhead: what a peer sent right behind its
// OpPeerLink request, read along with it, reaches the link, and the socket
// carries the link's bytes both ways from then on.
func TestPeerLinkTakesBytesReadAhead(t *testing.T) {
	links := echoLinks{remotes: make(chan string, 1)}
	n := startNode(t, options{PeerToken: "p", links: links})
	w := dial(t, n)
	w.hello(protocol.Hello{Role: protocol.RolePeer, Token: "p", NodeID: "00000000000000aa"})
	link, _ := w.frame(protocol.OpPeerLink, nil)
	ahead := []byte("read ahead")
	w.write(append(link, ahead...))
	if f := w.recv(); f.Opcode != protocol.OpPeerLink || !f.IsResponse() {
		t.Fatalf("answer %s: %v", f.Opcode, decodeErr(f))
	}
	if remote := <-links.remotes; remote != "00000000000000aa" {
		t.Fatalf("the link was handed remote %q, want the peer's node ID", remote)
	}
	later := []byte(", then more")
	w.write(later)
	// Past the response, the decoder holds raw bytes: read them as such.
	want := append(append([]byte(nil), ahead...), later...)
	got := append([]byte(nil), w.dec.Unread()...)
	w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(want) {
		buf := make([]byte, len(want))
		k, err := w.nc.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:k]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the link echoed %q, want %q", got, want)
	}
}
