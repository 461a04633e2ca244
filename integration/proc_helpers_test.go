package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// assertNoDamageInLog fails the test on any sign of damage in a node's log: a line
// at ERROR or above (Badger's own errors arrive at ERROR), any mention of
// corruption or a panic, and any line that is not JSON (a Go runtime crash
// prints its trace as plain text).
func assertNoDamageInLog(t *testing.T, n *node) {
	t.Helper()
	for _, line := range strings.Split(n.output(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("node log has a line that is not JSON: %.300s", line)
			continue
		}
		lower := strings.ToLower(line)
		switch lvl, _ := rec["level"].(string); {
		case lvl == "error" || lvl == "fatal" || lvl == "panic":
			t.Errorf("node log has a %s line: %.500s", lvl, line)
		case strings.Contains(lower, "corrupt") || strings.Contains(lower, "panic"):
			t.Errorf("node log reports damage: %.500s", line)
		}
	}
}

// procStatusKB reads a "Name: N kB" field of /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// procFDCount counts the open file descriptors of a process.
func procFDCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}
