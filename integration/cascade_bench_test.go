package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// TestCascadeBench's switches (`task bench:cascade`).
const (
	cascadeBenchEnv          = "UPU_CASCADE_BENCH"           // 1: run the measurements
	cascadeBenchWritesEnv    = "UPU_CASCADE_BENCH_WRITES"    // writes timed per phase
	cascadeBenchRateEnv      = "UPU_CASCADE_BENCH_RATE"      // their rate, per second
	cascadeBenchClientsEnv   = "UPU_CASCADE_BENCH_CLIENTS"   // upu bench -c for the load
	cascadeBenchFailoversEnv = "UPU_CASCADE_BENCH_FAILOVERS" // relay kills timed
)

// benchValue is the size of the timed writes' values, upu bench's default.
const benchValue = 100

// TestCascadeBench measures the cascade on dc1 (two nodes) -> region -> top
// over loopback and prints a table: the delay from a write's
// acknowledgement on a dc1 member to its first read at top, p50 and p99,
// at idle and under `upu bench` set load on that member (writes timed at a
// fixed rate, each polled at top until it appears); the bytes each relay
// pushed per write; and the relay's failover (kill -9 the dc1 relay: until
// the other member says relaying, and until a write made on it right
// after the kill is read at top). The figures are for the record, not
// asserted.
func TestCascadeBench(t *testing.T) {
	if os.Getenv(cascadeBenchEnv) != "1" {
		t.Skipf("set %s=1 to measure the cascade", cascadeBenchEnv)
	}
	writes := envInt(t, cascadeBenchWritesEnv, 300)
	rate := envInt(t, cascadeBenchRateEnv, 50)
	clients := envInt(t, cascadeBenchClientsEnv, 20)
	failovers := envInt(t, cascadeBenchFailoversEnv, 3)
	f := startCascadeFleet(t, 2, 1, 1)
	leaf, root := goClient(t, f.leaf[0].node), goClient(t, f.top[0].node)
	var rows []benchRow

	leafRelay, _ := f.leafRelay(t)
	regionRelay := f.region[0]
	before := []protocol.CascadeStatus{cascadeStatus(t, leafRelay.node), cascadeStatus(t, regionRelay.node)}
	idle := timeToTop(t, leaf, root, "idle", writes, rate)
	rows = append(rows, delayRow("leaf-to-root delay, idle", idle))
	f.waitCaughtUp(t)
	after := []protocol.CascadeStatus{cascadeStatus(t, leafRelay.node), cascadeStatus(t, regionRelay.node)}
	for i, hop := range []string{"dc1 -> region", "region -> top"} {
		b, e := after[i].BytesRelayed-before[i].BytesRelayed, after[i].EntriesRelayed-before[i].EntriesRelayed
		rows = append(rows, benchRow{"bytes relayed per write, " + hop + ", idle",
			fmt.Sprintf("%.0f B (%d B, %d entries for %d writes of %d-byte values)", float64(b)/float64(writes), b, e, writes, benchValue)})
	}

	// Under load: upu bench sets on the same dc1 member until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	bench := exec.CommandContext(ctx, bin, "--nodes", f.leaf[0].addr, "bench", "-t", "set", "-c", strconv.Itoa(clients), "-n", "1000000000", "-d", strconv.Itoa(benchValue), "--max-time", "1h")
	var benchOut strings.Builder
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); bench.Wait() })
	poll(t, 30*time.Second, "bench load at top", func() bool {
		st, err := root.Status(context.Background())
		return err == nil && st.Keys > 5000
	})
	self := nodeID(t, f.leaf[0].node)
	loadStart := time.Now()
	leafBefore, topBefore := appliedOf(t, leaf, self), appliedOf(t, root, self)
	relayBefore := cascadeStatus(t, leafRelay.node)
	loaded := timeToTop(t, leaf, root, "load", writes, rate)
	elapsed := time.Since(loadStart).Seconds()
	leafAfter, topAfter := appliedOf(t, leaf, self), appliedOf(t, root, self)
	relayAfter := cascadeStatus(t, leafRelay.node)
	cancel()
	bench.Wait()
	rows = append(rows,
		delayRow(fmt.Sprintf("leaf-to-root delay, upu bench -t set -c %d on the leaf", clients), loaded),
		benchRow{"load: writes/s on the leaf member, arriving at top/s", fmt.Sprintf("%.0f, %.0f", float64(leafAfter-leafBefore)/elapsed, float64(topAfter-topBefore)/elapsed)},
		benchRow{"load: dc1 relay lag at the end", fmt.Sprintf("%d entries, %.1f s", relayAfter.LagEntries, relayAfter.LagSeconds)},
	)
	if e := relayAfter.EntriesRelayed - relayBefore.EntriesRelayed; e > 0 {
		rows = append(rows, benchRow{"bytes relayed per write, dc1 -> region, load",
			fmt.Sprintf("%.0f B (%d entries)", float64(relayAfter.BytesRelayed-relayBefore.BytesRelayed)/float64(e), e)})
	}
	f.waitCaughtUp(t)

	var toFailed, toRelay, toTop []time.Duration
	for range failovers {
		fo := f.timeFailover(t, root)
		toFailed, toRelay, toTop = append(toFailed, fo.failed), append(toRelay, fo.relaying), append(toTop, fo.atTop)
	}
	rows = append(rows,
		benchRow{"relay failover: kill -9 to gossip calling the relay failed", spread(toFailed)},
		benchRow{"relay failover: kill -9 to the other member relaying", spread(toRelay)},
		benchRow{"relay failover: kill -9 to a new write read at top", spread(toTop)})

	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tVALUE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.name, r.value)
	}
	tw.Flush()
	fmt.Print(out.String())
}

