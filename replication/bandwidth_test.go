package replication

import (
	"fmt"
	"testing"

	"github.com/upu/upu/store"
)

// bandwidth runs W writes of distinct keys with 100-byte values, spread
// round robin over a fault-free domain of n nodes, rate writes per tick,
// until every node has them all. It returns the bytes each node sent per
// write (encoded message bodies, every message type).
func bandwidth(tb testing.TB, n, writes, rate int) float64 {
	tb.Helper()
	sc := scenario{minNodes: n, maxNodes: n, maxDelay: 1, viewDelay: 1}
	s := newSim(tb, sc, 42)
	for _, node := range s.nodes {
		// Production defaults, not the simulation's random knobs.
		node.cfg = Config{Self: node.id, Seed: node.cfg.Seed}
		s.start(node)
		node.view, node.viewDue = s.allIDs(), 0
		node.m.SetMembers(s.ring(node.view))
	}
	value := make([]byte, 100)
	for i := 0; i < writes; {
		for range rate {
			if i == writes {
				break
			}
			node := s.nodes[i%n]
			w := store.Write{Op: store.OpSet, Key: fmt.Appendf(nil, "key-%08d", i), Value: value}
			if res, _ := node.st.Write(w); res.Err != nil {
				tb.Fatal(res.Err)
			}
			node.m.LocalWrite()
			i++
		}
		s.step(false)
	}
	if !s.settle() {
		tb.Fatalf("no convergence: %v\n%s", s.err, s.report())
	}
	var total uint64
	for _, node := range s.nodes {
		total += s.net.Sent[node.id]
	}
	return float64(total) / float64(n) / float64(writes)
}

// TestBandwidthFlat checks that each delta crosses the ring once: the bytes
// a node sends per write stay roughly flat as the domain grows (from 3 to 7
// nodes a node forwards 6/7 rather than 2/3 of all writes: 1.29x).
func TestBandwidthFlat(t *testing.T) {
	const writes, rate = 3000, 10
	per := map[int]float64{}
	for _, n := range []int{3, 5, 7} {
		per[n] = bandwidth(t, n, writes, rate)
		t.Logf("nodes=%d bytes per node per write=%.1f", n, per[n])
	}
	if ratio := per[7] / per[3]; ratio > 1.5 {
		t.Fatalf("7 nodes send %.2fx the bytes per node per write of 3 nodes, want at most 1.5x", ratio)
	} else {
		t.Logf("7 vs 3 nodes: %.2fx", ratio)
	}
}

// BenchmarkRingBandwidth reports bytes sent per node per write, and the
// time a simulated domain takes per write (encoding, decoding, applying on
// every replica).
func BenchmarkRingBandwidth(b *testing.B) {
	for _, n := range []int{3, 5, 7} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = bandwidth(b, n, 1000, 10)
			}
			b.ReportMetric(per, "bytes/node/write")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/write")
		})
	}
}
