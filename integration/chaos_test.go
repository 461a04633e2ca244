package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/upu/upu/client"
)

// chaosDurationEnv makes TestChaosSoak run (for that long: "10m"); unset,
// the soak is skipped and TestChaos runs its short mixes only.
const chaosDurationEnv = "UPU_CHAOS_DURATION"

const (
	chaosNodes          = 3
	chaosWorkersPerNode = 2
	chaosCounters       = 3                       // counter-only keys
	chaosRunLength      = 12 * time.Second        // workload and nemesis per run
	chaosOpPace         = 2 * time.Millisecond    // per worker: bounds the keys to verify
	chaosOpTimeout      = time.Second             // per operation
	chaosConverge       = 60 * time.Second        // digests must agree within
	chaosFaultHold      = 2500 * time.Millisecond // a fault lives 500ms plus up to this
)

// A nemesis kind.
const (
	faultPartition = iota // iptables DROP between groups, both directions
	faultLinkDown         // a node's veth down
	faultLoss             // 20% inbound loss on a node
	faultKill             // kill -9, restarted when the fault ends
	faultPause            // SIGSTOP, SIGCONT when the fault ends
)

var faultNames = [...]string{"partition", "link-down", "loss", "kill", "pause"}

// TestChaos runs three short chaos runs on real processes in network
// namespaces, each with its own mix of faults, and checks the promises of
// DESIGN.md section 10 after the faults heal.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: real processes under faults")
	}
	requireNetns(t)
	for _, tc := range []struct {
		name   string
		faults []int
		flags  []string
	}{
		{"partitions", []int{faultPartition, faultLinkDown}, nil},
		{"loss-and-pauses", []int{faultLoss, faultPause, faultPartition}, nil},
		{"crashes", []int{faultKill, faultPartition, faultPause}, nil},
		// Logs so short that every fault leaves a member further behind
		// than its peers' logs reach: it is repaired by digest syncs, while
		// tombstones are collected as they become stable.
		{"trimmed-logs", []int{faultPartition, faultKill, faultPause}, []string{"--max-log-entries", "300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runChaos(t, tc.faults, chaosRunLength, uint64(time.Now().UnixNano()), tc.flags...)
		})
	}
}

// TestChaosSoak repeats chaos runs with every fault mixed until
// UPU_CHAOS_DURATION has passed (`task test:chaos`).
func TestChaosSoak(t *testing.T) {
	s := os.Getenv(chaosDurationEnv)
	if s == "" {
		t.Skipf("set %s (e.g. 10m) to soak", chaosDurationEnv)
	}
	total, err := time.ParseDuration(s)
	if err != nil || total <= 0 {
		t.Fatalf("%s=%q: want a positive duration", chaosDurationEnv, s)
	}
	requireNetns(t)
	all := []int{faultPartition, faultLinkDown, faultLoss, faultKill, faultPause}
	deadline := time.Now().Add(total)
	for run := 0; time.Now().Before(deadline); run++ {
		length := min(60*time.Second, time.Until(deadline))
		length = max(length, 5*time.Second)
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) {
			runChaos(t, all, length, uint64(time.Now().UnixNano()), chaosSoakFlags(run)...)
		})
		if t.Failed() {
			return
		}
	}
}

// chaosHistory is every operation's outcome in one run.
type chaosHistory struct {
	mu       sync.Mutex
	present  map[string]bool // key -> true: acked set, not deleted; false: acked delete
	doubtful int             // sets and deletes whose answer was lost
	acked    int
	ctrAcked [chaosCounters]int64
	ctrMaybe [chaosCounters]int64
}

// chaosSoakFlags alternates soak runs between default logs and logs short
// enough that faults end in digest syncs.
func chaosSoakFlags(run int) []string {
	if run%2 == 1 {
		return []string{"--max-log-entries", "300"}
	}
	return nil
}