type benchRow struct{ name, value string }

func delayRow(name string, d []time.Duration) benchRow {
	slices.Sort(d)
	return benchRow{name, fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond), len(d))}
}

// spread is the least, the median and the most of some durations.
func spread(d []time.Duration) string {
	slices.Sort(d)
	return fmt.Sprintf("min %s, median %s, max %s (n=%d)", d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
}

// timeToTop writes n keys through leaf at rate per second and returns, for
// each, the time from its acknowledgement to its first read through root.
// One goroutine writes; this one polls the keys not yet seen.
func timeToTop(t *testing.T, leaf, root *client.Client, phase string, n, rate int) []time.Duration {
	t.Helper()
	type acked struct {
		key string
		at  time.Time
	}
	ackedC := make(chan acked, n)
	errC := make(chan error, 1)
	value := []byte(strings.Repeat("v", benchValue))
	go func() {
		defer close(ackedC)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := range n {
			<-tick.C
			key := fmt.Sprintf("timed:%s:%d", phase, i)
			if _, err := leaf.Set(context.Background(), []byte(key), value); err != nil {
				errC <- fmt.Errorf("set %s: %w", key, err)
				return
			}
			ackedC <- acked{key, time.Now()}
		}
	}()
	var pending []acked
	delays := make([]time.Duration, 0, n)
	for open := true; open || len(pending) > 0; {
		select {
		case a, ok := <-ackedC:
			if !ok {
				open = false
				ackedC = nil
				continue
			}
			pending = append(pending, a)
		default:
		}
		pending = slices.DeleteFunc(pending, func(a acked) bool {
			if !present(root, a.key) {
				if time.Since(a.at) > time.Minute {
					t.Fatalf("%s: %s not at top a minute after its acknowledgement", phase, a.key)
				}
				return false
			}
			delays = append(delays, time.Since(a.at))
			return true
		})
		select {
		case err := <-errC:
			t.Fatal(err)
		default:
		}
		if len(pending) == 0 && open {
			// Nothing to poll: wait for the next write.
			if a, ok := <-ackedC; ok {
				pending = append(pending, a)
			} else {
				open = false
				ackedC = nil
			}
		}
	}
	return delays
}

func present(cl *client.Client, key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cl.Get(ctx, []byte(key))
	return err == nil
}

// appliedOf is how many of origin's log entries the node behind cl has
// applied.
func appliedOf(t *testing.T, cl *client.Client, origin string) uint64 {
	t.Helper()
	st, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Applied[origin]
}

// waitCaughtUp waits until neither relay lags its parent.
func (f *cascadeFleet) waitCaughtUp(t *testing.T) {
	t.Helper()
	poll(t, 5*time.Minute, "both relays caught up", func() bool {
		for _, d := range [][]*fleetNode{f.leaf, f.region} {
			for _, m := range d {
				if st, ok := cascadeStatusOf(m.addr); !ok || st.LagEntries != 0 {
					return false
				}
			}
		}
		return true
	})
}

// failover is how long after the relay's kill -9 the other member's
// gossip called it failed, the other member said it relays, and a write
// made on it at once was read at top.
type failover struct{ failed, relaying, atTop time.Duration }

// timeFailover kills the dc1 relay with kill -9, writes one key on the
// other member at once, and times the failover through root. The killed
// member is then restarted and the fleet linked again.
func (f *cascadeFleet) timeFailover(t *testing.T, root *client.Client) failover {
	t.Helper()
	relay, others := f.leafRelay(t)
	relayID := nodeID(t, relay.node)
	other := others[0]
	survivor := goClient(t, other.node)
	key := fmt.Sprintf("failover:%d", time.Now().UnixNano())
	relay.kill()
	killed := time.Now()
	if _, err := survivor.Set(context.Background(), []byte(key), []byte("v")); err != nil {
		t.Fatal(err)
	}
	var fo failover
	for fo.failed == 0 || fo.relaying == 0 || fo.atTop == 0 {
		if fo.failed == 0 && !aliveIn(survivor, relayID) {
			fo.failed = time.Since(killed)
		}
		if fo.relaying == 0 {
			if st, ok := cascadeStatusOf(other.addr); ok && st.State == cascade.StateRelaying {
				fo.relaying = time.Since(killed)
			}
		}
		if fo.atTop == 0 && present(root, key) {
			fo.atTop = time.Since(killed)
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("no failover a minute after the dc1 relay's kill -9: %+v", fo)
		}
		time.Sleep(5 * time.Millisecond)
	}
	relay.restart()
	waitMembers(t, []*node{f.leaf[0].node, f.leaf[1].node}, 2)
	f.waitLinked(t, 30*time.Second)
	return fo
}

// aliveIn reports whether the node behind cl sees member id alive.
func aliveIn(cl *client.Client, id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := cl.Members(ctx)
	if err != nil {
		return true // not known otherwise
	}
	for _, m := range ms {
		if m.NodeID == id {
			return m.State == "alive"
		}
	}
	return false
}

// envInt reads a positive integer from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
