package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/client"
)

// TestChaosCascade's durations: `go test ./...` runs it short, `task
// chaos:cascade` longer.
const (
	cascadePhaseEnv    = "UPU_CHAOS_CASCADE_PHASE"    // how long each fault is held
	cascadeConvergeEnv = "UPU_CHAOS_CASCADE_CONVERGE" // the bound on convergence after the heal
)

const (
	defaultCascadePhase    = 4 * time.Second
	defaultCascadeConverge = 60 * time.Second
	cascadeCounters        = 3
	cascadeOpPace          = 10 * time.Millisecond // per worker: bounds the keys to verify
	cascadeOpTimeout       = 5 * time.Second       // a node that is up answers well within it
)

// Levels of the chaos fleet: a write made at a level must reach every
// level above it, and nothing flows down.
const (
	levelLeaf = iota
	levelRegion
	levelTop
	cascadeLevels
)

// TestChaosCascade: dc1 (two nodes) -> region -> top, each node in a network
// namespace of its own, parents set with the CLI. While workers write,
// increment and delete on both dc1 members and on the region: the link
// between dc1 and region is cut with iptables, the dc1 relay is killed
// with kill -9 during the cut and restarted once the other member has
// taken over, then the region is stopped and restarted. After the heal every acknowledged write must be at
// every level above the one it was made at, no acknowledged delete undone
// at any level, and each level's counters the sum of the acknowledged
// increments made at or below it. It prints one line:
//
//	levels=3 acked=N lost=0 resurrected=0 counter_exact=true converged_s=S
//
// lost counts acknowledged sets missing where they must be (dc1's at dc1,
// region and top; the region's at region and top), resurrected the
// acknowledged deletes visible on any node, converged_s the seconds from
// the heal to every check passing. It runs twice: with the default logs,
// and with logs so short that the faults leave the parent further behind
// than the child's log reaches, so that the two domains repair by digest
// sync.
func TestChaosCascade(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: real processes under faults")
	}
	requireNetns(t)
	phase := envDuration(t, cascadePhaseEnv, defaultCascadePhase)
	converge := envDuration(t, cascadeConvergeEnv, defaultCascadeConverge)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"default-logs", nil},
		{"trimmed-logs", []string{"--max-log-entries", "300"}},
	} {
		t.Run(tc.name, func(t *testing.T) { runChaosCascade(t, phase, converge, tc.flags...) })
	}
}

