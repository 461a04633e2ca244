package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upu/upu/client"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/node"
)

// startBackupNode runs a standalone node on loopback holding n keys, with
// a client and an admin token.
func startBackupNode(t *testing.T, n int) string {
	t.Helper()
	cfg := node.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Standalone: true, Domain: "eu", ClientToken: "c", AdminToken: "a"}
	cfg.Log = logging.DefaultConfig()
	cfg.Log.Level = "warn"
	nd, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		nd.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	addr := nd.Addr().String()
	ccfg := client.DefaultConfig()
	ccfg.Nodes, ccfg.Token = []string{addr}, "c"
	cl, err := client.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		if _, err := cl.Set(context.Background(), fmt.Appendf(nil, "key-%04d", i), fmt.Appendf(nil, "value-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return addr
}

// upuAt runs the command line against the node at addr.
func upuAt(addr string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	var out, errs bytes.Buffer
	code = run(context.Background(), append([]string{"upu", "--nodes", addr}, args...), bytes.NewReader(stdin), &out, &errs)
	return out.String(), errs.String(), code
}

// summaryField returns the value of a "name:  value" line.
func summaryField(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestBackupAndRestoreCommands(t *testing.T) {
	addr := startBackupNode(t, 500)
	digest, _, code := upuAt(addr, nil, "--token", "c", "digest")
	digest = strings.TrimSpace(digest)
	if code != 0 || digest == "" {
		t.Fatalf("digest: exit %d, %q", code, digest)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "eu.upu")

	out, errs, code := upuAt(addr, nil, "--token", "a", "backup", file)
	if code != 0 {
		t.Fatalf("backup: exit %d, stderr %q", code, errs)
	}
	if got := summaryField(out, "digest"); got != digest || summaryField(out, "keys") != "500" || summaryField(out, "domain") != "eu" {
		t.Fatalf("backup printed\n%s\nwant digest %s over 500 keys of domain eu", out, digest)
	}
	if errs != "" {
		t.Fatalf("a backup done within a second printed progress %q", errs)
	}
	if _, err := os.Stat(file + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup left %s.tmp behind (%v)", file, err)
	}

	// The same backup through standard output is the same data, and
	// restores from standard input.
	piped, errs, code := upuAt(addr, nil, "--token", "a", "backup", "-", "--json")
	var sum backupSummary
	if code != 0 || json.Unmarshal([]byte(errs), &sum) != nil || sum.Digest != digest || sum.Keys != 500 || sum.Bytes != int64(len(piped)) {
		t.Fatalf("backup - --json: exit %d, %d bytes on stdout, stderr %q", code, len(piped), errs)
	}

	tests := []struct {
		name  string
		stdin []byte
		args  []string
	}{
		{name: "from a file", args: []string{"restore", file, "--data-dir"}},
		{name: "from standard input", stdin: []byte(piped), args: []string{"restore", "-", "--data-dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "restored")
			out, errs, code := upuAt(addr, tt.stdin, append(tt.args, dataDir, "--json")...)
			var got backupSummary
			if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
				t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if got.Digest != digest || got.Keys != 500 || got.DataDir != dataDir || got.NodeID == got.SourceNodeID {
				t.Fatalf("restore printed %+v, want digest %s over 500 keys in %s under a new node ID", got, digest, dataDir)
			}
			// A second restore into the same directory is refused.
			_, errs, code = upuAt(addr, tt.stdin, append(tt.args, dataDir)...)
			if code != exitFailure || !strings.Contains(errs, "data directory not empty") {
				t.Fatalf("restore into a used directory: exit %d, stderr %q", code, errs)
			}
		})
	}
}

func TestBackupCommandRefusals(t *testing.T) {
	addr := startBackupNode(t, 1)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.upu")
	if err := os.WriteFile(corrupt, []byte("UPUBACK\nnot really"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "the client token", args: []string{"--token", "c", "backup", filepath.Join(dir, "b.upu")}, wantErr: "unauthorized"},
		{name: "no file", args: []string{"--token", "a", "backup"}, wantErr: "usage"},
		{name: "negative max-time", args: []string{"--token", "a", "backup", "--max-time", "-1s", "f"}, wantErr: "--max-time"},
		{name: "restore without data-dir", args: []string{"restore", corrupt}, wantErr: "data-dir"},
		{name: "restore of a corrupt file", args: []string{"restore", corrupt, "--data-dir", filepath.Join(dir, "r")}, wantErr: "bad backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := upuAt(addr, nil, tt.args...)
			if code != exitFailure || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d naming %q", code, errs, exitFailure, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "b.upu.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused backup left its temporary file (%v)", err)
	}
}

// TestProgressLines: off a terminal, progress is a plain line at most once
// a second, and nothing in the first.
func TestProgressLines(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	var out bytes.Buffer
	p := newProgress("backup", &out, clk)
	const total = 40 << 20
	for _, step := range []struct {
		after time.Duration
		done  int64
	}{{0, 1 << 20}, {500 * time.Millisecond, 2 << 20}, {500 * time.Millisecond, 16 << 20}, {200 * time.Millisecond, 20 << 20}, {1300 * time.Millisecond, 30 << 20}} {
		clk.Advance(step.after)
		p.update(step.done, total)
	}
	p.finish()
	want := "backup: 16.0 MiB of 40.0 MiB, 40%\nbackup: 30.0 MiB of 40.0 MiB, 75%\n"
	if out.String() != want {
		t.Fatalf("progress printed %q, want %q", out.String(), want)
	}
}

// TestBackupSummary pins the text the backup and restore commands print.
func TestBackupSummary(t *testing.T) {
	s := backupSummary{
		File: "eu.upu", DataDir: "/var/lib/upu", NodeID: "00000000000000b2", SourceNodeID: "00000000000000a1", Domain: "eu",
		Created: time.UnixMilli(1_700_000_000_123).UTC(), Keys: 3, Bytes: 3 << 20, Digest: "d1",
	}
	var out bytes.Buffer
	if err := printBackup(&out, false, s); err != nil {
		t.Fatal(err)
	}
	want := "file:     eu.upu\ndata-dir: /var/lib/upu\nnode:     00000000000000b2\nsource:   00000000000000a1\ndomain:   eu\n" +
		"created:  2023-11-14T22:13:20.123Z\nkeys:     3\nbytes:    3145728 (3.0 MiB)\ndigest:   d1\n"
	if out.String() != want {
		t.Fatalf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
}
