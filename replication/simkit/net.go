package simkit

import (
	"container/heap"
	"math/rand/v2"

	"github.com/upu/upu/crdt"
)

// Net is the simulations' message bus, after etcd raft's test network:
// every message is encoded as it would go on the wire, held for a random
// delay (so messages overtake each other), and delivered in order of due
// tick. A nemesis cuts links one way or both, loses and duplicates
// messages. Everything random comes from one seeded PRNG.
type Net struct {
	Loss     float64 // chance a message is lost
	Dup      float64 // chance a message is delivered twice
	MaxDelay int     // ticks; a message takes 1 to MaxDelay

	// Sent counts bytes sent per node, every incarnation; SentSince, since
	// the node's last start (the simulation resets it).
	Sent, SentSince map[crdt.NodeID]uint64
	// Dropped and Duped count the messages lost and delivered twice.
	Dropped, Duped int

	rng   *rand.Rand
	queue packetQueue
	seq   uint64
	cut   map[link]bool
}

type link struct{ from, to crdt.NodeID }

// Packet is a message in flight: due at tick At, the Seq'th sent.
type Packet struct {
	At, Seq  uint64
	From, To crdt.NodeID
	Data     []byte
}

// NewNet returns a network with no faults and a delay of one tick, whose
// faults and delays come from rng.
func NewNet(rng *rand.Rand) *Net {
	return &Net{
		rng:       rng,
		cut:       map[link]bool{},
		MaxDelay:  1,
		Sent:      map[crdt.NodeID]uint64{},
		SentSince: map[crdt.NodeID]uint64{},
	}
}

// Send queues an encoded message at tick now.
func (n *Net) Send(now uint64, from, to crdt.NodeID, data []byte) {
	n.Sent[from] += uint64(len(data))
	n.SentSince[from] += uint64(len(data))
	if n.Loss > 0 && n.rng.Float64() < n.Loss {
		n.Dropped++
		return
	}
	copies := 1
	if n.Dup > 0 && n.rng.Float64() < n.Dup {
		copies = 2
		n.Duped++
	}
	for range copies {
		n.seq++
		heap.Push(&n.queue, Packet{At: now + 1 + uint64(n.rng.IntN(n.MaxDelay)), Seq: n.seq, From: from, To: to, Data: data})
	}
}

// Due pops the next packet due at or before now.
func (n *Net) Due(now uint64) (Packet, bool) {
	if len(n.queue) == 0 || n.queue[0].At > now {
		return Packet{}, false
	}
	return heap.Pop(&n.queue).(Packet), true
}

// Open reports whether a message can go from one node to another now.
func (n *Net) Open(from, to crdt.NodeID) bool { return !n.cut[link{from, to}] }

// Cut cuts the link from one node to another, one way.
func (n *Net) Cut(from, to crdt.NodeID) { n.cut[link{from, to}] = true }

// Partition cuts every link between nodes of different groups.
func (n *Net) Partition(groups [][]crdt.NodeID) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					n.cut[link{a, b}] = true
				}
			}
		}
	}
}

// Heal restores every link.
func (n *Net) Heal() { clear(n.cut) }

type packetQueue []Packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if q[i].At != q[j].At {
		return q[i].At < q[j].At
	}
	return q[i].Seq < q[j].Seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(Packet)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}
