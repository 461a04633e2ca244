package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// outageEnv sets how long TestCascadeParentOutage keeps the parent domain
// down: short for `go test ./...`, a minute in `task chaos:cascade`.
const outageEnv = "UPU_CHAOS_OUTAGE"

const defaultOutage = 5 * time.Second

// The fleet's three levels.
const (
	leafDomain   = "dc1"
	regionDomain = "region"
	topDomain    = "top"
)

// fleetNode is one member of a cascade fleet; node is replaced on restart.
type fleetNode struct {
	*node
	start func() *node // on the node's data directory and addresses
}

// restart starts the node again on its data directory and addresses.
func (f *fleetNode) restart() { f.node = f.start() }

// cascadeFleet is dc1 -> region -> top, each member on fixed addresses so
// that it can be restarted.
type cascadeFleet struct {
	leaf, region, top []*fleetNode
}

// startCascadeFleet starts the three domains with the given sizes on
// loopback (each member lists the others' gossip addresses to join, so
// that a restarted member finds its domain again), extra given to every
// node, and links them.
func startCascadeFleet(t *testing.T, leaves, regions, tops int, extra ...string) *cascadeFleet {
	t.Helper()
	f := &cascadeFleet{
		leaf:   startFleetDomain(t, leafDomain, leaves, extra),
		region: startFleetDomain(t, regionDomain, regions, extra),
		top:    startFleetDomain(t, topDomain, tops, extra),
	}
	f.link(t)
	return f
}

// link sets the parents with the CLI on running nodes (region's to top on
// its first member, dc1's to region on its last: the other dc1 members
// follow by replication) and waits until every member knows its path to
// the root and each domain has one relay.
func (f *cascadeFleet) link(t *testing.T) {
	t.Helper()
	mustCLI(t, f.region[0].addr, "cascade", "set-parent", topDomain, seeds(f.top))
	mustCLI(t, f.leaf[len(f.leaf)-1].addr, "cascade", "set-parent", regionDomain, seeds(f.region))
	f.waitLinked(t, 15*time.Second)
}

func startFleetDomain(t *testing.T, domain string, count int, extra []string) []*fleetNode {
	t.Helper()
	gossips := make([]string, count)
	for i := range gossips {
		gossips[i] = freeAddr(t)
	}
	members := make([]*fleetNode, count)
	nodes := make([]*node, count)
	for i := range members {
		dir, addr := t.TempDir(), freeAddr(t)
		args := []string{"--domain", domain, "--gossip-addr", gossips[i]}
		if count > 1 {
			args = append(args, "--join", strings.Join(slices.Delete(slices.Clone(gossips), i, i+1), ","))
		}
		args = append(args, extra...)
		members[i] = &fleetNode{start: func() *node { return startNode(t, dir, addr, args...) }}
		members[i].restart()
		nodes[i] = members[i].node
	}
	waitMembers(t, nodes, count)
	return members
}

// seeds is the set-parent argument naming every member of a domain.
func seeds(members []*fleetNode) string {
	addrs := make([]string, len(members))
	for i, m := range members {
		addrs[i] = m.addr
	}
	return strings.Join(addrs, ",")
}

// waitLinked waits until every member of the leaf and the region knows its
// path to top and each of the two domains has exactly one member relaying.
func (f *cascadeFleet) waitLinked(t *testing.T, timeout time.Duration) {
	t.Helper()
	for _, d := range []struct {
		members []*fleetNode
		path    []string
	}{
		{f.leaf, []string{leafDomain, regionDomain, topDomain}},
		{f.region, []string{regionDomain, topDomain}},
	} {
		poll(t, timeout, fmt.Sprintf("%s knows its path %v and has one relay", d.path[0], d.path), func() bool {
			relaying := 0
			for _, m := range d.members {
				st, ok := cascadeStatusOf(m.addr)
				if !ok || !slices.Equal(st.Path, d.path) {
					return false
				}
				if st.State == cascade.StateRelaying {
					relaying++
				}
			}
			return relaying == 1
		})
	}
}

// leafRelay returns the dc1 member that `upu cascade status --json` on
// dc1 names as the relay, and the others.
func (f *cascadeFleet) leafRelay(t *testing.T) (relay *fleetNode, others []*fleetNode) {
	t.Helper()
	id := cascadeStatus(t, f.leaf[0].node).Relay
	for _, m := range f.leaf {
		if nodeID(t, m.node) == id {
			relay = m
		} else {
			others = append(others, m)
		}
	}
	if relay == nil {
		t.Fatalf("the relay %q named by cascade status is no member of the domain", id)
	}
	return relay, others
}

