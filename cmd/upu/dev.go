package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/client"
	"github.com/upu/upu/node"
	"github.com/upu/upu/protocol"
)

// ErrNotReady is returned by `upu dev` when the fleet it started did not
// settle (members joined, parents followed, a relay in every child domain)
// within readyTimeout.
var ErrNotReady = errors.New("upu: dev: the fleet was not ready")

const (
	// readyTimeout bounds the wait for the fleet to settle; on loopback it
	// takes a second or two.
	readyTimeout = 15 * time.Second
	// readyPoll is how often the wait looks again.
	readyPoll = 100 * time.Millisecond
	// maxLevels and maxDevNodes bound the tree: one process holds every
	// node, each with its own store, gossip and links.
	maxLevels   = 5
	maxDevNodes = 64
)

const devDescription = `Starts a fleet of domains in this one process, every node on 127.0.0.1 with
ports picked by the system (binary protocol, RESP and gossip), sets each domain's
parent, waits until every child domain relays to its parent, and prints each node's
domain, ID, addresses and parent, with commands to try. Ctrl-C (SIGINT) or SIGTERM
stops every node and removes the data, unless --data-dir was given.

The tree has --levels levels. The top one is the domain "root"; every domain above
the bottom level has --leaves child domains, so the bottom level has
leaves^(levels-1) domains. Bottom domains are named leaf1, leaf2, ...; those between
(with --levels 3 or more) mid1, mid2, ..., both numbered from the top level down and
left to right within a level. With --levels 3 and --leaves 2: root; mid1 and mid2
under it; leaf1 and leaf2 under mid1, leaf3 and leaf4 under mid2. With --levels 1
there is root alone and --leaves does not apply. Each domain has --nodes-per-domain
nodes, at most 64 nodes in all.`

func devCommand() *cli.Command {
	return &cli.Command{
		Name:        "dev",
		Usage:       "start a local fleet of domains, parents set, until SIGINT or SIGTERM",
		Description: devDescription,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "levels", Value: 2, Usage: "levels of the domain tree, root included, 1 to 5"},
			&cli.IntFlag{Name: "leaves", Value: 2, Usage: "child domains of each domain above the bottom level"},
			&cli.IntFlag{Name: "nodes-per-domain", Value: 2, Usage: "nodes in each domain"},
			&cli.StringFlag{Name: "data-dir", Usage: "keep the nodes' data in `DIR`, one subdirectory per node (domain-N), instead of a temporary directory removed on exit"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "the nodes' log level on stderr: " + logLevels},
			jsonFlag(),
		},
		Action: dev,
	}
}

func dev(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%w: dev takes no arguments, got %q; flags start with --", ErrUsage, c.Args().First())
	}
	shape := devShape{levels: c.Int("levels"), fanOut: c.Int("leaves"), perDomain: c.Int("nodes-per-domain")}
	if err := shape.check(); err != nil {
		return err
	}
	base := devNodeConfig(c.String("log-level"))
	// A bad log level is refused before anything is created.
	if err := base.Validate(); err != nil {
		return err
	}
	f, err := startFleet(shape, base, c.String("data-dir"))
	if err != nil {
		return err
	}
	if err := f.settle(c.Context); err != nil {
		closeErr := f.close()
		if c.Context.Err() != nil {
			return closeErr // stopped by a signal while it started
		}
		return errors.Join(err, closeErr)
	}
	if c.Bool("json") {
		err = json.NewEncoder(c.App.Writer).Encode(f.doc())
	} else {
		err = f.print(c.App.Writer)
	}
	if err == nil {
		<-c.Context.Done()
	}
	return errors.Join(err, f.close())
}

// devShape is the tree `upu dev` builds.
type devShape struct {
	levels    int // 1: root alone
	fanOut    int // children of each domain above the bottom level
	perDomain int // nodes in each domain
}

