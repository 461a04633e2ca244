package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// TestDevPlan: the tree's domains are named and parented as `upu dev
// --help` says: root, then mid1... top down, then leaf1... left to right.
func TestDevPlan(t *testing.T) {
	tests := []struct {
		shape devShape
		want  []devDomain
		nodes int
	}{
		{devShape{levels: 1, fanOut: 3, perDomain: 2}, []devDomain{{"root", "", 1}}, 2},
		{devShape{levels: 2, fanOut: 2, perDomain: 2}, []devDomain{{"root", "", 1}, {"leaf1", "root", 2}, {"leaf2", "root", 2}}, 6},
		{devShape{levels: 3, fanOut: 2, perDomain: 1}, []devDomain{
			{"root", "", 1}, {"mid1", "root", 2}, {"mid2", "root", 2},
			{"leaf1", "mid1", 3}, {"leaf2", "mid1", 3}, {"leaf3", "mid2", 3}, {"leaf4", "mid2", 3},
		}, 7},
		{devShape{levels: 4, fanOut: 1, perDomain: 3}, []devDomain{{"root", "", 1}, {"mid1", "root", 2}, {"mid2", "mid1", 3}, {"leaf1", "mid2", 4}}, 12},
	}
	for _, tt := range tests {
		if got := tt.shape.plan(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: plan %v, want %v", tt.shape, got, tt.want)
		}
		if n := tt.shape.nodes(); n != tt.nodes {
			t.Errorf("%+v: %d nodes, want %d", tt.shape, n, tt.nodes)
		}
	}
}

// TestDevBadFlags: a tree out of range is a usage error, every problem on
// one line, exit status 2, and nothing is created or started.
func TestDevBadFlags(t *testing.T) {
	tests := []struct {
		args string
		want string // the whole stderr line after "upu: "
	}{
		{"dev --levels 0", "usage: --levels 0: want 1 to 5"},
		{"dev --levels 6", "usage: --levels 6: want 1 to 5"},
		{"dev --leaves 0", "usage: --leaves 0: want 1 or more"},
		{"dev --nodes-per-domain 0", "usage: --nodes-per-domain 0: want 1 or more"},
		{"dev --levels -1 --leaves -2 --nodes-per-domain 0", "usage: --levels -1: want 1 to 5; usage: --leaves -2: want 1 or more; usage: --nodes-per-domain 0: want 1 or more"},
		{"dev --levels 5 --leaves 3", "usage: --levels 5, --leaves 3 and --nodes-per-domain 2 make more than 64 nodes; one process holds them all"},
		{"dev --levels 5 --leaves 2000000000", "usage: --levels 5, --leaves 2000000000 and --nodes-per-domain 2 make more than 64 nodes; one process holds them all"},
		{"dev --levels 2 --leaves 4611686018427387904 --nodes-per-domain 4", "usage: --levels 2, --leaves 4611686018427387904 and --nodes-per-domain 4 make more than 64 nodes; one process holds them all"},
		{"dev --levels 1 --nodes-per-domain 65", "usage: --levels 1, --leaves 2 and --nodes-per-domain 65 make more than 64 nodes; one process holds them all"},
		{"dev --levels many", `usage: --levels "many": want a whole number, e.g. 1024`},
		{"dev --log-level loud", `invalid config: log-level="loud": want fatal, error, warn, info or debug`},
		{"dev extra", `usage: dev takes no arguments, got "extra"; flags start with --`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"upu"}, strings.Fields(tt.args)...), strings.NewReader(""), &stdout, &stderr)
			if code != exitFailure || stderr.String() != "upu: "+tt.want+"\n" || stdout.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stderr %q", code, stdout.String(), stderr.String(), exitFailure, "upu: "+tt.want)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Fatalf("a refused dev created %v", ents)
			}
		})
	}
}