// runChaosCascade is one run of TestChaosCascade, flags given to every
// node.
func runChaosCascade(t *testing.T, phase, converge time.Duration, flags ...string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (workload choices), phase %s", seed, phase)

	// Namespaces 0 and 1: dc1; 2: region; 3: top.
	c := newNetnsCluster(t, 4)
	level := []int{levelLeaf, levelLeaf, levelRegion, levelTop}
	nodes := make([]*fleetNode, len(level))
	for i := range nodes {
		dir := t.TempDir()
		var join []string
		if level[i] == levelLeaf {
			join = []string{c.ip(1-i) + ":7946"}
		}
		args := append([]string{"--domain", nodeLevelName(level[i])}, flags...)
		nodes[i] = &fleetNode{start: func() *node { return c.startNodeIn(i, dir, join, args...) }}
		nodes[i].restart()
	}
	waitMembers(t, []*node{nodes[0].node, nodes[1].node}, 2)
	f := &cascadeFleet{leaf: nodes[:2], region: nodes[2:3], top: nodes[3:]}
	f.link(t)

	h := &cascadeHistory{origin: map[string]int{}, deleted: map[string]bool{}}
	workers := make([]*cascadeWorker, 3) // one per dc1 member and the region
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range workers {
		cfg := client.DefaultConfig()
		cfg.Nodes = []string{c.ip(i) + ":7700"}
		cfg.RequestTimeout = cascadeOpTimeout
		cfg.DialTimeout = 500 * time.Millisecond
		cfg.MaxBackoff = 200 * time.Millisecond
		cl, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		workers[i] = &cascadeWorker{id: i, level: level[i], cl: cl, h: h, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i].run(&stop)
		}()
	}

	// The nemesis. A node is killed or stopped only while its worker
	// waits: an increment whose answer a fault lost could not be counted
	// exactly.
	time.Sleep(phase / 2)
	for _, leaf := range []int{0, 1} {
		c.cut(leaf, 2)
		c.cut(2, leaf)
	}
	t.Logf("dc1 <-> region cut")
	time.Sleep(phase / 2)
	relay, survivors := f.leafRelay(t)
	victim := slices.Index(nodes, relay)
	st := cascadeStatus(t, relay.node)
	t.Logf("the dc1 relay after %s of the cut: state %s, lag %d entries, last error %q", phase/2, st.State, st.LagEntries, st.LastError)
	workers[victim].pause()
	relay.kill()
	killed := time.Now()
	t.Logf("dc1 relay (namespace %d) killed with kill -9 during the cut", victim)
	assertNoDamageInLog(t, relay.node)
	time.Sleep(phase / 2)
	c.heal()
	t.Logf("dc1 <-> region healed")
	// Down until the other member has taken over, so that it relays what
	// both wrote.
	poll(t, 30*time.Second, "the surviving dc1 member relays", func() bool {
		st, ok := cascadeStatusOf(survivors[0].addr)
		return ok && st.State == cascade.StateRelaying
	})
	t.Logf("the surviving dc1 member relays %s after the kill", time.Since(killed).Round(time.Millisecond))
	time.Sleep(phase / 2)
	relay.restart()
	workers[victim].resume()
	time.Sleep(phase / 2)
	region := f.region[0]
	workers[2].pause()
	region.stop()
	t.Logf("region stopped")
	time.Sleep(phase)
	region.restart()
	workers[2].resume()
	t.Logf("region restarted")
	time.Sleep(phase / 2)
	stop.Store(true)
	wg.Wait()
	c.heal()
	healed := time.Now()

	clients := clientsOf(t, nodes)
	var res cascadeCheck
	for {
		res = h.check(nodes, clients, level)
		if res.ok() || time.Since(healed) > converge {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	convergedS := time.Since(healed).Seconds()
	for _, n := range nodes {
		assertNoDamageInLog(t, n.node)
	}
	var syncs, dropped uint64
	for _, n := range nodes {
		st := gcStatus(t, n.node)
		syncs += st.Syncs
		dropped += st.DroppedStable
	}
	t.Logf("%d operations in doubt (%d increments); increments acknowledged by level %v; digest syncs %d, tombstones dropped %d",
		h.doubtful, h.ctrDoubt, h.ctrAcked, syncs, dropped)
	fmt.Printf("levels=%d acked=%d lost=%d resurrected=%d counter_exact=%t converged_s=%.1f\n",
		cascadeLevels, h.acked, res.lost, res.resurrected, res.counterExact, convergedS)
	if !res.ok() {
		for _, p := range res.problems {
			t.Error(p)
		}
		t.Fatalf("the cascade broke its promises within %s of the heal (seed %d)", converge, seed)
	}
}

// cascadeHistory is every acknowledged operation of a chaos run.
type cascadeHistory struct {
	mu       sync.Mutex
	origin   map[string]int  // an acknowledged set not deleted since -> the level it was made at
	deleted  map[string]bool // acknowledged deletes
	acked    int
	doubtful int                                   // sets, deletes and increments whose answer was lost
	ctrAcked [cascadeLevels][cascadeCounters]int64 // by the level they were made at
	ctrDoubt int
}

// cascadeWorker writes on one node until stopped; pause holds it between
// two operations.
type cascadeWorker struct {
	id, level int
	cl        *client.Client
	h         *cascadeHistory
	rng       *rand.Rand
	gate      sync.Mutex
}

func (w *cascadeWorker) pause()  { w.gate.Lock() }
func (w *cascadeWorker) resume() { w.gate.Unlock() }

// run sets unique keys, increments shared counters and deletes keys it set
// and saw acknowledged.
func (w *cascadeWorker) run(stop *atomic.Bool) {
	var mine []string
	for i := 0; !stop.Load(); i++ {
		time.Sleep(cascadeOpPace)
		w.gate.Lock()
		w.op(i, &mine)
		w.gate.Unlock()
	}
}

func (w *cascadeWorker) op(i int, mine *[]string) {
	h := w.h
	ctx, cancel := context.WithTimeout(context.Background(), 2*cascadeOpTimeout)
	defer cancel()
	switch r := w.rng.IntN(100); {
	case r < 25:
		k := w.rng.IntN(cascadeCounters)
		_, err := w.cl.Incr(ctx, []byte(cascadeCounterKey(k)), 1)
		h.mu.Lock()
		if err == nil {
			h.acked++
			h.ctrAcked[w.level][k]++
		} else {
			h.doubtful++
			h.ctrDoubt++
		}
		h.mu.Unlock()
	case r < 40 && len(*mine) > 0:
		j := w.rng.IntN(len(*mine))
		key := (*mine)[j]
		*mine = slices.Delete(*mine, j, j+1)
		err := w.cl.Del(ctx, []byte(key))
		h.mu.Lock()
		delete(h.origin, key)
		if err == nil {
			h.acked++
			h.deleted[key] = true
		} else {
			h.doubtful++ // either outcome is possible now
		}
		h.mu.Unlock()
	default:
		key := fmt.Sprintf("w%d/%07d", w.id, i)
		_, err := w.cl.Set(ctx, []byte(key), []byte(key))
		h.mu.Lock()
		if err == nil {
			h.acked++
			h.origin[key] = w.level
			*mine = append(*mine, key)
		} else {
			h.doubtful++
		}
		h.mu.Unlock()
	}
}

func cascadeCounterKey(k int) string { return "ctr/" + strconv.Itoa(k) }

// cascadeCheck is one pass over every node.
type cascadeCheck struct {
	lost, resurrected int
	counterExact      bool
	problems          []string // the first few, for the failure
}

func (r *cascadeCheck) ok() bool { return r.lost == 0 && r.resurrected == 0 && r.counterExact }

func (r *cascadeCheck) problem(format string, args ...any) {
	if len(r.problems) < 20 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// check reads every tracked key and every counter on every node through
// its client (level[i] is node i's), once the workers have stopped.
func (h *cascadeHistory) check(nodes []*fleetNode, clients []*client.Client, level []int) cascadeCheck {
	keys := make([]string, 0, len(h.origin)+len(h.deleted))
	for k := range h.origin {
		keys = append(keys, k)
	}
	for k := range h.deleted {
		keys = append(keys, k)
	}
	res := cascadeCheck{counterExact: true}
	lost, resurrected := map[string]bool{}, map[string]bool{}
	for i, n := range nodes {
		cl := clients[i]
		for j, r := range readKeys(cl, keys, 10*time.Second) {
			key := keys[j]
			origin, live := h.origin[key]
			switch {
			case r.err != nil:
				res.problem("get %s on %s: %v", key, n.addr, r.err)
				lost[key] = true // not known to be there
			case live && origin <= level[i] && (!r.present || string(r.value) != key):
				res.problem("%s (%s): the acknowledged set of %s, made in %s, is missing (found %t, %q)", n.addr, nodeLevelName(level[i]), key, nodeLevelName(origin), r.present, r.value)
				lost[key] = true
			case h.deleted[key] && r.present:
				res.problem("%s (%s): the acknowledged delete of %s is undone: %q", n.addr, nodeLevelName(level[i]), key, r.value)
				resurrected[key] = true
			}
		}
		for k := range cascadeCounters {
			var want int64
			for below := 0; below <= level[i]; below++ {
				want += h.ctrAcked[below][k]
			}
			got, err := counterOn(cl, cascadeCounterKey(k))
			if err != nil || got != want {
				res.counterExact = false
				res.problem("%s (%s): counter %s = %d (%v), want %d", n.addr, nodeLevelName(level[i]), cascadeCounterKey(k), got, err, want)
			}
		}
	}
	if h.ctrDoubt > 0 {
		// An increment in doubt makes two counts possible.
		res.counterExact = false
		res.problem("%d increments in doubt: the counters cannot be checked exactly", h.ctrDoubt)
	}
	res.lost, res.resurrected = len(lost), len(resurrected)
	return res
}

// counterOn reads a counter, 0 when it has none.
func counterOn(cl *client.Client, key string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it, err := cl.Get(ctx, []byte(key))
	switch {
	case errors.Is(err, client.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return strconv.ParseInt(string(it.Value), 10, 64)
}

func nodeLevelName(l int) string {
	return [cascadeLevels]string{leafDomain, regionDomain, topDomain}[l]
}
