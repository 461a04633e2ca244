package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCLIRoundTrip(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	a := n.addr

	mustCLI(t, a, "set", "greeting", "hello world")
	if got := mustCLI(t, a, "get", "greeting"); got != "hello world" {
		t.Fatalf("get greeting = %q, want %q", got, "hello world")
	}

	if got := mustCLI(t, a, "incr", "hits", "5"); got != "5" {
		t.Fatalf("incr hits 5 = %q", got)
	}
	if got := mustCLI(t, a, "incr", "hits", "3"); got != "8" {
		t.Fatalf("incr hits 3 = %q, want 8", got)
	}
	if got := mustCLI(t, a, "decr", "hits"); got != "7" {
		t.Fatalf("decr hits = %q, want 7", got)
	}
	if got := mustCLI(t, a, "get", "hits"); got != "7" {
		t.Fatalf("get hits = %q, want 7", got)
	}

	mustCLI(t, a, "del", "greeting")
	out, errs, code := cli(t, a, "get", "greeting")
	if code != 1 || strings.TrimSpace(errs) != "not found" || out != "" {
		t.Fatalf("get after del: exit %d, stdout %q, stderr %q; want exit 1 and `not found`", code, out, errs)
	}
}

func TestCLITTL(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	set := time.Now()
	mustCLI(t, n.addr, "set", "session", "abc", "--ttl", "1s")
	if got := mustCLI(t, n.addr, "get", "session"); got != "abc" {
		// Only possible if the CLI round trip itself took a second.
		if time.Since(set) < time.Second {
			t.Fatalf("get session = %q right after set", got)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errs, code := cli(t, n.addr, "get", "session")
		if code == 1 {
			if since := time.Since(set); since < time.Second {
				t.Fatalf("value gone after %s, before its 1s TTL", since)
			}
			break
		}
		if code != 0 {
			t.Fatalf("get session: exit %d: %s", code, errs)
		}
		if time.Now().After(deadline) {
			t.Fatal("value with a 1s TTL still readable after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLILargeValues: a value too long for an argument list goes in from
// standard input or a file, and comes back whole.
func TestCLILargeValues(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	big := strings.Repeat("0123456789abcdef", 40<<10) // 640 KiB: past what execve takes in one argument
	if _, errs, code := cliWithInput(t, n.addr, strings.NewReader(big), "set", "from-stdin", "-", "--ttl", "1h"); code != 0 {
		t.Fatalf("set from stdin: exit %d: %s", code, errs)
	}
	file := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(file, []byte(big[:300<<10]), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, n.addr, "set", "from-file", "--value-file", file)
	for key, want := range map[string]string{"from-stdin": big, "from-file": big[:300<<10]} {
		if got := mustCLI(t, n.addr, "get", key); got != want {
			t.Fatalf("get %s: %d bytes, want %d", key, len(got), len(want))
		}
	}
	if _, errs, code := cli(t, n.addr, "set", "k", "v", "--value-file", file); code != 2 || !strings.Contains(errs, "give one of them") {
		t.Fatalf("set with a value and --value-file: exit %d, stderr %q", code, errs)
	}
}

// TestCLIJSON: every admin command takes --json and prints one JSON
// document.
func TestCLIJSON(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	for _, args := range [][]string{{"status"}, {"members"}, {"digest"}, {"log-level"}, {"log-level", "debug"}, {"slow-threshold"}, {"slow-threshold", "1s"}, {"cascade", "status"}} {
		out := mustCLI(t, n.addr, append(args, "--json")...)
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc) == 0 {
			t.Errorf("%v --json printed %q: %v", args, out, err)
		}
	}
	var lvl struct{ Level string }
	if err := json.Unmarshal([]byte(mustCLI(t, n.addr, "log-level", "--json")), &lvl); err != nil || lvl.Level != "debug" {
		t.Fatalf("log-level --json after setting debug: %+v, %v", lvl, err)
	}
}

// TestCLICompletion: what the completion scripts ask the binary for is the
// commands and flags that may come next.
func TestCLICompletion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-bash-completion"}, []string{"serve", "status", "completion"}},
		{[]string{"reqid", "--generate-bash-completion"}, []string{"decode"}},
		{[]string{"cascade", "--generate-bash-completion"}, []string{"status", "set-parent", "clear-parent"}},
		{[]string{"get", "--s", "--generate-bash-completion"}, []string{"--scope"}},
	} {
		out, err := exec.Command(bin, tt.args...).Output()
		if err != nil {
			t.Fatalf("upu %v: %v", tt.args, err)
		}
		got := strings.Fields(string(out))
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("upu %v offers %v, lacking %q", tt.args, got, w)
			}
		}
	}
}