// check reports every flag out of range, as usage errors.
func (s devShape) check() error {
	var errs []error
	if s.levels < 1 || s.levels > maxLevels {
		errs = append(errs, fmt.Errorf("%w: --levels %d: want 1 to %d", ErrUsage, s.levels, maxLevels))
	}
	if s.fanOut < 1 {
		errs = append(errs, fmt.Errorf("%w: --leaves %d: want 1 or more", ErrUsage, s.fanOut))
	}
	if s.perDomain < 1 {
		errs = append(errs, fmt.Errorf("%w: --nodes-per-domain %d: want 1 or more", ErrUsage, s.perDomain))
	}
	if len(errs) == 0 && s.nodes() > maxDevNodes {
		errs = append(errs, fmt.Errorf("%w: --levels %d, --leaves %d and --nodes-per-domain %d make more than %d nodes; one process holds them all",
			ErrUsage, s.levels, s.fanOut, s.perDomain, maxDevNodes))
	}
	return errors.Join(errs...)
}

// nodes counts the fleet's nodes; past maxDevNodes it returns some larger
// number, without overflow however large the flags.
func (s devShape) nodes() int {
	const tooMany = maxDevNodes + 1
	if s.perDomain > maxDevNodes {
		return tooMany
	}
	total, width := 0, 1 // width: the domains of the level
	for range s.levels {
		total += width * s.perDomain
		if total > maxDevNodes {
			return tooMany
		}
		if s.fanOut > maxDevNodes {
			width = tooMany
		} else {
			width *= s.fanOut
		}
	}
	return total
}

// devDomain is one domain of the tree: its name, its parent's ("" for the
// root) and its level, 1 at the root.
type devDomain struct {
	name, parent string
	level        int
}

// plan names the domains of the tree, top level first, each level left
// to right: root, then mid1..., then leaf1....
func (s devShape) plan() []devDomain {
	out := []devDomain{{name: "root", level: 1}}
	above, mids, leaves := out, 0, 0
	for level := 2; level <= s.levels; level++ {
		var this []devDomain
		for _, p := range above {
			for range s.fanOut {
				d := devDomain{parent: p.name, level: level}
				if level == s.levels {
					leaves++
					d.name = fmt.Sprintf("leaf%d", leaves)
				} else {
					mids++
					d.name = fmt.Sprintf("mid%d", mids)
				}
				this = append(this, d)
			}
		}
		out = append(out, this...)
		above = this
	}
	return out
}

// devNodeConfig is the configuration every node of the fleet starts from:
// loopback ports picked by the system, a leave that does not linger (on
// loopback the others hear of it at once), and a store small enough that
// dozens fit in one process.
func devNodeConfig(logLevel string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.RespAddr = "127.0.0.1:0"
	cfg.Gossip.BindAddr = "127.0.0.1:0"
	cfg.Gossip.LeavePropagateDelay = 100 * time.Millisecond
	cfg.Log.Level = logLevel
	cfg.Store.MemTableSize = 8 << 20
	cfg.Store.BlockCacheSize = 4 << 20
	cfg.Store.IndexCacheSize = 2 << 20
	cfg.Store.RecordCacheSize = 4 << 20
	return cfg
}

// fleet is the running tree: its domains in plan order, each with its
// nodes, and where their data is.
type fleet struct {
	dir     string
	keep    bool // dir was given: it stays
	levels  int
	domains []*fleetDomain
}

type fleetDomain struct {
	devDomain
	nodes []*node.Node
}

// startFleet creates the data directory (a temporary one unless dir is
// given) and starts every node of the tree; the first node of a domain
// is the one the others join. On an error nothing is left running.
func startFleet(shape devShape, base node.Config, dir string) (*fleet, error) {
	f := &fleet{dir: dir, keep: dir != "", levels: shape.levels}
	if f.keep {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
	} else {
		tmp, err := os.MkdirTemp("", "upu-dev-*")
		if err != nil {
			return nil, err
		}
		f.dir = tmp
	}
	for _, d := range shape.plan() {
		fd := &fleetDomain{devDomain: d}
		f.domains = append(f.domains, fd)
		for i := range shape.perDomain {
			cfg := base
			cfg.Domain = d.name
			cfg.DataDir = filepath.Join(f.dir, fmt.Sprintf("%s-%d", d.name, i+1))
			if i > 0 {
				cfg.Gossip.Join = []string{fd.nodes[0].GossipAddr().String()}
			}
			n, err := node.New(cfg, nil)
			if err != nil {
				return nil, errors.Join(err, f.close())
			}
			if err := n.Start(); err != nil {
				return nil, errors.Join(err, n.Close(), f.close())
			}
			fd.nodes = append(fd.nodes, n)
		}
	}
	return f, nil
}