// TestDevFleet: the default fleet (root over leaf1 and leaf2, two nodes
// each) answers on every port it prints; a write on a leaf is read at the
// root; a write at the root is found from the leaf only by asking up; on
// cancel the command returns nil with its temporary data gone.
func TestDevFleet(t *testing.T) {
	f := startDev(t)
	rows := f.rows
	if len(rows) != 6 {
		t.Fatalf("%d nodes printed, want 6:\n%s", len(rows), f.out)
	}
	parents := map[string]string{}
	perDomain := map[string]int{}
	for _, r := range rows {
		parents[r.Domain] = r.Parent
		perDomain[r.Domain]++
	}
	if want := map[string]string{"root": "", "leaf1": "root", "leaf2": "root"}; !maps.Equal(parents, want) {
		t.Fatalf("domains and parents %v, want %v", parents, want)
	}
	for d, n := range perDomain {
		if n != 2 {
			t.Errorf("domain %s has %d nodes, want 2", d, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range rows {
		if err := devClient(t, r.Addr).Ping(ctx); err != nil {
			t.Errorf("%s %s: binary protocol at %s: %v", r.Domain, r.Node, r.Addr, err)
		}
		rc := redis.NewClient(&redis.Options{Addr: r.RespAddr, MaxRetries: -1})
		t.Cleanup(func() { rc.Close() })
		if pong, err := rc.Ping(ctx).Result(); err != nil || pong != "PONG" {
			t.Errorf("%s %s: RESP at %s: %q, %v", r.Domain, r.Node, r.RespAddr, pong, err)
		}
	}

	leaf, root := devClient(t, f.first("leaf2").Addr), devClient(t, f.first("root").Addr)
	if _, err := leaf.Set(ctx, []byte("greeting"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the leaf's write read at the root", func() bool {
		it, err := root.Get(ctx, []byte("greeting"))
		return err == nil && string(it.Value) == "hello"
	})
	if _, err := root.Set(ctx, []byte("motd"), []byte("welcome")); err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Get(ctx, []byte("motd")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a write at root read at a leaf with scope local: %v, want not found", err)
	}
	if it, err := leaf.Get(ctx, []byte("motd"), client.WithScope(protocol.ScopeUp)); err != nil || string(it.Value) != "welcome" {
		t.Fatalf("scope up at a leaf: %q, %v; want welcome", it.Value, err)
	}

	if code := f.stop(t); code != 0 {
		t.Fatalf("dev exited %d on cancel, want 0; stderr %q", code, f.stderr.String())
	}
	if _, err := os.Stat(f.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary data %s is still there after exit: %v", f.dataDir, err)
	}
}

// TestDevThreeLevelsJSON: --levels 3 puts mid1 between root and leaf1,
// --json describes the fleet, a write on the leaf is relayed through mid1
// to root, and --data-dir keeps one directory per node after exit.
func TestDevThreeLevelsJSON(t *testing.T) {
	dir := t.TempDir()
	f := startDev(t, "--levels", "3", "--leaves", "1", "--nodes-per-domain", "1", "--json", "--data-dir", dir)
	var doc devDoc
	if err := json.Unmarshal([]byte(f.out), &doc); err != nil {
		t.Fatalf("dev --json printed %q: %v", f.out, err)
	}
	var chain []string
	for _, n := range doc.Nodes {
		chain = append(chain, n.Domain+"<"+n.Parent)
	}
	if want := []string{"root<", "mid1<root", "leaf1<mid1"}; !slices.Equal(chain, want) || doc.DataDir != dir || !doc.Kept || len(doc.Examples) == 0 {
		t.Fatalf("dev --json: nodes %v, data %q kept %v, %d examples; want %v in %q, kept", chain, doc.DataDir, doc.Kept, len(doc.Examples), want, dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := devClient(t, doc.Nodes[2].Addr).Set(ctx, []byte("k"), []byte("from-leaf1")); err != nil {
		t.Fatal(err)
	}
	for _, n := range doc.Nodes[:2] {
		cl := devClient(t, n.Addr)
		pollUntil(t, "the leaf's write read at "+n.Domain, func() bool {
			it, err := cl.Get(ctx, []byte("k"))
			return err == nil && string(it.Value) == "from-leaf1"
		})
	}
	if code := f.stop(t); code != 0 {
		t.Fatalf("dev exited %d on cancel, want 0; stderr %q", code, f.stderr.String())
	}
	for _, sub := range []string{"root-1", "mid1-1", "leaf1-1"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("--data-dir lost %s: %v", sub, err)
		}
	}
}

// devRun is one `upu dev` running in-process until stop.
type devRun struct {
	cancel  context.CancelFunc
	done    chan int // the exit code, once run returns
	stderr  *bytes.Buffer
	out     string    // stdout up to the line that says how to stop
	rows    []devNode // the table, unless --json
	dataDir string
}

// startDev runs `upu dev args...` and waits, at most 20s, for it to print
// the fleet.
func startDev(t *testing.T, args ...string) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	d := &devRun{cancel: cancel, done: make(chan int, 1), stderr: &bytes.Buffer{}}
	go func() {
		code := run(ctx, append([]string{"upu", "dev"}, args...), strings.NewReader(""), pw, d.stderr)
		pw.Close()
		d.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		pr.Close()
	})
	printed := make(chan string, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ctrl-C stops the fleet") || strings.HasPrefix(sc.Text(), "{") {
				break
			}
		}
		printed <- out.String()
		io.Copy(io.Discard, pr)
	}()
	select {
	case d.out = <-printed:
	case code := <-d.done:
		t.Fatalf("dev exited %d before printing the fleet: %s", code, d.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("dev printed no fleet within 20s")
	}
	if d.out == "" {
		code := <-d.done
		t.Fatalf("dev exited %d before printing the fleet: %s", code, d.stderr.String())
	}
	d.rows, d.dataDir = parseDevTable(d.out)
	return d
}

// stop cancels the command's context and returns its exit code, failing
// the test if it takes more than 10s.
func (d *devRun) stop(t *testing.T) int {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("dev did not return within 10s of its cancel")
		return 0
	}
}

func (d *devRun) first(domain string) devNode {
	for _, r := range d.rows {
		if r.Domain == domain {
			return r
		}
	}
	return devNode{}
}

// parseDevTable reads the rows of the table under its header, up to the
// first blank line, and the data directory from the line that names it.
func parseDevTable(out string) (rows []devNode, dataDir string) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Data in "); ok {
			dataDir, _, _ = strings.Cut(rest, " (")
		}
		if !slices.Equal(strings.Fields(l), []string{"DOMAIN", "NODE", "ADDR", "RESP-ADDR", "PARENT"}) {
			continue
		}
		for _, row := range lines[i+1:] {
			f := strings.Fields(row)
			if len(f) != 5 {
				break
			}
			if f[4] == "-" {
				f[4] = ""
			}
			rows = append(rows, devNode{Domain: f[0], Node: f[1], Addr: f[2], RespAddr: f[3], Parent: f[4]})
		}
	}
	return rows, dataDir
}

func devClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{addr}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// pollUntil polls cond every 20ms until it holds, failing after 10s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
