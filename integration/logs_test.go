package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readJSONLines reads a JSON log file, one record per line.
func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: a line that is not JSON: %q", path, sc.Text())
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestLogFiles: with --log-dir, a request's DEBUG line in upu.log carries a
// req_id that decodes to today and to this node; a WARN (a join to a member
// that is not there) lands in error.log too, routine lines do not; a
// log-level and a slow-threshold change land in audit.log with before and
// after; stderr still has the log.
func TestLogFiles(t *testing.T) {
	logDir := t.TempDir()
	n := startNode(t, t.TempDir(), "127.0.0.1:0", "--log-dir", logDir, "--log-level", "debug", "--join", freeAddr(t))
	mustCLI(t, n.addr, "set", "traced", "v")
	mustCLI(t, n.addr, "log-level", "info")
	if got := mustCLI(t, n.addr, "slow-threshold", "250ms"); got != "250ms" {
		t.Fatalf("slow-threshold 250ms printed %q", got)
	}

	var nodeID, reqID string
	poll(t, 10*time.Second, "a set request's line and a join warning in the log files", func() bool {
		reqID = ""
		for _, rec := range readJSONLines(t, filepath.Join(logDir, "upu.log")) {
			if rec["msg"] == "node started" {
				nodeID, _ = rec["node"].(string)
			}
			if rec["op"] == "set" && rec["level"] == "debug" {
				reqID, _ = rec["req_id"].(string)
			}
		}
		if reqID == "" {
			return false
		}
		for _, rec := range readJSONLines(t, filepath.Join(logDir, "error.log")) {
			if rec["level"] == "warning" && strings.Contains(fmt.Sprint(rec["msg"]), "join") && rec["event"] == "peer_unreachable" {
				return true
			}
		}
		return false
	})
	for _, rec := range readJSONLines(t, filepath.Join(logDir, "error.log")) {
		if lvl := rec["level"]; lvl != "warning" && lvl != "error" && lvl != "fatal" {
			t.Errorf("error.log has a %v line: %v", lvl, rec)
		}
		if rec["event"] == nil {
			t.Errorf("error.log has a line without an event keyword: %v", rec)
		}
	}
	decoded := mustCLI(t, n.addr, "reqid", "decode", reqID)
	today := time.Now().UTC().Format("2006-01-02")
	if !strings.Contains(decoded, "time="+today) || !strings.Contains(decoded, "node="+nodeID[:8]) {
		t.Fatalf("reqid decode %s = %q, want today (%s) and node %s", reqID, decoded, today, nodeID)
	}

	audited := map[string]bool{}
	for _, rec := range readJSONLines(t, filepath.Join(logDir, "audit.log")) {
		switch {
		case rec["action"] == "log-level" && rec["before"] == "debug" && rec["after"] == "info":
			audited["log-level"] = true
		case rec["action"] == "slow-threshold" && rec["before"] == "100ms" && rec["after"] == "250ms":
			audited["slow-threshold"] = true
		}
	}
	if !audited["log-level"] || !audited["slow-threshold"] {
		t.Fatalf("audit.log lacks the log-level change (debug to info) or the slow-threshold one (100ms to 250ms): %v", readJSONLines(t, filepath.Join(logDir, "audit.log")))
	}
	if !strings.Contains(n.output(), `"node started"`) {
		t.Fatal("stderr lost the log when --log-dir was set without --quiet")
	}
}

// TestLogQuiet: with --quiet the files have the log and stderr has nothing.
func TestLogQuiet(t *testing.T) {
	logDir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
		"--log-dir", logDir, "--quiet", "--log-format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	poll(t, 30*time.Second, "the start-up line in upu.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(logDir, "upu.log"))
		return bytes.Contains(b, []byte(`"node started"`))
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve --quiet exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve --quiet did not stop on SIGTERM")
	}
	if stderr.Len() != 0 {
		t.Fatalf("--quiet wrote to stderr: %q", stderr.String())
	}
}
