package replication

import (
	"container/heap"
	"math/rand/v2"

	"github.com/upu/upu/crdt"
)

// simNet is the simulation's message bus, after etcd raft's test network:
// every message is encoded as it would go on the wire, held for a random
// delay (so messages overtake each other), and delivered in order of due
// tick. A nemesis cuts links one way or both, loses and duplicates
// messages. Everything random comes from one seeded PRNG.
type simNet struct {
	rng      *rand.Rand
	queue    packetQueue
	seq      uint64
	cut      map[link]bool
	loss     float64 // chance a message is lost
	dup      float64 // chance a message is delivered twice
	maxDelay int     // ticks; a message takes 1 to maxDelay

	sent      map[crdt.NodeID]uint64 // bytes sent per node, every incarnation
	sentSince map[crdt.NodeID]uint64 // bytes sent per node since its last start
	dropped   int
	duped     int
}

type link struct{ from, to crdt.NodeID }

type packet struct {
	at       uint64
	seq      uint64
	from, to crdt.NodeID
	data     []byte
}

func newSimNet(rng *rand.Rand) *simNet {
	return &simNet{
		rng:       rng,
		cut:       map[link]bool{},
		maxDelay:  1,
		sent:      map[crdt.NodeID]uint64{},
		sentSince: map[crdt.NodeID]uint64{},
	}
}

// send queues an encoded message at tick now.
func (n *simNet) send(now uint64, from, to crdt.NodeID, data []byte) {
	n.sent[from] += uint64(len(data))
	n.sentSince[from] += uint64(len(data))
	if n.loss > 0 && n.rng.Float64() < n.loss {
		n.dropped++
		return
	}
	copies := 1
	if n.dup > 0 && n.rng.Float64() < n.dup {
		copies = 2
		n.duped++
	}
	for range copies {
		n.seq++
		heap.Push(&n.queue, packet{at: now + 1 + uint64(n.rng.IntN(n.maxDelay)), seq: n.seq, from: from, to: to, data: data})
	}
}

// due pops the next packet due at or before now.
func (n *simNet) due(now uint64) (packet, bool) {
	if len(n.queue) == 0 || n.queue[0].at > now {
		return packet{}, false
	}
	return heap.Pop(&n.queue).(packet), true
}

// open reports whether a message can go from one node to another now.
func (n *simNet) open(from, to crdt.NodeID) bool { return !n.cut[link{from, to}] }

// partition cuts every link between nodes of different groups.
func (n *simNet) partition(groups [][]crdt.NodeID) {
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

func (n *simNet) heal() { clear(n.cut) }

type packetQueue []packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(packet)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}
