package replication

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
	peerlink "github.com/upu/upu/peer"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// linkNode is a node's binary port as far as peer links need it (hello,
// then OpPeerLink handed to its pool), with an inbox that records what
// arrives, or refuses it when busy is set.
type linkNode struct {
	id    crdt.NodeID
	links *peerlink.Pool
	tr    *LinkTransport
	ln    net.Listener

	mu      sync.Mutex
	got     []inbound
	busy    bool
	refused int
	seen    chan struct{} // signalled on every message taken or refused
}

func (n *linkNode) Deliver(from crdt.NodeID, msg Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer func() { n.seen <- struct{}{} }()
	if n.busy {
		n.refused++
		return ErrBusy
	}
	n.got = append(n.got, inbound{from: from, msg: msg})
	return nil
}

func (n *linkNode) peer() Peer { return Peer{ID: n.id, Addr: n.ln.Addr().String()} }

func startLinkNode(t *testing.T, id crdt.NodeID) *linkNode {
	t.Helper()
	links, err := peerlink.New(peerlink.Config{Self: id.String()}, peerlink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &linkNode{id: id, links: links, tr: NewLinkTransport(links, nil), ln: ln, seen: make(chan struct{}, 16)}
	n.tr.Serve(n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n.handshake(nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		links.Close()
	})
	return n
}

// handshake answers a peer's hello, then its OpPeerLink, and hands the
// connection to the pool.
func (n *linkNode) handshake(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	dec := protocol.NewDecoder(0)
	next := func() (protocol.Frame, error) {
		for {
			f, ok, err := dec.Next()
			if ok || err != nil {
				return f, err
			}
			if _, err := dec.ReadOnce(nc); err != nil {
				return f, err
			}
		}
	}
	var h protocol.Hello
	f, err := next()
	if err != nil || protocol.DecodeBody(f.Body, &h) != nil {
		nc.Close()
		return
	}
	out, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello, Flags: protocol.FlagResponse, ReqID: f.ReqID}, &protocol.Hello{Version: protocol.Version, NodeID: n.id.String()})
	nc.Write(out)
	if f, err = next(); err != nil || f.Opcode != protocol.OpPeerLink {
		nc.Close()
		return
	}
	nc.Write(protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpPeerLink, Flags: protocol.FlagResponse, ReqID: f.ReqID}))
	nc.SetDeadline(time.Time{})
	n.links.AcceptLink(context.Background(), nc, bytes.Clone(dec.Unread()), h.NodeID)
}

// next waits for the next message n takes or refuses, and returns the
// last one taken.
func (n *linkNode) next(t *testing.T) inbound {
	t.Helper()
	select {
	case <-n.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no message arrived")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[len(n.got)-1]
}

// TestLinkTransport: a message reaches the addressed node's inbox with the
// sender's node ID, and the answer goes back over the same link to a
// sender with no known address; a refusing inbox drops the message, and
// the messages after it arrive.
func TestLinkTransport(t *testing.T) {
	a := startLinkNode(t, 0xa)
	b := startLinkNode(t, 0xb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	push := Message{Type: MsgPush, ID: 7, Entries: []store.LogEntry{sampleEntry(0xa, 1, "k", "v", 0)}}
	if err := a.tr.Send(ctx, b.peer(), push); err != nil {
		t.Fatal(err)
	}
	in := b.next(t)
	if in.from != a.id || in.msg.Type != MsgPush || in.msg.ID != 7 || len(in.msg.Entries) != 1 || string(in.msg.Entries[0].Key) != "k" {
		t.Fatalf("b took %+v from %s", in.msg, in.from)
	}
	ack := Message{Type: MsgAck, ID: 7, Applied: crdt.VersionVector{{Node: 0xa, Counter: 1}}}
	if err := b.tr.Send(ctx, Peer{ID: a.id}, ack); err != nil {
		t.Fatalf("ack to a sender without an address: %v", err)
	}
	if in := a.next(t); in.from != b.id || in.msg.Type != MsgAck || in.msg.ID != 7 {
		t.Fatalf("a took %+v from %s", in.msg, in.from)
	}
	b.mu.Lock()
	b.busy = true
	b.mu.Unlock()
	if err := a.tr.Send(ctx, b.peer(), push); err != nil {
		t.Fatal(err)
	}
	b.next(t)
	b.mu.Lock()
	b.busy = false
	refused := b.refused
	b.mu.Unlock()
	if refused != 1 {
		t.Fatalf("%d messages refused, want 1", refused)
	}
	push.ID = 8
	if err := a.tr.Send(ctx, b.peer(), push); err != nil {
		t.Fatal(err)
	}
	if in := b.next(t); in.msg.ID != 8 {
		t.Fatalf("after a refusal b took %+v", in.msg)
	}
	if err := a.tr.Send(ctx, Peer{ID: 0xc}, push); !errors.Is(err, peerlink.ErrNoRoute) {
		t.Fatalf("Send to an unknown node without an address = %v, want ErrNoRoute", err)
	}
}