func runChaos(t *testing.T, faults []int, length time.Duration, seed uint64, flags ...string) {
	t.Logf("seed %d (nemesis choices; process timing differs on replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	c := newNetnsCluster(t, chaosNodes)
	dirs := make([]string, chaosNodes)
	gossips := make([]string, chaosNodes)
	for i := range dirs {
		dirs[i] = t.TempDir()
		gossips[i] = c.ip(i) + ":7946"
	}
	others := func(i int) []string {
		var j []string
		for k, g := range gossips {
			if k != i {
				j = append(j, g)
			}
		}
		return j
	}
	nodes := make([]*node, chaosNodes)
	for i := range nodes {
		nodes[i] = c.startNodeIn(i, dirs[i], others(i), append([]string{"--domain", "chaos"}, flags...)...)
	}
	waitMembers(t, nodes, chaosNodes)

	h := &chaosHistory{present: make(map[string]bool)}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range chaosNodes * chaosWorkersPerNode {
		cfg := client.DefaultConfig()
		cfg.Nodes = []string{c.ip(w%chaosNodes) + ":7700"}
		cfg.RequestTimeout = chaosOpTimeout
		cfg.DialTimeout = 500 * time.Millisecond
		cfg.MaxBackoff = 200 * time.Millisecond
		cl, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.work(cl, w, &stop, rand.New(rand.NewPCG(seed, uint64(w)+2)))
		}()
	}

	// The nemesis: one fault at a time, each held for a random while, the
	// kinds of the mix in turn so that every run has each of them.
	injected := map[string]int{}
	last := ""
	end := time.Now().Add(length)
	for step := 0; time.Now().Before(end); step++ {
		kind := faults[step%len(faults)]
		victim := rng.IntN(chaosNodes)
		injected[faultNames[kind]]++
		last = faultNames[kind]
		switch kind {
		case faultPartition:
			// victim alone on one side, or one other node with it.
			side := map[int]bool{victim: true}
			if rng.IntN(2) == 0 {
				side[(victim+1)%chaosNodes] = true
			}
			for i := range chaosNodes {
				for j := range chaosNodes {
					if side[i] != side[j] {
						c.cut(i, j)
					}
				}
			}
		case faultLinkDown:
			c.linkDown(victim, true)
		case faultLoss:
			c.lossy(victim, 0.2)
		case faultKill:
			nodes[victim].kill()
		case faultPause:
			nodes[victim].cmd.Process.Signal(syscall.SIGSTOP)
		}
		time.Sleep(time.Duration(500+rng.IntN(int(chaosFaultHold/time.Millisecond))) * time.Millisecond) // the fault's life
		switch kind {
		case faultKill:
			assertNoDamageInLog(t, nodes[victim])
			nodes[victim] = c.startNodeIn(victim, dirs[victim], others(victim), append([]string{"--domain", "chaos"}, flags...)...)
		case faultPause:
			nodes[victim].cmd.Process.Signal(syscall.SIGCONT)
		default:
			c.heal()
		}
	}
	stop.Store(true)
	wg.Wait()
	c.heal()

	healed := time.Now()
	var digests []string
	poll(t, chaosConverge, "equal digests on every node after the heal", func() bool {
		digests = digests[:0]
		for _, n := range nodes {
			out, _, code := cli(t, n.addr, "digest")
			if code != 0 {
				return false
			}
			digests = append(digests, out)
		}
		for _, d := range digests[1:] {
			if d != digests[0] {
				return false
			}
		}
		return true
	})
	convergedS := time.Since(healed).Seconds()

	lost, resurrected, counterExact := h.verify(t, nodes)
	for _, n := range nodes {
		assertNoDamageInLog(t, n)
	}
	t.Logf("faults %v, the last %s; %d sets/deletes in doubt; counters acked %v, in doubt %v", injected, last, h.doubtful, h.ctrAcked, h.ctrMaybe)
	var syncs, dropped uint64
	for _, n := range nodes {
		st := gcStatus(t, n)
		syncs += st.Syncs
		dropped += st.DroppedStable
	}
	t.Logf("acked=%d lost=%d resurrected=%d counter_exact=%t converged_s=%.1f digest_syncs=%d tombstones_dropped=%d", h.acked, lost, resurrected, counterExact, convergedS, syncs, dropped)
	if lost != 0 || resurrected != 0 || !counterExact {
		t.Fatalf("chaos broke promises (seed %d)", seed)
	}
}

