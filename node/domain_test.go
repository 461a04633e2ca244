package node

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/client"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/protocol"
)

// startMember starts a node that gossips on an ephemeral port and joins
// the members given.
func startMember(t *testing.T, cfg Config, join ...*Node) *Node {
	t.Helper()
	cfg.Gossip.BindAddr = "127.0.0.1:0"
	for _, j := range join {
		cfg.Gossip.Join = append(cfg.Gossip.Join, j.GossipAddr().String())
	}
	return startNode(t, cfg)
}

func newClient(t *testing.T, n *Node, role protocol.Role, token string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Nodes = []string{n.Addr().String()}
	cfg.Role, cfg.Token = role, token
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// eventually polls cond every 10ms until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func valueOn(cl *client.Client, key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	it, err := cl.Get(ctx, []byte(key))
	if err != nil {
		return ""
	}
	return string(it.Value)
}

func alive(ms []protocol.Member) int {
	n := 0
	for _, m := range ms {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// TestDomainReplicates: three in-process nodes joined by gossip replicate
// writes, counters and deletes to each other, report each other in
// members and status, and see a member that closes as left.
func TestDomainReplicates(t *testing.T) {
	ctx := context.Background()
	a := startMember(t, Config{Domain: "dc1"})
	b := startMember(t, Config{Domain: "dc1"}, a)
	c := startMember(t, Config{Domain: "dc1"}, a)
	nodes := []*Node{a, b, c}
	clients := make([]*client.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClient(t, n, protocol.RoleClient, "")
	}
	eventually(t, "three alive members everywhere", func() bool {
		for _, cl := range clients {
			ms, err := cl.Members(ctx)
			if err != nil || alive(ms) != 3 {
				return false
			}
		}
		return true
	})

	if _, err := clients[0].Set(ctx, []byte("k"), []byte("from-a")); err != nil {
		t.Fatal(err)
	}
	for i, cl := range clients {
		if _, err := cl.Incr(ctx, []byte("n"), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for i, cl := range clients {
		eventually(t, "node "+nodes[i].ID().String()+" has every write", func() bool {
			return valueOn(cl, "k") == "from-a" && valueOn(cl, "n") == "6"
		})
	}
	if err := clients[1].Del(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	for _, cl := range clients {
		eventually(t, "delete replicated", func() bool {
			_, err := cl.Get(ctx, []byte("k"))
			return errors.Is(err, client.ErrNotFound)
		})
	}

	// Replication stats are published every tick: poll.
	eventually(t, "status shows the domain and its traffic", func() bool {
		st, err := clients[0].Status(ctx)
		return err == nil && st.Members == 3 && st.Successor != "" && len(st.Peers) == 2 &&
			st.EntriesSent > 0 && st.EntriesApplied > 0
	})
	ms, err := clients[0].Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	self := 0
	for _, m := range ms {
		if m.Domain != "dc1" || m.Addr == "" || m.GossipAddr == "" {
			t.Errorf("member %+v lacks its domain or addresses", m)
		}
		if m.Self {
			self++
			if m.NodeID != a.ID().String() || m.Addr != a.Addr().String() || m.GossipAddr != a.GossipAddr().String() {
				t.Errorf("self member %+v is not node a", m)
			}
		}
	}
	if self != 1 {
		t.Errorf("%d members marked self", self)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a closed member is seen as left", func() bool {
		ms, err := clients[0].Members(ctx)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.NodeID == c.ID().String() {
				return m.State == "left"
			}
		}
		return false
	})
}

// TestPeerTokenAcrossNodes: nodes sharing a peer token replicate; a member
// with another token gets nothing, and its own writes reach no one.
func TestPeerTokenAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a := startMember(t, Config{PeerToken: "p"})
	b := startMember(t, Config{PeerToken: "p"}, a)
	x := startMember(t, Config{PeerToken: "wrong"}, a)
	ca, cb, cx := newClient(t, a, protocol.RoleClient, ""), newClient(t, b, protocol.RoleClient, ""), newClient(t, x, protocol.RoleClient, "")
	eventually(t, "three members", func() bool {
		ms, err := ca.Members(ctx)
		return err == nil && alive(ms) == 3
	})
	if _, err := ca.Set(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := cx.Set(ctx, []byte("from-x"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b has a's write", func() bool { return valueOn(cb, "k") == "v" })
	// Positive evidence that a and b tried x and were refused, before
	// checking that x holds nothing of theirs.
	eventually(t, "sends to x fail", func() bool {
		st, err := ca.Status(ctx)
		return err == nil && st.SendErrors > 0
	})
	if v := valueOn(cx, "k"); v != "" {
		t.Fatalf("x, with the wrong peer token, has k = %q", v)
	}
	for _, cl := range []*client.Client{ca, cb} {
		if v := valueOn(cl, "from-x"); v != "" {
			t.Fatalf("x's write reached a peer that does not share its token")
		}
	}
}

func TestStandaloneMembers(t *testing.T) {
	n := startNode(t, Config{Domain: "solo"})
	ms, err := newClient(t, n, protocol.RoleClient, "").Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Member{NodeID: n.ID().String(), Domain: "solo", Addr: n.Addr().String(), State: "alive", Self: true}
	if len(ms) != 1 || ms[0] != want {
		t.Fatalf("members = %+v, want only %+v", ms, want)
	}
	if n.GossipAddr() != nil {
		t.Fatalf("standalone node gossips on %s", n.GossipAddr())
	}
}

func TestDomainConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" for valid
	}{
		{"defaults", Config{}, ""},
		{"ephemeral port", Config{Gossip: gossip.Config{BindAddr: "127.0.0.1:0", Join: []string{"10.0.0.1:7946", "host.example:7946"}}}, ""},
		{"host name", Config{Gossip: gossip.Config{BindAddr: "localhost:7946"}}, "gossip-addr"},
		{"no port", Config{Gossip: gossip.Config{BindAddr: "127.0.0.1"}}, "gossip-addr"},
		{"bad join", Config{Gossip: gossip.Config{Join: []string{"10.0.0.1"}}}, "join"},
		{"standalone ignores gossip", Config{Standalone: true, Gossip: gossip.Config{BindAddr: "nowhere"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tt.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an ErrConfig about %s", err, tt.want)
			}
		})
	}
}

func TestDialableAddr(t *testing.T) {
	tests := []struct {
		bound, gossip, want string
	}{
		{"127.0.0.1:7700", "127.0.0.1:7946", "127.0.0.1:7700"},
		{"10.1.2.3:7700", "0.0.0.0:7946", "10.1.2.3:7700"},
		{"0.0.0.0:7700", "10.1.2.3:7946", "10.1.2.3:7700"},
		{"[::]:7700", "10.1.2.3:7946", "10.1.2.3:7700"},
		{"0.0.0.0:7700", "0.0.0.0:7946", ""},
	}
	for _, tt := range tests {
		bound, err := net.ResolveTCPAddr("tcp", tt.bound)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dialableAddr(bound, tt.gossip)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("dialableAddr(%s, %s) = %q, %v; want %q", tt.bound, tt.gossip, got, err, tt.want)
		}
	}
}

// TestRespDomainReplicates: in a domain of three nodes, what a Redis client
// writes through one node's listener is read through the others'.
func TestRespDomainReplicates(t *testing.T) {
	member := func(join ...*Node) *Node {
		cfg := Config{Domain: "dc1", Gossip: gossip.Config{BindAddr: "127.0.0.1:0"}}
		for _, j := range join {
			cfg.Gossip.Join = append(cfg.Gossip.Join, j.GossipAddr().String())
		}
		return startRespNode(t, cfg)
	}
	a := member()
	nodes := []*Node{a, member(a), member(a)}
	ctx := ctxT(t)
	clients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = redisClient(t, n, 3)
	}
	if err := clients[0].Set(ctx, "k", "from-a", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for i, r := range clients {
		if err := r.IncrBy(ctx, "n", int64(i+1)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range clients {
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, _ := r.Get(ctx, "k").Result()
			c, _ := r.Get(ctx, "n").Result()
			ttl, _ := r.TTL(ctx, "k").Result()
			if v == "from-a" && c == "6" && ttl > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: k=%q (ttl %v) n=%q, want from-a and 6", i, v, ttl, c)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestPortInUseNamesTheFlag: a listener that cannot bind says which flag
// sets its address.
func TestPortInUseNamesTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	addr := taken.Addr().String()
	for _, tt := range []struct {
		flag string
		cfg  Config
	}{
		{"--addr", Config{Addr: addr, Standalone: true}},
		{"--gossip-addr", Config{Addr: "127.0.0.1:0", Gossip: gossip.Config{BindAddr: addr}}},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			tt.cfg.InMemory = true
			n, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			err = n.Start()
			if err == nil || !strings.Contains(err.Error(), tt.flag+" "+addr) {
				t.Fatalf("Start with %s taken = %v, want an error naming %s %s", addr, err, tt.flag, addr)
			}
		})
	}
}
