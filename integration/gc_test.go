package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/upu/upu/client"
)

// gcDoc is the part of `upu status --json` about deleted keys.
type gcDoc struct {
	Keys           int64             `json:"keys"`
	DeadRecords    int64             `json:"dead_records"`
	DroppedStable  uint64            `json:"dropped_stable"`
	DroppedHorizon uint64            `json:"dropped_horizon"`
	Stable         map[string]uint64 `json:"stable"`
	Resyncing      bool              `json:"resyncing"`
	Resyncs        uint64            `json:"resyncs"`
	Syncs          uint64            `json:"syncs"`
}

func gcStatus(t *testing.T, n *node) gcDoc {
	t.Helper()
	var doc gcDoc
	out := mustCLI(t, n.addr, "status", "--json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	return doc
}

func notFound(cl *client.Client, key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := cl.Get(ctx, []byte(key))
	return errors.Is(err, client.ErrNotFound)
}

// TestTombstonesCollectedWhenStable: with every member up, a delete's
// tombstone is dropped on every node once all have seen it (long before the
// one-hour horizon), and a key written again after that is replicated like
// any new key: its dots never collide with the forgotten ones.
func TestTombstonesCollectedWhenStable(t *testing.T) {
	nodes := startDomain(t, "dc-gc", 3, "--tombstone-horizon", "1h")
	ctx := context.Background()
	ca, cb := goClient(t, nodes[0]), goClient(t, nodes[1])
	for i := range 100 {
		if _, err := ca.Set(ctx, []byte(fmt.Sprintf("gc:%d", i)), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if err := cb.Del(ctx, []byte(fmt.Sprintf("gc:%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var last []gcDoc
	defer func() {
		if t.Failed() {
			for i, st := range last {
				t.Logf("node %d: %+v", i, st)
			}
			t.Logf("first node's log:\n%s", nodes[0].output())
		}
	}()
	took := poll(t, 20*time.Second, "every node drops the 50 tombstones", func() bool {
		last = last[:0]
		done := true
		for _, n := range nodes {
			st := gcStatus(t, n)
			last = append(last, st)
			done = done && st.DeadRecords == 0 && st.DroppedStable >= 50 && st.Keys == 50
		}
		return done
	})
	t.Logf("tombstones dropped by causal stability %s after the deletes", took)
	waitDigests(t, nodes, 15*time.Second)

	// Written again on the node that deleted, read everywhere.
	for i := range 10 {
		if _, err := cb.Set(ctx, []byte(fmt.Sprintf("gc:%d", i)), []byte("again")); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		cl := goClient(t, n)
		poll(t, 10*time.Second, "rewritten keys on "+n.addr, func() bool {
			for i := range 10 {
				if read(cl, fmt.Sprintf("gc:%d", i)) != "again" {
					return false
				}
			}
			return notFound(cl, "gc:10") && read(cl, "gc:50") == "50"
		})
	}
	waitDigests(t, nodes, 15*time.Second)
}

// TestAbsentMemberResyncs: a member is killed; meanwhile the others delete
// keys, write enough to trim their logs, and drop the tombstones when the
// (short) horizon passes, since the dead member blocks causal stability.
// The member comes back after longer than the horizon, still holding the
// deleted values: it must resync rather than bring them back, and every
// digest must agree.
func TestAbsentMemberResyncs(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a member")
	}
	const horizon = 3 * time.Second
	extra := []string{"--domain", "dc-resync", "--tombstone-horizon", horizon.String(), "--max-log-entries", "20"}
	a := startNode(t, t.TempDir(), "127.0.0.1:0", extra...)
	b := startNode(t, t.TempDir(), "127.0.0.1:0", append(extra, "--join", a.gossip)...)
	cDir, cAddr, cGossip := t.TempDir(), freeAddr(t), freeAddr(t)
	cArgs := append([]string{"--gossip-addr", cGossip, "--join", a.gossip}, extra...)
	c := startNode(t, cDir, cAddr, cArgs...)
	waitMembers(t, []*node{a, b, c}, 3)

	ctx := context.Background()
	ca := goClient(t, a)
	for i := range 60 {
		if _, err := ca.Set(ctx, []byte(fmt.Sprintf("old:%d", i)), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitDigests(t, []*node{a, b, c}, 15*time.Second)

	c.kill() // keeps its data, as a crashed machine does
	killed := time.Now()
	waitMembers(t, []*node{a, b}, 2)
	cb := goClient(t, b)
	for i := range 30 {
		if err := cb.Del(ctx, []byte(fmt.Sprintf("old:%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if _, err := ca.Set(ctx, []byte(fmt.Sprintf("new:%d", i)), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 30*time.Second, "a and b drop the tombstones at the horizon", func() bool {
		for _, n := range []*node{a, b} {
			if st := gcStatus(t, n); st.DeadRecords != 0 || st.DroppedHorizon < 30 {
				return false
			}
		}
		return true
	})
	if away := time.Since(killed); away < 2*horizon {
		time.Sleep(2*horizon - away) // away for twice the horizon
	}

	c = startNode(t, cDir, cAddr, cArgs...)
	restarted := time.Now()
	nodes := []*node{a, b, c}
	took := waitDigests(t, nodes, 30*time.Second)
	cc := goClient(t, c)
	for i := range 60 {
		key := fmt.Sprintf("old:%d", i)
		for j, cl := range []*client.Client{ca, cb, cc} {
			switch got := read(cl, key); {
			case i < 30 && !notFound(cl, key):
				t.Errorf("deleted %s came back on node %d: %q", key, j, got)
			case i >= 30 && got != strconv.Itoa(i):
				t.Errorf("%s on node %d = %q, want %d", key, j, got, i)
			}
		}
	}
	for i := range 100 {
		if got := read(cc, fmt.Sprintf("new:%d", i)); got != strconv.Itoa(i) {
			t.Fatalf("new:%d on the returned member = %q", i, got)
		}
	}
	var st gcDoc
	defer func() {
		if t.Failed() {
			t.Logf("returned member: %+v\n%s", st, c.output())
		}
	}()
	poll(t, 15*time.Second, "the returned member ends its resync", func() bool {
		st = gcStatus(t, c)
		return !st.Resyncing && st.Resyncs >= 1
	})
	t.Logf("member back after %s away (horizon %s): digests equal %s after restart (%s)", restarted.Sub(killed).Round(time.Millisecond), horizon, took, time.Since(restarted).Round(time.Millisecond))
}