// TestCLIOnRespPort: a client command pointed at a node's Redis port says
// so at once, instead of waiting out its timeout.
func TestCLIOnRespPort(t *testing.T) {
	respAddr := freeAddr(t)
	startNode(t, t.TempDir(), "127.0.0.1:0", "--resp-addr", respAddr)
	start := time.Now()
	_, errs, code := cli(t, respAddr, "--timeout", "20s", "get", "k")
	if code != 2 || !strings.Contains(errs, "speaks the Redis protocol (RESP), not the UPU protocol") || !strings.Contains(errs, "--addr") {
		t.Fatalf("get on the RESP port: exit %d, stderr %q", code, errs)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("get on the RESP port waited %v for its answer: it should not wait for the timeout", waited)
	}
}

func TestCLIErrors(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	mustCLI(t, n.addr, "set", "word", "bird")
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"missing argument", []string{"get"}, "usage: upu get"},
		{"too many arguments", []string{"set", "a", "b", "c"}, "usage: upu set"},
		{"bad scope", []string{"get", "x", "--scope", "sideways"}, "--scope"},
		{"bad incr amount", []string{"incr", "x", "lots"}, "integer"},
		{"incr on text", []string{"incr", "word"}, "wrong type"},
		{"key too large", []string{"set", strings.Repeat("k", 2000), "v"}, "too large"},
		{"bad reqid", []string{"reqid", "decode", "xyz"}, "invalid request id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := cli(t, n.addr, tc.args...)
			if code < 2 {
				t.Fatalf("exit %d, want 2 or more; stderr %q", code, errs)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q does not mention %q", errs, tc.want)
			}
		})
	}
	_, errs, code := cli(t, "127.0.0.1:1", "get", "x")
	if code != 2 || !strings.Contains(errs, "unavailable") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("unreachable node: exit %d, stderr %q; want exit 2 and one line saying unavailable", code, errs)
	}

	// The node is unharmed by all of that.
	if got := mustCLI(t, n.addr, "get", "word"); got != "bird" {
		t.Fatalf("get word = %q after bad requests", got)
	}
}

// TestKill9Durability: 100 keys written by the CLI survive kill -9, a deleted
// key stays deleted, and a counter keeps its value.
func TestKill9Durability(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "127.0.0.1:0")
	for i := range 100 {
		mustCLI(t, n.addr, "set", fmt.Sprintf("key:%03d", i), fmt.Sprintf("value-%d", i))
	}
	mustCLI(t, n.addr, "del", "key:042")
	mustCLI(t, n.addr, "incr", "counter", "41")
	mustCLI(t, n.addr, "incr", "counter")
	digest := mustCLI(t, n.addr, "digest")

	n.kill()
	n = startNode(t, dir, "127.0.0.1:0")
	for i := range 100 {
		out, errs, code := cli(t, n.addr, "get", fmt.Sprintf("key:%03d", i))
		if i == 42 {
			if code != 1 {
				t.Fatalf("deleted key:042 came back after kill -9: exit %d %q %q", code, out, errs)
			}
			continue
		}
		if want := fmt.Sprintf("value-%d\n", i); code != 0 || out != want {
			t.Fatalf("key:%03d after kill -9: exit %d, %q (%s), want %q", i, code, out, errs, want)
		}
	}
	if got := mustCLI(t, n.addr, "get", "counter"); got != "42" {
		t.Fatalf("counter after kill -9 = %q, want 42", got)
	}
	if got := mustCLI(t, n.addr, "digest"); got != digest {
		t.Fatalf("digest after kill -9 = %s, before %s", got, digest)
	}
}

