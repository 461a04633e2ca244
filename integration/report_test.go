package integration

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// A failing test prints what seed 004 asks of every test log: the
// environment, the initial state (each node's command line), the steps
// taken (every CLI command with its exit code), and what came back (the
// last lines of each node's log); the failure message itself says what was
// expected. A passing test prints nothing of it.

// journal is one test's record of its nodes and steps.
type journal struct {
	mu    sync.Mutex
	nodes []*node
	steps []string
}

var journals sync.Map // *testing.T -> *journal

// journalOf returns t's journal, creating it with the cleanup that prints
// it if t failed.
func journalOf(t *testing.T) *journal {
	if j, ok := journals.Load(t); ok {
		return j.(*journal)
	}
	j := &journal{}
	if prev, loaded := journals.LoadOrStore(t, j); loaded {
		return prev.(*journal)
	}
	t.Cleanup(func() {
		journals.Delete(t)
		if t.Failed() {
			t.Log(j.report())
		}
	})
	return j
}

func (j *journal) addNode(n *node) {
	j.mu.Lock()
	j.nodes = append(j.nodes, n)
	j.mu.Unlock()
}

func (j *journal) step(format string, args ...any) {
	j.mu.Lock()
	j.steps = append(j.steps, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

// reportLogLines is how much of each node's log a failure report shows.
const reportLogLines = 40

func (j *journal) report() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b strings.Builder
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "\n=== failure report\nenvironment: %s %s/%s, %d CPUs, kernel %s, uid %d, upu binary %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.TrimSpace(string(kernel)), os.Getuid(), bin)
	fmt.Fprintf(&b, "initial state: %d node(s)\n", len(j.nodes))
	for i, n := range j.nodes {
		fmt.Fprintf(&b, "  node %d: %s (pid %d, addr %s, gossip %s)\n", i, strings.Join(n.cmd.Args, " "), n.cmd.Process.Pid, n.addr, n.gossip)
	}
	fmt.Fprintf(&b, "steps: %d CLI command(s)\n", len(j.steps))
	for i, s := range j.steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
	}
	for i, n := range j.nodes {
		lines := strings.Split(strings.TrimSpace(n.output()), "\n")
		if len(lines) > reportLogLines {
			lines = lines[len(lines)-reportLogLines:]
		}
		fmt.Fprintf(&b, "what came back: node %d's last %d log lines:\n  %s\n", i, len(lines), strings.Join(lines, "\n  "))
	}
	return b.String()
}

// TestFailureReport: the report has every part seed 004 asks for.
func TestFailureReport(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	mustCLI(t, n.addr, "set", "k", "v")
	got := journalOf(t).report()
	for _, want := range []string{"environment: go", "initial state: 1 node(s)", "serve --data-dir", "steps: 1 CLI command(s)", "upu set k v -> exit 0", "node started"} {
		if !strings.Contains(got, want) {
			t.Errorf("the failure report lacks %q:\n%s", want, got)
		}
	}
}
