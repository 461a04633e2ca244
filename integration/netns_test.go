package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsCluster is a set of network namespaces, one per node, each joined by
// a veth pair to a bridge in a namespace of its own; the test process
// reaches the bridge through one more veth pair from the root namespace.
// Keeping the bridge out of the root namespace keeps the host's own
// firewall (br_netfilter, FORWARD policies) out of the path.
type netnsCluster struct {
	t      *testing.T
	id     string // random, in every name the cluster creates
	subnet string // "10.X.Y."
	nss    []string
	bridge string // namespace holding the bridge
	hostIf string // root-namespace end of the test's veth
}

// requireNetns skips the test unless it can build namespaces and firewall
// them.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chaos tests need root to create network namespaces (run as root, e.g. in CI)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("chaos tests need %s (apt-get install -y iproute2 iptables; .ci/run installs them): %v", tool, err)
		}
	}
	// iptables may be installed but unusable (no kernel support): try it in a
	// throwaway namespace.
	probe := "upu-probe-" + randHex(t, 4)
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("chaos tests cannot create a network namespace: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", probe).Run()
	if out, err := exec.Command("ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP").CombinedOutput(); err != nil {
		t.Skipf("chaos tests need iptables with the statistic match inside a namespace: %v: %s", err, out)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNetnsCluster makes count node namespaces on a random 10.X.Y.0/24; node
// i (from 0) gets 10.X.Y.(i+1), the test process 10.X.Y.254. Everything is
// removed in t.Cleanup.
func newNetnsCluster(t *testing.T, count int) *netnsCluster {
	t.Helper()
	id := randHex(t, 3)
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	c := &netnsCluster{
		t:      t,
		id:     id,
		subnet: fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[1]),
		bridge: "upu-" + id + "-br",
		hostIf: "uh" + id,
	}
	t.Cleanup(c.remove)
	c.must("ip", "netns", "add", c.bridge)
	c.must("ip", "-n", c.bridge, "link", "add", "br0", "type", "bridge")
	c.must("ip", "-n", c.bridge, "link", "set", "br0", "up")
	c.must("ip", "-n", c.bridge, "link", "set", "lo", "up")

	// The test's own leg: root namespace <-> bridge.
	c.must("ip", "link", "add", c.hostIf, "type", "veth", "peer", "name", "ph"+id, "netns", c.bridge)
	c.must("ip", "-n", c.bridge, "link", "set", "ph"+id, "master", "br0", "up")
	c.must("ip", "addr", "add", c.subnet+"254/24", "dev", c.hostIf)
	c.must("ip", "link", "set", c.hostIf, "up")

	for i := range count {
		ns := fmt.Sprintf("upu-%s-%d", id, i)
		c.nss = append(c.nss, ns)
		c.must("ip", "netns", "add", ns)
		c.must("ip", "-n", ns, "link", "set", "lo", "up")
		port := fmt.Sprintf("p%s%d", id, i)
		c.must("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", c.bridge)
		c.must("ip", "-n", c.bridge, "link", "set", port, "master", "br0", "up")
		c.must("ip", "-n", ns, "addr", "add", c.ip(i)+"/24", "dev", "eth0")
		c.must("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	return c
}

// ip is node i's address.
func (c *netnsCluster) ip(i int) string { return fmt.Sprintf("%s%d", c.subnet, i+1) }

// run runs a command and returns its combined output.
func (c *netnsCluster) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (c *netnsCluster) must(name string, args ...string) {
	c.t.Helper()
	if _, err := c.run(name, args...); err != nil {
		c.t.Fatal(err)
	}
}

// inNS runs a command inside node i's namespace.
func (c *netnsCluster) inNS(i int, args ...string) {
	c.t.Helper()
	c.must("ip", append([]string{"netns", "exec", c.nss[i]}, args...)...)
}

// remove deletes the namespaces (and with them their veth ends and the
// bridge) and the root-namespace veth.
func (c *netnsCluster) remove() {
	for _, ns := range append(c.nss, c.bridge) {
		if _, err := c.run("ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			c.t.Errorf("removing namespace: %v", err)
		}
	}
	// Deleting the bridge namespace destroys the peer and so the pair;
	// this catches a half-built cluster.
	if _, err := os.Stat("/sys/class/net/" + c.hostIf); err == nil {
		if _, err := c.run("ip", "link", "del", c.hostIf); err != nil {
			c.t.Errorf("removing veth: %v", err)
		}
	}
}

// cut drops, inside node i's namespace, everything to and from node j.
func (c *netnsCluster) cut(i, j int) {
	c.inNS(i, "iptables", "-A", "INPUT", "-s", c.ip(j), "-j", "DROP")
	c.inNS(i, "iptables", "-A", "OUTPUT", "-d", c.ip(j), "-j", "DROP")
}

// lossy drops a fraction p of the packets node i receives.
func (c *netnsCluster) lossy(i int, p float64) {
	c.inNS(i, "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", fmt.Sprint(p), "-j", "DROP")
}

// linkDown takes node i's only link down (and up).
func (c *netnsCluster) linkDown(i int, down bool) {
	state := "up"
	if down {
		state = "down"
	}
	c.must("ip", "-n", c.nss[i], "link", "set", "eth0", state)
}

// heal removes every firewall rule and brings every link up.
func (c *netnsCluster) heal() {
	for i := range c.nss {
		c.inNS(i, "iptables", "-F")
		c.linkDown(i, false)
	}
}

// startNodeIn runs `upu serve` inside node i's namespace on its fixed
// addresses, joining join, and waits until it serves. The process is
// `ip netns exec`, which execs upu in place: its PID is upu's.
func (c *netnsCluster) startNodeIn(i int, dir string, join []string, extra ...string) *node {
	t := c.t
	t.Helper()
	args := []string{"netns", "exec", c.nss[i], bin, "serve", "--data-dir", dir,
		"--addr", c.ip(i) + ":7700", "--gossip-addr", c.ip(i) + ":7946", "--log-format", "json"}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	cmd := exec.Command("ip", append(args, extra...)...)
	// Its own process group, so that a terminal's signals stay with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cmd: cmd, dir: dir, done: make(chan struct{})}
	ready := make(chan started, 1)
	go n.scan(stderr, ready)
	go func() { n.err = cmd.Wait(); close(n.done) }()
	t.Cleanup(n.kill) // SIGKILL ends a stopped process too
	select {
	case st := <-ready:
		n.addr, n.gossip = st.addr, st.gossip
	case <-n.done:
		t.Fatalf("upu serve in %s exited before serving: %v\n%s", c.nss[i], n.err, n.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("upu serve in %s did not start within 30s\n%s", c.nss[i], n.output())
	}
	return n
}