// all returns every member of the fleet, leaf first.
func (f *cascadeFleet) all() []*fleetNode {
	return slices.Concat(f.leaf, f.region, f.top)
}

// cascadeStatus is `upu cascade status --json` of n.
func cascadeStatus(t *testing.T, n *node) protocol.CascadeStatus {
	t.Helper()
	out := mustCLI(t, n.addr, "cascade", "status", "--json")
	var st protocol.CascadeStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cascade status --json is not JSON: %v\n%s", err, out)
	}
	return st
}

// cascadeStatusOf is cascadeStatus for a poll, through the Go client
// (quicker than a process), on a node that may be down (false then).
func cascadeStatusOf(addr string) (protocol.CascadeStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{addr}
	cl, err := client.New(cfg)
	if err != nil {
		return protocol.CascadeStatus{}, false
	}
	defer cl.Close()
	st, err := cl.CascadeStatus(ctx)
	return st, err == nil
}

// nodeID is n's node ID, from `upu status --json`.
func nodeID(t *testing.T, n *node) string {
	t.Helper()
	var st struct {
		NodeID string `json:"node_id"`
	}
	out := mustCLI(t, n.addr, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.NodeID == "" {
		t.Fatalf("status --json has no node_id: %v\n%s", err, out)
	}
	return st.NodeID
}

// clientsOf returns one Go client per member, each bound to that member
// alone.
func clientsOf(t *testing.T, members []*fleetNode) []*client.Client {
	t.Helper()
	out := make([]*client.Client, len(members))
	for i, m := range members {
		out[i] = goClient(t, m.node)
	}
	return out
}

// TestCascadeAcceptance: the acceptance on real processes over
// loopback. dc1 (two nodes) -> region -> top, parents set with the CLI on
// running nodes. A write on dc1 is readable at region and top (the delay
// is logged; at idle it is well under a second); a key written at top is
// not found at dc1 with scope local and is found, naming top, with scope up
// and root; increments on both dc1 members add up at top exactly; a delete
// and a TTL expiry made in dc1 are seen at top, and once every level has
// collected the tombstones nothing deleted comes back; the dc1 relay killed
// with kill -9, every write made on the surviving member reaches top.
func TestCascadeAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-level fleet of processes")
	}
	// A domain with child domains collects tombstones past the horizon
	// only: a short one lets every level collect them within the test.
	const horizon = 3 * time.Second
	f := startCascadeFleet(t, 2, 1, 1, "--tombstone-horizon", horizon.String())
	ctx := context.Background()
	leaf := clientsOf(t, f.leaf)
	mid, root := goClient(t, f.region[0].node), goClient(t, f.top[0].node)

	for i := range 6 {
		key, src := fmt.Sprintf("idle:%d", i), i%len(leaf)
		if _, err := leaf[src].Set(ctx, []byte(key), []byte("v")); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for _, lv := range []struct {
			name string
			cl   *client.Client
		}{{regionDomain, mid}, {topDomain, root}} {
			poll(t, 5*time.Second, key+" at "+lv.name, func() bool { return read(lv.cl, key) == "v" })
			t.Logf("write on dc1 member %d readable at %s after %s", src, lv.name, time.Since(acked).Round(time.Microsecond))
		}
	}

	// Scoped reads, through the CLI.
	mustCLI(t, f.top[0].addr, "set", "at-top", "from-top")
	dc1 := f.leaf[0].addr
	if out, errs, code := cli(t, dc1, "get", "at-top"); code != 1 || strings.TrimSpace(errs) != "not found" {
		t.Fatalf("get at-top at dc1, scope local: exit %d, stdout %q, stderr %q; want exit 1 and not found", code, out, errs)
	}
	if out, errs, code := cli(t, dc1, "get", "at-top", "--scope", "up"); code != 0 || out != "from-top\n" || !strings.Contains(errs, "domain "+topDomain) {
		t.Fatalf("get at-top at dc1, scope up: exit %d, stdout %q, stderr %q; want from-top, answered by %s", code, out, errs, topDomain)
	}
	var doc struct{ Value, Domain string }
	if err := json.Unmarshal([]byte(mustCLI(t, dc1, "get", "at-top", "--scope", "root", "--json")), &doc); err != nil || doc.Value != "from-top" || doc.Domain != topDomain {
		t.Fatalf("get at-top at dc1, scope root --json: %+v, %v; want from-top from %s", doc, err, topDomain)
	}
	if _, errs, code := cli(t, dc1, "get", "nowhere", "--scope", "up"); code != 1 || !strings.Contains(errs, "domain "+topDomain) {
		t.Fatalf("get nowhere at dc1, scope up: exit %d, stderr %q; want a miss answered by %s", code, errs, topDomain)
	}
	if _, _, code := cli(t, f.region[0].addr, "get", "at-top"); code != 1 {
		t.Fatalf("a key written at top reached region (get exit %d): nothing flows down", code)
	}

	// Counters: increments on both dc1 members add up at every level.
	want := 0
	for i, m := range f.leaf {
		for range 3 {
			by := 2 + 3*i
			mustCLI(t, m.addr, "incr", "hits", strconv.Itoa(by))
			want += by
		}
	}
	all := f.all()
	for i, cl := range clientsOf(t, all) {
		poll(t, 5*time.Second, fmt.Sprintf("hits = %d on %s", want, all[i].addr), func() bool { return read(cl, "hits") == strconv.Itoa(want) })
	}

	// A delete and an expiry made in dc1 are seen at top.
	mustCLI(t, f.leaf[0].addr, "set", "doomed", "x")
	poll(t, 5*time.Second, "doomed at top", func() bool { return read(root, "doomed") == "x" })
	mustCLI(t, f.leaf[1].addr, "del", "doomed")
	poll(t, 5*time.Second, "the delete of doomed at top", func() bool { return notFound(root, "doomed") })
	const ttl = 2 * time.Second
	// The node sets the expiry while the CLI runs: no sooner than this.
	expires := time.Now().Add(ttl)
	mustCLI(t, f.leaf[1].addr, "set", "brief", "y", "--ttl", ttl.String())
	if took := poll(t, ttl, "brief at top before it expires", func() bool { return read(root, "brief") == "y" }); time.Now().After(expires) {
		t.Fatalf("brief reached top after %s, past its TTL", took)
	}
	poll(t, ttl+5*time.Second, "brief expired at top", func() bool { return notFound(root, "brief") })
	if early := time.Until(expires); early > 0 {
		t.Fatalf("brief gone at top %s before its expiry", early)
	}
	var gc []gcDoc
	defer func() {
		if t.Failed() {
			t.Logf("tombstones by level: %+v", gc)
		}
	}()
	// Both the tombstone and the expired record dropped, at every level:
	// in dc1 once stable, above it past the horizon.
	poll(t, 30*time.Second, "every level collects its tombstones", func() bool {
		gc = gc[:0]
		for _, m := range all {
			st := gcStatus(t, m.node)
			gc = append(gc, st)
			if st.DeadRecords != 0 || st.DroppedStable+st.DroppedHorizon < 2 {
				return false
			}
		}
		return true
	})
	t.Logf("tombstones collected everywhere: %+v", gc)
	assertGone(t, all, "doomed", "brief")

	// The relay killed: every write on the survivor reaches top, those
	// made before it takes over and 20 after.
	relay, survivors := f.leafRelay(t)
	survivor := survivors[0]
	relay.kill()
	killed := time.Now()
	sc := goClient(t, survivor.node)
	var keys []string
	var relaying time.Duration
	for after := 0; after < 20; {
		key := fmt.Sprintf("after-kill:%d", len(keys))
		if _, err := sc.Set(ctx, []byte(key), []byte(key)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		switch st, ok := cascadeStatusOf(survivor.addr); {
		case relaying != 0:
			after++
		case ok && st.State == cascade.StateRelaying:
			relaying = time.Since(killed)
		case time.Since(killed) > 30*time.Second:
			t.Fatalf("the surviving dc1 member does not relay 30s after the relay's kill -9: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	poll(t, 15*time.Second, fmt.Sprintf("the %d writes made on the survivor at top", len(keys)), func() bool {
		for _, k := range keys {
			if read(root, k) != k {
				return false
			}
		}
		return true
	})
	t.Logf("relay killed: the survivor relays after %s; its %d writes at top %s after the kill", relaying.Round(time.Millisecond), len(keys), time.Since(killed).Round(time.Millisecond))
	live := slices.Concat(survivors, f.region, f.top)
	assertGone(t, live, "doomed", "brief")
	if got := read(root, "hits"); got != strconv.Itoa(want) {
		t.Fatalf("hits at top = %s after the failover, want %d", got, want)
	}
	for _, m := range live {
		assertNoDamageInLog(t, m.node)
	}
}

// assertGone fails unless every key is not found on every member.
func assertGone(t *testing.T, members []*fleetNode, keys ...string) {
	t.Helper()
	for _, m := range members {
		cl := goClient(t, m.node)
		for _, k := range keys {
			if !notFound(cl, k) {
				t.Errorf("%s: %s came back (%q)", m.addr, k, read(cl, k))
			}
		}
	}
}

// TestCascadeParentOutage: the region (the parent of dc1) is stopped with
// SIGTERM for UPU_CHAOS_OUTAGE (default 5s; `task chaos:cascade` runs it
// with 60s) while both dc1 members write and increment; restarted on the
// same data directory and address, the region and top receive everything,
// counters exact, and the dc1 relay's `upu cascade status --json` shows a
// lag in entries during the outage and none after.
func TestCascadeParentOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a parent domain")
	}
	outage := envDuration(t, outageEnv, defaultOutage)
	f := startCascadeFleet(t, 2, 1, 1)
	relay, _ := f.leafRelay(t)
	region := f.region[0]
	region.stop()
	down := time.Now()

	var (
		mu     sync.Mutex
		keys   []string
		incrs  int
		stop   atomic.Bool
		wg     sync.WaitGroup
		maxLag uint64
	)
	for i, cl := range clientsOf(t, f.leaf) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for j := 0; !stop.Load(); j++ {
				key := fmt.Sprintf("outage:%d:%d", i, j)
				if _, err := cl.Set(ctx, []byte(key), []byte(key)); err != nil {
					t.Errorf("set %s in dc1 while its parent is down: %v", key, err)
					return
				}
				if _, err := cl.Incr(ctx, []byte("outage-hits"), 1); err != nil {
					t.Errorf("incr in dc1 while its parent is down: %v", err)
					return
				}
				mu.Lock()
				keys = append(keys, key)
				incrs++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	for time.Since(down) < outage {
		if st := cascadeStatus(t, relay.node); st.LagEntries > maxLag {
			maxLag = st.LagEntries
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	if maxLag == 0 {
		t.Errorf("the dc1 relay's cascade status showed no lag in %s without its parent (%d writes made)", outage, len(keys))
	}
	region.restart()
	back := time.Now()

	root := goClient(t, f.top[0].node)
	mid := goClient(t, region.node)
	for _, lv := range []struct {
		name string
		cl   *client.Client
	}{{regionDomain, mid}, {topDomain, root}} {
		poll(t, 60*time.Second, fmt.Sprintf("the %d writes made during the outage at %s", len(keys), lv.name), func() bool {
			if read(lv.cl, "outage-hits") != strconv.Itoa(incrs) {
				return false
			}
			for _, r := range readKeys(lv.cl, keys, 5*time.Second) {
				if !r.present {
					return false
				}
			}
			return true
		})
	}
	arrived := time.Since(back)
	poll(t, 30*time.Second, "the dc1 relay's lag back to 0", func() bool { return cascadeStatus(t, relay.node).LagEntries == 0 })
	t.Logf("parent down %s: %d writes and %d increments in dc1, relay lag up to %d entries; all at top and counters exact %s after the restart",
		outage, len(keys), incrs, maxLag, arrived.Round(time.Millisecond))
	if got := read(root, "outage-hits"); got != strconv.Itoa(incrs) {
		t.Fatalf("outage-hits at top = %s, want %d", got, incrs)
	}
	for _, m := range f.all() {
		assertNoDamageInLog(t, m.node)
	}
}

// TestCascadeLagWhileParentDown: with every member of the parent domain
// stopped, the dc1 relay's cascade status goes on counting the entries the
// parent lacks once it has given up on each of them (state unreachable),
// with one parent member and with two: the "lag rises" holds for
// the whole outage, not only until the first failover.
func TestCascadeLagWhileParentDown(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a parent domain")
	}
	for _, tc := range []struct {
		name    string
		regions int
	}{
		{"one parent member", 1},
		{"two parent members", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startCascadeFleet(t, 2, tc.regions, 1)
			relay, _ := f.leafRelay(t)
			for _, m := range f.region {
				m.stop()
			}
			cl := goClient(t, relay.node)
			writes := 0
			var st protocol.CascadeStatus
			poll(t, 30*time.Second, "the dc1 relay gives up on the stopped parent", func() bool {
				key := fmt.Sprintf("unsent:%d", writes)
				if _, err := cl.Set(context.Background(), []byte(key), []byte(key)); err != nil {
					t.Fatalf("set %s in dc1: %v", key, err)
				}
				writes++
				var ok bool
				st, ok = cascadeStatusOf(relay.addr)
				return ok && st.State == cascade.StateUnreachable
			})
			// Every write since the stop is an entry the parent lacks.
			deadline := time.Now().Add(5 * time.Second)
			for st.LagEntries < uint64(writes) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				st, _ = cascadeStatusOf(relay.addr)
			}
			if st.LagEntries < uint64(writes) {
				t.Fatalf("the dc1 relay, its parent down, shows a lag of %d entries after %d writes (state %s, upstream %q, reason %q)",
					st.LagEntries, writes, st.State, st.Upstream, st.Reason)
			}
		})
	}
}

// envDuration reads a positive duration from the environment, def when
// unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return d
}
