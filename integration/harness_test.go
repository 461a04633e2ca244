package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the upu binary built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upu-integ-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin = filepath.Join(dir, "upu")
	build := exec.Command("go", "build", "-o", bin, "../cmd/upu")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building upu:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one `upu serve` process started by a test.
type node struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	addr   string
	gossip string        // gossip address, from the start-up line
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done

	mu   sync.Mutex
	logs bytes.Buffer
}

// startNode runs `upu serve` on dir and addr (":0" style ports are resolved
// from the start-up log line) and waits until it serves. It gossips on an
// ephemeral port unless extra says --gossip-addr.
func startNode(t *testing.T, dir, addr string, extra ...string) *node {
	t.Helper()
	args := []string{"serve", "--data-dir", dir, "--addr", addr, "--log-format", "json"}
	if !slices.Contains(extra, "--gossip-addr") {
		args = append(args, "--gossip-addr", "127.0.0.1:0")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cmd: cmd, dir: dir, done: make(chan struct{})}
	journalOf(t).addNode(n)
	ready := make(chan started, 1)
	go n.scan(stderr, ready)
	go func() { n.err = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.kill() })
	select {
	case st := <-ready:
		n.addr, n.gossip = st.addr, st.gossip
	case <-n.done:
		t.Fatalf("upu serve exited before serving: %v\n%s", n.err, n.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("upu serve did not start within 30s\n%s", n.output())
	}
	return n
}

// started is what the start-up line says of where a node listens.
type started struct{ addr, gossip string }

// scan keeps the node's log and reports the addresses from its start-up
// line.
func (n *node) scan(r io.Reader, ready chan<- started) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		n.mu.Lock()
		n.logs.Write(line)
		n.logs.WriteByte('\n')
		n.mu.Unlock()
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == "node started" {
			if a, ok := rec["addr"].(string); ok {
				g, _ := rec["gossip_addr"].(string)
				select {
				case ready <- started{addr: a, gossip: g}:
				default:
				}
			}
		}
	}
}

func (n *node) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// kill sends SIGKILL and waits for the process to go.
func (n *node) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		if n.err != nil {
			n.t.Fatalf("upu serve exited with %v after SIGTERM\n%s", n.err, n.output())
		}
	case <-time.After(30 * time.Second):
		n.t.Fatalf("upu serve did not stop within 30s of SIGTERM\n%s", n.output())
	}
}

// cli runs one upu client command against addr and returns its output and
// exit code.
func cli(t *testing.T, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliWithInput(t, addr, nil, args...)
}

// cliWithInput is cli with stdin as the command's standard input.
func cliWithInput(t *testing.T, addr string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--nodes", addr}, args...)...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("upu %s: %v", strings.Join(args, " "), err)
	}
	journalOf(t).step("upu %s -> exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, head(out.String()), head(errb.String()))
	return out.String(), errb.String(), code
}

// head is the start of a command's output, for the failure report.
func head(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// mustCLI runs a command that must succeed and returns its trimmed stdout.
func mustCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, addr, args...)
	if code != 0 {
		t.Fatalf("upu %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return strings.TrimSuffix(out, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment ago,
// for tests that restart a node on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
