package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the project's root, where deploy/ and the Dockerfile are.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// checkServe runs `upu serve ARGS --check`: the flags and any config file
// must pass every check a start would make.
func checkServe(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, append(append([]string{}, args...), "--check")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "config ok" {
		t.Fatalf("upu %s --check: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestDeployFiles: the example node config, each compose service's command
// and the systemd unit's command line are accepted by upu as they stand.
func TestDeployFiles(t *testing.T) {
	root := repoRoot(t)
	checkServe(t, "serve", "--config", filepath.Join(root, "deploy", "upu.yaml"))

	b, err := os.ReadFile(filepath.Join(root, "deploy", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(compose.Services) != 3 {
		t.Fatalf("docker-compose.yml has %d services, want a domain of 3", len(compose.Services))
	}
	for name, svc := range compose.Services {
		if len(svc.Command) == 0 || svc.Command[0] != "serve" {
			t.Fatalf("service %s: command %v does not serve", name, svc.Command)
		}
		checkServe(t, svc.Command...)
	}

	unit, err := os.ReadFile(filepath.Join(root, "deploy", "upu.service"))
	if err != nil {
		t.Fatal(err)
	}
	var execStart string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = v
		}
	}
	fields := strings.Fields(execStart)
	if len(fields) < 2 || fields[1] != "serve" {
		t.Fatalf("upu.service: ExecStart=%q does not serve", execStart)
	}
	// The unit's own config path is /etc/upu; the example config stands in.
	args := fields[1:]
	for i, a := range args {
		if a == "/etc/upu/upu.yaml" {
			args[i] = filepath.Join(root, "deploy", "upu.yaml")
		}
	}
	checkServe(t, args...)
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointing at the built binary.
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (package systemd): the unit is not verified here")
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "upu.service"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "upu.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/upu", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerImage builds the image and checks the compose file, where a
// Docker engine (and the compose plugin) is there to do it.
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building an image takes minutes")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the Dockerfile is not built here")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine answers (docker info: %v: %s): the Dockerfile is not built here", err, lastLine(out))
	}
	root := repoRoot(t)
	if out, err := exec.Command("docker", "compose", "-f", filepath.Join(root, "deploy", "docker-compose.yml"), "config", "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
	build := exec.Command("docker", "build", "-t", "upu:test", root)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	if out, err := exec.Command("docker", "run", "--rm", "upu:test", "serve", "--check").CombinedOutput(); err != nil || !strings.Contains(string(out), "config ok") {
		t.Fatalf("docker run upu:test serve --check: %v\n%s", err, out)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
