package peer

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/protocol"
)

// testNode stands for a node's binary protocol port as far as links need
// it: a hello with the peer role and the node's token, then OpPeerLink,
// whose connection goes to the node's Pool. silent makes it answer the
// handshake and then never send another byte; it is closed once silentProbe
// has arrived, the body of a request.
type testNode struct {
	id         string
	token      string
	silent     chan struct{}
	silentOnce sync.Once
	pool       *Pool
	ln         net.Listener

	accepted atomic.Int32 // links handed to the pool
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

// startTestNode starts a node with a Pool made of cfg (Self and Token
// filled in) and deps, serving on 127.0.0.1:0 until the test ends.
func startTestNode(t testing.TB, id, token string, cfg Config, deps Deps) *testNode {
	t.Helper()
	cfg.Self, cfg.Token = id, token
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{id: id, token: token, pool: p, ln: ln}
	n.wg.Add(1)
	go n.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Close()
		n.kill()
		n.wg.Wait()
	})
	return n
}

func (n *testNode) node() Node { return Node{ID: n.id, Addr: n.ln.Addr().String()} }

func (n *testNode) serve() {
	defer n.wg.Done()
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		n.conns = append(n.conns, nc)
		n.mu.Unlock()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.handshake(nc)
		}()
	}
}

// kill cuts every connection the node accepted.
func (n *testNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

func (n *testNode) handshake(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	dec := protocol.NewDecoder(0)
	next := func() (protocol.Frame, bool) {
		for {
			f, ok, err := dec.Next()
			if err != nil {
				return f, false
			}
			if ok {
				return f, true
			}
			if _, err := dec.ReadOnce(nc); err != nil {
				return f, false
			}
		}
	}
	answer := func(h protocol.Header, msg any) {
		out, _ := protocol.AppendFrame(nil, h, msg)
		nc.Write(out)
	}
	f, ok := next()
	if !ok {
		nc.Close()
		return
	}
	var h protocol.Hello
	if err := protocol.DecodeBody(f.Body, &h); err != nil || h.Role != protocol.RolePeer || h.Token != n.token {
		answer(protocol.Header{Opcode: protocol.OpError, Flags: protocol.FlagResponse, ReqID: f.ReqID}, &protocol.Error{Code: protocol.CodeUnauthorized})
		nc.Close()
		return
	}
	answer(protocol.Header{Opcode: protocol.OpHello, Flags: protocol.FlagResponse, ReqID: f.ReqID}, &protocol.Hello{Version: protocol.Version, NodeID: n.id})
	f, ok = next()
	if !ok || f.Opcode != protocol.OpPeerLink {
		nc.Close()
		return
	}
	answer(protocol.Header{Opcode: protocol.OpPeerLink, Flags: protocol.FlagResponse, ReqID: f.ReqID}, nil)
	nc.SetDeadline(time.Time{})
	if n.silent != nil {
		var got []byte
		buf := make([]byte, 4096)
		for {
			k, err := nc.Read(buf)
			if err != nil {
				nc.Close()
				return
			}
			if got = append(got, buf[:k]...); bytes.Contains(got, []byte(silentProbe)) {
				n.silentOnce.Do(func() { close(n.silent) })
			}
		}
	}
	n.accepted.Add(1)
	n.pool.AcceptLink(context.Background(), nc, bytes.Clone(dec.Unread()), h.NodeID)
}

// silentProbe is what a test sends a silent node.
const silentProbe = "are you there?"

// countingDial counts the dials a Pool makes.
type countingDial struct{ n atomic.Int32 }

func (c *countingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// call is Call with a bound for tests.
func call(t *testing.T, p *Pool, to Node, kind Kind, req string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := p.Call(ctx, to, kind, []byte(req))
	return string(resp), err
}

// kindEcho and kindFail are test kinds: an echo naming who asked, and a
// handler that always fails.
const (
	kindEcho Kind = 200
	kindFail Kind = 201
)

func registerEcho(n *testNode) {
	n.pool.Register(kindEcho, func(_ context.Context, from string, req []byte) ([]byte, error) {
		return append([]byte(n.id+" to "+from+": "), req...), nil
	})
	n.pool.Register(kindFail, func(context.Context, string, []byte) ([]byte, error) {
		return nil, errors.New("handler says no")
	})
}

// fakeClock returns a fake clock for Deps.
func fakeClock() *clock.Fake { return clock.NewFake(time.Unix(1_700_000_000, 0)) }
