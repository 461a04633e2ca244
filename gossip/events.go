package gossip

import (
	"sync"

	"github.com/hashicorp/serf/serf"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// eventBuffer is the capacity of the channel serf sends events on. Serf
// sends while holding its member lock, and its forwarding goroutine blocks
// on a full channel, even after shutdown; the loop drains the channel on
// Close, and a capacity above serf's own queue (1024) lets that goroutine
// finish whatever is left without blocking.
const eventBuffer = 2048

// run is the event loop: it logs member events and signals subscribers.
// It stops when stop is closed, after serf has shut down.
func (g *Gossip) run() {
	defer close(g.loopDone)
	for {
		select {
		case e := <-g.events:
			g.handle(e)
		case <-g.stop:
			for {
				select {
				case <-g.events:
				default:
					return
				}
			}
		}
	}
}

func eventMessage(t serf.EventType) string {
	switch t {
	case serf.EventMemberJoin:
		return "member joined"
	case serf.EventMemberLeave:
		return "member left"
	case serf.EventMemberFailed:
		return "member failed"
	case serf.EventMemberUpdate:
		return "member updated"
	case serf.EventMemberReap:
		return "member reaped"
	}
	return "member event " + t.String()
}

func (g *Gossip) handle(e serf.Event) {
	me, ok := e.(serf.MemberEvent)
	if !ok {
		return // user events and queries: UPU sends none
	}
	msg := eventMessage(me.Type)
	for _, m := range me.Members {
		member := toMember(m, g.cfg.NodeID)
		g.log.WithFields(logrus.Fields{
			logging.FieldPeer:   member.ID,
			logging.FieldRemote: member.GossipAddr,
			logging.FieldDomain: member.Domain,
		}).Info(msg)
	}
	g.subs.notify()
}

// subscribers holds the channels Subscribe handed out. Each has room for
// one signal; a signal sent while one is pending is dropped, so a slow
// consumer never blocks the event loop and sees the latest view when it
// reads Members.
type subscribers struct {
	mu     sync.Mutex
	next   int
	chans  map[int]chan struct{}
	closed bool
}

func (s *subscribers) add() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	ch <- struct{}{} // the first read gives the current view
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	if s.chans == nil {
		s.chans = make(map[int]chan struct{})
	}
	id := s.next
	s.next++
	s.chans[id] = ch
	return ch, func() { s.remove(id) }
}

func (s *subscribers) remove(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.chans[id]; ok {
		delete(s.chans, id)
		close(ch)
	}
}

func (s *subscribers) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// close closes every channel, ending consumers' loops.
func (s *subscribers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, ch := range s.chans {
		delete(s.chans, id)
		close(ch)
	}
}