// settle sets the parents, top level first, from the first member of each
// child domain with every parent member as a seed, and waits for the tree
// to be ready, for at most readyTimeout.
func (f *fleet) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, d := range f.domains {
		if d.parent == "" {
			continue
		}
		if err := d.nodes[0].Cascade().SetParent(ctx, d.parent, f.domain(d.parent).addrs()); err != nil {
			return fmt.Errorf("upu: dev: set the parent of %s: %w", d.name, err)
		}
	}
	clients, err := f.clients()
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	if err != nil {
		return err
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		pending := f.pending(ctx, clients)
		if pending == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w within %s: %w", ErrNotReady, readyTimeout, pending)
		case <-tick.C:
		}
	}
}

func (f *fleet) domain(name string) *fleetDomain {
	for _, d := range f.domains {
		if d.name == name {
			return d
		}
	}
	return nil
}

// addrs are the binary protocol addresses of the domain's nodes.
func (d *fleetDomain) addrs() []string {
	out := make([]string, len(d.nodes))
	for i, n := range d.nodes {
		out[i] = n.Addr().String()
	}
	return out
}

// clients connects one client to each node, by its ID, to ask it for its
// domain's members as it sees them.
func (f *fleet) clients() (map[string]*client.Client, error) {
	out := map[string]*client.Client{}
	for _, d := range f.domains {
		for _, n := range d.nodes {
			cfg := client.DefaultConfig()
			cfg.Nodes = []string{n.Addr().String()}
			cfg.ConnsPerNode = 1
			cfg.Name = "upu-dev"
			cl, err := client.New(cfg)
			if err != nil {
				return out, err
			}
			out[n.ID().String()] = cl
		}
	}
	return out, nil
}

// pending says what the fleet still waits for, or nil once every node sees
// all the members of its domain and, in every child domain, every member
// follows the parent and knows its path to the root, and all agree on one
// relay that relays.
func (f *fleet) pending(ctx context.Context, clients map[string]*client.Client) error {
	for _, d := range f.domains {
		for _, n := range d.nodes {
			ms, err := clients[n.ID().String()].Members(ctx)
			if err != nil {
				return fmt.Errorf("%s: node %s: %w", d.name, n.ID(), err)
			}
			if alive := aliveIn(ms, d.name); alive != len(d.nodes) {
				return fmt.Errorf("%s: node %s sees %d of the domain's %d members", d.name, n.ID(), alive, len(d.nodes))
			}
		}
		if d.parent == "" {
			continue
		}
		relay := d.nodes[0].Cascade().Status().Relay
		for _, n := range d.nodes {
			st := n.Cascade().Status()
			switch {
			case st.Parent != d.parent:
				return fmt.Errorf("%s: node %s does not follow the parent %s yet", d.name, n.ID(), d.parent)
			case len(st.Path) != d.level:
				return fmt.Errorf("%s: node %s knows its path to the root as %q", d.name, n.ID(), strings.Join(st.Path, " -> "))
			case st.Relay != relay:
				return fmt.Errorf("%s: the members do not agree on the relay yet", d.name)
			}
		}
		if err := d.relaying(relay); err != nil {
			return err
		}
	}
	return nil
}

// relaying reports whether the member with ID relay relays to the parent.
func (d *fleetDomain) relaying(relay string) error {
	for _, n := range d.nodes {
		if n.ID().String() != relay {
			continue
		}
		if st := n.Cascade().Status(); st.State != cascade.StateRelaying {
			return fmt.Errorf("%s: the relay %s is %s %s", d.name, relay, st.State, st.Reason)
		}
		return nil
	}
	return fmt.Errorf("%s: the relay %q is no member", d.name, relay)
}

func aliveIn(ms []protocol.Member, domain string) int {
	alive := 0
	for _, m := range ms {
		if m.Domain == domain && m.State == "alive" {
			alive++
		}
	}
	return alive
}