// work is one client's loop until stop: sets of unique keys, increments of
// counter-only keys, deletes of keys it set and saw acknowledged.
func (h *chaosHistory) work(cl *client.Client, w int, stop *atomic.Bool, rng *rand.Rand) {
	var mine []string // acknowledged sets not yet deleted
	pace := time.NewTicker(chaosOpPace)
	defer pace.Stop()
	for i := 0; i < 1_000_000 && !stop.Load(); i++ {
		<-pace.C
		ctx, cancel := context.WithTimeout(context.Background(), 2*chaosOpTimeout)
		switch r := rng.IntN(100); {
		case r < 25:
			k := rng.IntN(chaosCounters)
			_, err := cl.Incr(ctx, []byte(chaosCounterKey(k)), 1)
			h.mu.Lock()
			if err == nil {
				h.acked++
				h.ctrAcked[k]++
			} else {
				h.ctrMaybe[k]++
			}
			h.mu.Unlock()
		case r < 45 && len(mine) > 0:
			j := rng.IntN(len(mine))
			key := mine[j]
			mine[j] = mine[len(mine)-1]
			mine = mine[:len(mine)-1]
			err := cl.Del(ctx, []byte(key))
			h.mu.Lock()
			if err == nil {
				h.acked++
				h.present[key] = false
			} else {
				// Either outcome is possible now.
				delete(h.present, key)
				h.doubtful++
			}
			h.mu.Unlock()
		default:
			key := fmt.Sprintf("w%d/%07d", w, i)
			_, err := cl.Set(ctx, []byte(key), []byte(key))
			if err == nil {
				mine = append(mine, key)
			}
			h.mu.Lock()
			if err == nil {
				h.acked++
				h.present[key] = true
			} else {
				h.doubtful++
			}
			h.mu.Unlock()
		}
		cancel()
	}
}

func chaosCounterKey(k int) string { return fmt.Sprintf("ctr/%d", k) }

// verify reads every settled key and every counter on every node.
func (h *chaosHistory) verify(t *testing.T, nodes []*node) (lost, resurrected int, counterExact bool) {
	t.Helper()
	keys := make([]string, 0, len(h.present))
	for k := range h.present {
		keys = append(keys, k)
	}
	counterExact = true
	for _, n := range nodes {
		cfg := client.DefaultConfig()
		cfg.Nodes = []string{n.addr}
		cfg.RequestTimeout = 10 * time.Second
		cl, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range readKeys(cl, keys, 10*time.Second) {
			if r.err != nil {
				t.Errorf("get %s on %s: %v", keys[i], n.addr, r.err)
				continue
			}
			switch want := h.present[keys[i]]; {
			case want && (!r.present || string(r.value) != keys[i]):
				if lost++; lost <= 10 {
					t.Errorf("%s: acknowledged set of %s lost (found=%t value %q)", n.addr, keys[i], r.present, r.value)
				}
			case !want && r.present:
				if resurrected++; resurrected <= 10 {
					t.Errorf("%s: acknowledged delete of %s undone: %q", n.addr, keys[i], r.value)
				}
			}
		}
		for k := range chaosCounters {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			it, err := cl.Get(ctx, []byte(chaosCounterKey(k)))
			cancel()
			var v int64
			switch {
			case errors.Is(err, client.ErrNotFound):
			case err != nil:
				t.Fatalf("get %s on %s: %v", chaosCounterKey(k), n.addr, err)
			default:
				if v, err = strconv.ParseInt(string(it.Value), 10, 64); err != nil {
					t.Fatalf("counter %s on %s = %q: %v", chaosCounterKey(k), n.addr, it.Value, err)
				}
			}
			lo, hi := h.ctrAcked[k], h.ctrAcked[k]+h.ctrMaybe[k]
			if v < lo || v > hi {
				counterExact = false
				t.Errorf("%s: counter %s = %d, want within [%d, %d]", n.addr, chaosCounterKey(k), v, lo, hi)
				if v < lo {
					lost++
				}
			}
		}
		cl.Close()
	}
	return lost, resurrected, counterExact
}
