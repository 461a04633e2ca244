package integration

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevFleetProcess: `upu dev` as a process prints its fleet, a write
// on a leaf through the CLI is read at the root, and SIGINT to its PID
// stops it with exit status 0 within a few seconds, its temporary data
// removed.
func TestDevFleetProcess(t *testing.T) {
	cmd := exec.Command(bin, "dev")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})

	printed := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "Ctrl-C stops the fleet") {
				break
			}
		}
		printed <- lines
	}()
	var lines []string
	select {
	case lines = <-printed:
	case <-time.After(30 * time.Second):
		t.Fatalf("upu dev printed no fleet within 30s; stderr:\n%s", stderr.String())
	}
	addrs, dataDir := devTable(lines)
	if addrs["root"] == "" || addrs["leaf1"] == "" || dataDir == "" {
		t.Fatalf("upu dev printed no root, leaf1 or data directory:\n%s\nstderr:\n%s", strings.Join(lines, "\n"), stderr.String())
	}

	mustCLI(t, addrs["leaf1"], "set", "greeting", "hello")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, code := cli(t, addrs["root"], "get", "greeting")
		if code == 0 && out == "hello\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write on leaf1 not read at root within 10s: exit %d, %q", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("upu dev exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("upu dev did not exit within 10s of SIGINT; stderr:\n%s", stderr.String())
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary data %s is still there after exit: %v", dataDir, err)
	}
}

// devTable reads the binary address of the first node of each domain from
// upu dev's table, and the data directory from the line that names it.
func devTable(lines []string) (addrs map[string]string, dataDir string) {
	addrs = map[string]string{}
	header := -1
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case slices.Equal(f, []string{"DOMAIN", "NODE", "ADDR", "RESP-ADDR", "PARENT"}):
			header = i
		case header >= 0 && len(f) == 5 && addrs[f[0]] == "":
			addrs[f[0]] = f[2]
		case strings.HasPrefix(l, "Data in "):
			dataDir, _, _ = strings.Cut(strings.TrimPrefix(l, "Data in "), " (")
		}
	}
	return addrs, dataDir
}
