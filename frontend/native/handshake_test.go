package native

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/upu/upu/protocol"
)

// TestHandshakeTimeoutBoundsTheWholeHandshake: a hello dribbled a byte at a
// time, each byte well within the handshake timeout, is cut off when the
// timeout has passed since the connection opened. Found by
// integration.TestAbuse: the deadline was renewed on every read, so slow
// senders could hold every connection slot without ever shaking hands.
func TestHandshakeTimeoutBoundsTheWholeHandshake(t *testing.T) {
	const timeout, dribble = 300 * time.Millisecond, 50 * time.Millisecond
	n := startNode(t, options{HandshakeTimeout: timeout})
	w := dial(t, n)
	frame, _ := w.frame(protocol.OpHello, &protocol.Hello{Version: protocol.Version, Client: "a client dribbling its hello"})
	if whole := time.Duration(len(frame)) * dribble; whole < 3*timeout {
		t.Fatalf("the hello takes %s to dribble, want several handshake timeouts", whole)
	}
	tick := time.NewTicker(dribble)
	defer tick.Stop()
	for _, b := range frame {
		<-tick.C
		if _, err := w.nc.Write([]byte{b}); err != nil {
			break // the node closed the connection, as it should
		}
	}
	f, err := w.next()
	if err == nil {
		t.Fatalf("the node answered a hello dribbled over %s with %s; want the connection closed after %s",
			time.Duration(len(frame))*dribble, f.Opcode, timeout)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("want the node to close the connection, got %v", err)
	}
}
