package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors: every mistake on the command line is one stderr line
// that says what was wrong and, where one is close, what was meant; exit
// status 2; never a page of help, and nothing is contacted or opened.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args string
		want string // the whole stderr line after "upu: "
	}{
		{"frob", `usage: unknown command "frob" for "upu"; 'upu --help' lists the commands`},
		{"stauts", `usage: unknown command "stauts" for "upu" (did you mean "status"?); 'upu --help' lists the commands`},
		{"reqid frob", `usage: unknown command "frob" for "upu reqid"; 'upu reqid --help' lists the commands`},
		{"reqid decode", `usage: upu reqid decode ID`},
		{"get k --bogus", `usage: unknown flag --bogus for "upu get"; 'upu get --help' lists the flags`},
		{"get k --scop up", `usage: unknown flag --scop for "upu get" (did you mean "--scope"?); 'upu get --help' lists the flags`},
		{"get k --scope", `usage: --scope needs a value`},
		{"set k v --ttl 5", `usage: --ttl "5": a duration needs a unit, e.g. 5s, 250ms, 1m30s`},
		{"serve --sync-interval 5", `usage: --sync-interval "5": a duration needs a unit, e.g. 5s, 250ms, 1m30s`},
		{"serve --max-conns many", `usage: --max-conns "many": want a whole number, e.g. 1024`},
		{"completion tcsh", `usage: completion for "tcsh": want bash, zsh or fish`},
		{"cascade set-parent", `usage: upu cascade set-parent DOMAIN HOST:PORT[,HOST:PORT...]`},
		{"cascade set-parent region", `usage: upu cascade set-parent DOMAIN HOST:PORT[,HOST:PORT...]`},
		{"cascade set-parent region 10.0.0.1", `usage: upu cascade set-parent: seed "10.0.0.1" is not HOST:PORT (e.g. 10.0.0.1:7700; several are joined by commas)`},
		{"cascade set-parent region 10.0.0.1:7400,:7400", `usage: upu cascade set-parent: seed ":7400" is not HOST:PORT (e.g. 10.0.0.1:7700; several are joined by commas)`},
		{"cascade set-parent region 10.0.0.1:http", `usage: upu cascade set-parent: seed "10.0.0.1:http" is not HOST:PORT (e.g. 10.0.0.1:7700; several are joined by commas)`},
		{"cascade clear-parent now", `usage: upu cascade clear-parent takes no arguments`},
		{"cascade statsu", `usage: unknown command "statsu" for "upu cascade" (did you mean "status"?); 'upu cascade --help' lists the commands`},
		{"serve extra-arg", `usage: serve takes no arguments, got "extra-arg"; flags start with --`},
		{"serve --max-value-size 0 --domain=", `invalid config: --domain "": must not be zero or empty; leave it out for the default ("default"); invalid config: --max-value-size "0": must not be zero or empty; leave it out for the default (1048576)`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // a serve that got through would open ./upu-data here
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"upu"}, strings.Fields(tt.args)...), strings.NewReader(""), &stdout, &stderr)
			if code != exitFailure || stderr.String() != "upu: "+tt.want+"\n" || stdout.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stderr %q", code, stdout.String(), stderr.String(), exitFailure, "upu: "+tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "upu-data")); err == nil {
				t.Fatal("a refused serve created its data directory")
			}
		})
	}
}

// TestConfigFileProblems: a config file with mistakes is refused with one
// problem per line of the file, all at once.
func TestConfigFileProblems(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"misspelled and wrong types", "log-levl: debug\ndata_dir: x\nmax-conns: lots\nsync-interval: 5\ndomain: 42\njoin: [a:1, b:2]\n", []string{
			`line 1: unknown key "log-levl" (did you mean "log-level"?)`,
			`line 2: unknown key "data_dir" (did you mean "data-dir"?)`,
			`line 3: max-conns: "lots": want a whole number, e.g. 1024`,
			`line 4: sync-interval: "5": a duration needs a unit, e.g. 5s, 250ms, 1m30s`,
			`line 5: domain: "42": want a string: quote it`,
		}},
		{"syntax", "max-conns: [1\n", []string{`line 1: did not find expected ',' or ']'`}},
		{"not a mapping", "- a\n", []string{`line 1: want a mapping of flag names to values, e.g. "domain: dc1"`}},
		{"twice", "domain: a\ndomain: b\n", []string{`line 2: key "domain" given twice`}},
		{"no nested config", "config: other.yaml\n", []string{`line 1: unknown key "config"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			path := filepath.Join(dir, "upu.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"upu", "serve", "--config", path}, strings.NewReader(""), &stdout, &stderr)
			var want []string
			for _, w := range tt.want {
				want = append(want, "invalid config: config file "+path+": "+w)
			}
			if wantLine := "upu: " + strings.Join(want, "; ") + "\n"; code != exitFailure || stderr.String() != wantLine {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), exitFailure, wantLine)
			}
		})
	}
}

// TestCompletion: a script is printed for each shell. The candidates the
// scripts ask for are tested on the built binary (integration), since
// urfave/cli reads them from os.Args.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "complete -o bashdefault", "zsh": "compdef _upu upu", "fish": "complete -c upu"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"upu", "completion", shell}, strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), marker) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, code, stderr.String(), marker)
		}
	}
}