func TestStatusJSON(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0", "--domain", "dc-east")
	mustCLI(t, n.addr, "set", "a", "1")
	mustCLI(t, n.addr, "set", "b", "2")
	var st struct {
		NodeID  string            `json:"node_id"`
		Domain  string            `json:"domain"`
		Keys    int64             `json:"keys"`
		LogLen  int64             `json:"log_len"`
		Applied map[string]uint64 `json:"applied"`
	}
	out := mustCLI(t, n.addr, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	// Three log entries: the two writes and the domain's context-token key.
	if st.Domain != "dc-east" || st.Keys != 2 || st.LogLen != 3 || len(st.NodeID) != 16 || st.Applied[st.NodeID] != 3 {
		t.Fatalf("status = %+v", st)
	}
	if d := mustCLI(t, n.addr, "digest"); len(d) != 64 {
		t.Fatalf("digest %q is not 64 hex digits", d)
	}
}

// TestRequestIDsInLogs: every request's DEBUG line carries a request ID that
// `upu reqid decode` turns back into its time and node.
func TestRequestIDsInLogs(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0", "--log-level", "debug")
	before := time.Now().Add(-time.Second)
	mustCLI(t, n.addr, "set", "traced", "yes")
	st := mustCLI(t, n.addr, "status", "--json")
	var status struct {
		NodeID string `json:"node_id"`
	}
	json.Unmarshal([]byte(st), &status)

	var id string
	deadline := time.Now().Add(5 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		for _, line := range strings.Split(n.output(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["op"] == "set" && rec["req_id"] != nil {
				id, _ = rec["req_id"].(string)
				for _, f := range []string{"node", "domain", "component", "duration_ms"} {
					if _, ok := rec[f]; !ok {
						t.Errorf("request line lacks field %q: %s", f, line)
					}
				}
			}
		}
		if id == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if id == "" {
		t.Fatalf("no set request line with a req_id in the log:\n%s", n.output())
	}
	out := mustCLI(t, n.addr, "reqid", "decode", id)
	if !strings.Contains(out, "node="+status.NodeID[:12]) {
		t.Fatalf("reqid decode %s = %q, want node=%s", id, out, status.NodeID[:12])
	}
	var ts string
	fmt.Sscanf(out, "time=%s", &ts)
	when, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || when.Before(before) || when.After(time.Now().Add(time.Second)) {
		t.Fatalf("reqid decode time %q (%v) not around now", ts, err)
	}
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "upu.yaml")
	data := "domain: from-file\nmax-value-size: 16\n"
	if err := os.WriteFile(cfg, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, filepath.Join(dir, "data"), "127.0.0.1:0", "--config", cfg)
	if _, errs, code := cli(t, n.addr, "set", "k", strings.Repeat("v", 17)); code != 2 || !strings.Contains(errs, "too large") {
		t.Fatalf("17-byte value with max-value-size 16 from the config file: exit %d %q", code, errs)
	}
	if !strings.Contains(mustCLI(t, n.addr, "status"), "from-file") {
		t.Fatal("domain from the config file not in effect")
	}
	// A wrong config is refused with a clear error before anything starts.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("idle-timeout: 1s\nheartbeat-interval: 5s\n"), 0o644)
	_, errs, code := cli(t, "127.0.0.1:1", "serve", "--config", bad, "--data-dir", filepath.Join(dir, "d2"), "--addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errs, "idle-timeout") {
		t.Fatalf("bad config: exit %d, %q", code, errs)
	}
}