// close stops every node, the bottom level first so that no relay sees
// its parent go, the domains of a level at once. A domain's members stop
// one after another: a member that leaves while the others still listen
// is done in a moment, where members leaving together each wait for the
// others' acknowledgement until the leave times out. Then it removes the
// data unless it is kept.
func (f *fleet) close() error {
	var errs []error
	var mu sync.Mutex
	for level := f.levels; level >= 1; level-- {
		var wg sync.WaitGroup
		for _, d := range f.domains {
			if d.level != level {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, n := range d.nodes {
					if err := n.Close(); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s: node %s: %w", d.name, n.ID(), err))
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
	}
	if !f.keep {
		errs = append(errs, os.RemoveAll(f.dir))
	}
	return errors.Join(errs...)
}

// devNode is one row of the fleet's description.
type devNode struct {
	Domain   string `json:"domain"`
	Node     string `json:"node"`
	Addr     string `json:"addr"`
	RespAddr string `json:"resp_addr"`
	Parent   string `json:"parent,omitempty"`
}

// devExample is a command to try, and what it shows.
type devExample struct {
	Command string `json:"command"`
	Shows   string `json:"shows"`
}

// devDoc is `upu dev --json`.
type devDoc struct {
	DataDir  string       `json:"data_dir"`
	Kept     bool         `json:"kept"` // the data stays after exit
	Nodes    []devNode    `json:"nodes"`
	Examples []devExample `json:"examples"`
}

func (f *fleet) doc() devDoc {
	doc := devDoc{DataDir: f.dir, Kept: f.keep, Examples: f.examples()}
	for _, d := range f.domains {
		for _, n := range d.nodes {
			doc.Nodes = append(doc.Nodes, devNode{Domain: d.name, Node: n.ID().String(), Addr: n.Addr().String(), RespAddr: n.RespAddr().String(), Parent: d.parent})
		}
	}
	return doc
}

// print writes the table of nodes, the commands to try and where the data
// is.
func (f *fleet) print(w io.Writer) error {
	doc := f.doc()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tNODE\tADDR\tRESP-ADDR\tPARENT")
	for _, n := range doc.Nodes {
		parent := n.Parent
		if parent == "" {
			parent = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Domain, n.Node, n.Addr, n.RespAddr, parent)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nTry, from another terminal:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range doc.Examples {
		fmt.Fprintf(tw, "  %s\t# %s\n", e.Command, e.Shows)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	kept := "removed on exit"
	if f.keep {
		kept = "kept on exit"
	}
	_, err := fmt.Fprintf(w, "\nData in %s (%s). Ctrl-C stops the fleet.\n", f.dir, kept)
	return err
}

// examples are one command per level: a write on the first leaf, a read
// of it at each of the leaf's ancestors, and a write at the root that the
// leaf finds only by asking up the tree, since nothing flows down.
func (f *fleet) examples() []devExample {
	upu := func(n *node.Node, args string) string { return "upu --nodes " + n.Addr().String() + " " + args }
	root := f.domains[0]
	rootNode := root.nodes[len(root.nodes)-1]
	redisGet := devExample{"redis-cli -p " + port(rootNode.RespAddr()) + " get greeting", "the same over RESP"}
	leaf := f.domains[len(f.domains)-1]
	if leaf == root {
		return []devExample{
			{upu(root.nodes[0], "set greeting hello"), "a write on root"},
			{upu(rootNode, "get greeting"), "read on a member of root"},
			redisGet,
		}
	}
	// The first domain of the bottom level.
	for i := len(f.domains) - 1; i >= 0 && f.domains[i].level == leaf.level; i-- {
		leaf = f.domains[i]
	}
	leafNode := leaf.nodes[0]
	out := []devExample{{upu(leafNode, "set greeting hello"), "a write on " + leaf.name}}
	for d := f.domain(leaf.parent); d != root; d = f.domain(d.parent) {
		out = append(out, devExample{upu(d.nodes[0], "get greeting"), "read at " + d.name + ": relayed up from " + leaf.name})
	}
	return append(out,
		devExample{upu(rootNode, "get greeting"), "read at root"},
		redisGet,
		devExample{upu(rootNode, "set motd welcome"), "a write at root: nothing flows down"},
		devExample{upu(leafNode, "get motd --scope up"), leaf.name + " asks up the tree (--scope local: not found)"},
		devExample{upu(leafNode, "cascade status"), "parent, path, relay, lag"},
	)
}

// port is the port of a listener's address, for redis-cli -p.
func port(a net.Addr) string {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return p
}
