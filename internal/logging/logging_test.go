package logging

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
)

const (
	testNode   = "0123456789abcdef"
	testDomain = "dc1"
)

// syncBuffer stands in for stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return splitLines(b.buf.String())
}

func splitLines(s string) []string {
	return slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return l == "" })
}

type fixture struct {
	log    *Logger
	dir    string
	stderr *syncBuffer
	clock  *clock.Fake
}

// newFixture makes a logger writing files into a fresh directory, with a
// fake clock driving rotation.
func newFixture(t *testing.T, cfg Config) fixture {
	t.Helper()
	f := fixture{dir: t.TempDir(), stderr: &syncBuffer{}, clock: clock.NewFake(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))}
	cfg.Dir = f.dir
	l, err := newLogger(cfg, testNode, testDomain, f.stderr, f.clock)
	if err != nil {
		t.Fatalf("newLogger(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.log = l
	return f
}

func (f fixture) lines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(string(b))
}

// parseLogfmt reads one text entry into its fields.
func parseLogfmt(t *testing.T, line string) (keys []string, fields map[string]string) {
	t.Helper()
	fields = map[string]string{}
	for rest := line; rest != ""; {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			t.Fatalf("no '=' in %q of line %q", rest, line)
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			quoted, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad quoting in %q: %v", line, err)
			}
			val, _ = strconv.Unquote(quoted)
			rest = rest[len(quoted):]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		rest = strings.TrimPrefix(rest, " ")
		keys = append(keys, key)
		fields[key] = val
	}
	return keys, fields
}

// messages returns the msg field of each text line.
func messages(t *testing.T, lines []string) []string {
	t.Helper()
	var msgs []string
	for _, l := range lines {
		_, f := parseLogfmt(t, l)
		msgs = append(msgs, f["msg"])
	}
	return msgs
}

func logAtEveryLevel(l *Logger) {
	e := l.Component("test")
	e.Debug("d")
	e.Info("i")
	e.Warn("w")
	e.Error("e")
}

func TestLevelGating(t *testing.T) {
	tests := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"", []string{"i", "w", "e"}}, // default info
		{"info", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"WARNING", []string{"w", "e"}},
		{"error", []string{"e"}},
		{"fatal", nil},
	}
	for _, tc := range tests {
		t.Run(tc.level, func(t *testing.T) {
			f := newFixture(t, Config{Level: tc.level})
			logAtEveryLevel(f.log)
			if got := messages(t, f.lines(t, MainFile)); !slices.Equal(got, tc.want) {
				t.Fatalf("level %q wrote %v, want %v", tc.level, got, tc.want)
			}
		})
	}
}

func TestSetLevelAtRunTime(t *testing.T) {
	f := newFixture(t, Config{})
	e := f.log.Component("test")
	if got := f.log.Level(); got != "info" {
		t.Fatalf("Level() = %q, want info", got)
	}
	e.Debug("hidden")
	if err := f.log.SetLevel("debug"); err != nil {
		t.Fatal(err)
	}
	e.Debug("shown") // an entry made before the change follows it
	if got := f.log.Level(); got != "debug" {
		t.Fatalf("Level() = %q, want debug", got)
	}
	if err := f.log.SetLevel("warning"); err != nil || f.log.Level() != "warn" {
		t.Fatalf("SetLevel(warning) = %v, Level() = %q; want nil, warn", err, f.log.Level())
	}
	if err := f.log.SetLevel("loud"); !errors.Is(err, ErrUnknownLevel) {
		t.Fatalf("SetLevel(loud) = %v, want ErrUnknownLevel", err)
	}
	if got := f.log.Level(); got != "warn" {
		t.Fatalf("a rejected SetLevel changed the level to %q", got)
	}
	if got := messages(t, f.lines(t, MainFile)); !slices.Equal(got, []string{"shown"}) {
		t.Fatalf("main log has %v, want [shown]", got)
	}
}

// TestSetLevelConcurrently is for the race detector.
func TestSetLevelConcurrently(t *testing.T) {
	f := newFixture(t, Config{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				logAtEveryLevel(f.log)
				f.log.Slow(f.log.Component("test"), "op", time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			_ = f.log.SetLevel([]string{"debug", "error"}[i%2])
			_ = f.log.SetSlowThreshold(time.Duration(i+1) * time.Millisecond)
			_ = f.log.Level()
		}
	})
	wg.Wait()
	if len(f.lines(t, MainFile)) == 0 {
		t.Fatal("nothing logged")
	}
}

func TestErrorFileGetsWarnAndAbove(t *testing.T) {
	f := newFixture(t, Config{Level: "debug", Quiet: true})
	f.log.main.ExitFunc = func(int) {} // let Fatal return
	logAtEveryLevel(f.log)
	f.log.Component("test").Fatal("f")

	if got := messages(t, f.lines(t, ErrorFile)); !slices.Equal(got, []string{"w", "e", "f"}) {
		t.Fatalf("error file has %v, want [w e f]", got)
	}
	if got := messages(t, f.lines(t, MainFile)); !slices.Equal(got, []string{"d", "i", "w", "e", "f"}) {
		t.Fatalf("main file has %v, want every entry", got)
	}
	if len(f.stderr.lines()) != 0 {
		t.Fatalf("stderr got %v with Config.Quiet", f.stderr.lines())
	}
}

type parent struct {
	Domain string   `json:"domain"`
	Addrs  []string `json:"addrs"`
}

func TestAuditText(t *testing.T) {
	f := newFixture(t, Config{Level: "fatal"}) // audit ignores the level
	f.log.Audit("cli", "log-level", "info", "debug", nil)
	f.log.Audit("admin-token", "cascade.set-parent", nil,
		parent{Domain: "eu", Addrs: []string{"10.0.0.1:7700"}}, logrus.Fields{FieldReqID: "r1"})

	lines := f.lines(t, AuditFile)
	if len(lines) != 2 {
		t.Fatalf("audit file has %d lines, want 2: %q", len(lines), lines)
	}
	keys, _ := parseLogfmt(t, lines[0])
	if want := []string{"time", "level", "msg", FieldNode, FieldDomain, FieldActor, FieldAction, FieldBefore, FieldAfter}; !slices.Equal(keys, want) {
		t.Errorf("audit keys %v, want %v", keys, want)
	}
	tests := []map[string]string{
		{FieldActor: "cli", FieldAction: "log-level", FieldBefore: "info", FieldAfter: "debug"},
		{FieldActor: "admin-token", FieldAction: "cascade.set-parent", FieldBefore: "null",
			FieldAfter: `{"domain":"eu","addrs":["10.0.0.1:7700"]}`, FieldReqID: "r1"},
	}
	for i, want := range tests {
		_, got := parseLogfmt(t, lines[i])
		want[FieldNode], want[FieldDomain], want["msg"], want["level"] = testNode, testDomain, "audit", "info"
		for k, v := range want {
			if got[k] != v {
				t.Errorf("line %d: %s = %q, want %q (line %q)", i, k, got[k], v, lines[i])
			}
		}
	}
	if main := f.lines(t, MainFile); len(main) != 0 {
		t.Fatalf("audit entries reached the main log: %q", main)
	}
}

func TestAuditJSON(t *testing.T) {
	f := newFixture(t, Config{Format: FormatJSON, Level: "error"})
	before := parent{Domain: "eu", Addrs: []string{"a:1"}}
	f.log.Audit("cli", "cascade.set-parent", before, parent{Domain: "us"}, nil)

	lines := f.lines(t, AuditFile)
	if len(lines) != 1 {
		t.Fatalf("audit file has %d lines, want 1", len(lines))
	}
	var got struct {
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Before parent `json:"before"`
		After  parent `json:"after"`
		Node   string `json:"node"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("audit line %q: %v", lines[0], err)
	}
	if got.Actor != "cli" || got.Action != "cascade.set-parent" || got.Node != testNode ||
		got.Before.Domain != "eu" || !slices.Equal(got.Before.Addrs, before.Addrs) || got.After.Domain != "us" {
		t.Fatalf("audit entry decoded to %+v", got)
	}
}

func TestFixedFieldsAndOrder(t *testing.T) {
	f := newFixture(t, Config{})
	f.log.Component("store").WithFields(logrus.Fields{
		"zeta":          1,
		FieldOp:         "set",
		FieldReqID:      "0190a1b2c3d40123456789ab00000001",
		FieldKey:        "greeting",
		FieldDuration:   Millis(1500 * time.Microsecond),
		FieldError:      errors.New("disk full"),
		FieldRemote:     "127.0.0.1:5000",
		"needs quoting": "a b",
	}).Error("write failed")

	lines := f.lines(t, MainFile)
	if len(lines) != 1 {
		t.Fatalf("main log has %d lines, want 1", len(lines))
	}
	keys, fields := parseLogfmt(t, lines[0])
	wantKeys := []string{"time", "level", "msg", FieldNode, FieldDomain, FieldComponent, FieldReqID, FieldOp, FieldDuration,
		FieldError, FieldKey, "needs quoting", FieldRemote, "zeta"}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys %v, want %v", keys, wantKeys)
	}
	want := map[string]string{
		"level": "error", "msg": "write failed", FieldNode: testNode, FieldDomain: testDomain,
		FieldComponent: "store", FieldOp: "set", FieldDuration: "1.5", FieldError: "disk full", "needs quoting": "a b",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q", k, fields[k], v)
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, fields["time"])
	if err != nil || ts.Location() != time.UTC {
		t.Errorf("time %q: %v, want RFC 3339 in UTC", fields["time"], err)
	}
	if FieldError != logrus.ErrorKey {
		t.Errorf("FieldError %q differs from logrus.ErrorKey %q, which WithError uses", FieldError, logrus.ErrorKey)
	}
}

func TestJSONFormatParses(t *testing.T) {
	f := newFixture(t, Config{Format: FormatJSON, Level: "debug"})
	e := f.log.Component("protocol").WithField(FieldReqID, "r1")
	e.Debug("step one")
	e.WithError(errors.New("boom")).Warn(`quote " and newline` + "\n")
	f.log.Slow(f.log.Component("protocol").WithFields(logrus.Fields{FieldKey: "k", FieldReqID: "r1"}), "get", 250*time.Millisecond)

	lines := f.lines(t, MainFile)
	if len(lines) != 3 {
		t.Fatalf("main log has %d lines, want 3: %q", len(lines), lines)
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		for _, k := range []string{"time", "level", "msg", FieldNode, FieldDomain, FieldComponent, FieldReqID} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks %s", line, k)
			}
		}
	}
	var slow map[string]any
	_ = json.Unmarshal([]byte(lines[2]), &slow)
	if slow[FieldDuration] != 250.0 || slow[FieldThreshold] != 100.0 || slow["level"] != "warning" || slow[FieldOp] != "get" {
		t.Fatalf("slow entry %v: want duration_ms 250, threshold_ms 100 as numbers, level warning, op get", slow)
	}
}

func TestSlow(t *testing.T) {
	tests := []struct {
		name      string
		level     string
		threshold time.Duration // 0: default 100ms
		d         time.Duration
		wantLevel string // "" for nothing written
	}{
		{"under threshold at info", "info", 0, 99 * time.Millisecond, ""},
		{"at threshold", "info", 0, 100 * time.Millisecond, "warning"},
		{"over threshold", "warn", 0, time.Second, "warning"},
		{"under threshold at debug", "debug", 0, time.Millisecond, "debug"},
		{"lowered threshold", "info", 10 * time.Millisecond, 20 * time.Millisecond, "warning"},
		{"raised threshold", "info", time.Second, 500 * time.Millisecond, ""},
		{"slow but level error", "error", 0, time.Second, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{Level: tc.level})
			if tc.threshold != 0 {
				if err := f.log.SetSlowThreshold(tc.threshold); err != nil {
					t.Fatal(err)
				}
			}
			f.log.Slow(f.log.Component("store").WithField(FieldReqID, "r9"), "commit", tc.d)
			lines := f.lines(t, MainFile)
			if tc.wantLevel == "" {
				if len(lines) != 0 {
					t.Fatalf("wrote %q, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("wrote %d lines, want 1", len(lines))
			}
			_, got := parseLogfmt(t, lines[0])
			threshold := cmpOr(tc.threshold, 100*time.Millisecond)
			want := map[string]string{"level": tc.wantLevel, FieldComponent: "store", FieldOp: "commit",
				FieldReqID: "r9", FieldDuration: Millis(tc.d).String()}
			if tc.wantLevel == "warning" {
				want[FieldThreshold] = Millis(threshold).String()
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if got, want := f.log.SlowEnabled(tc.d), true; got != want {
				t.Errorf("SlowEnabled(%v) = %v though Slow logged", tc.d, got)
			}
		})
	}
}

func cmpOr(d, fallback time.Duration) time.Duration {
	if d == 0 {
		return fallback
	}
	return d
}

func TestSlowThresholdSetting(t *testing.T) {
	l := Discard()
	if got := l.SlowThreshold(); got != 100*time.Millisecond {
		t.Fatalf("default SlowThreshold = %v, want 100ms", got)
	}
	for _, bad := range []time.Duration{0, -time.Second} {
		if err := l.SetSlowThreshold(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("SetSlowThreshold(%v) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	if err := l.SetSlowThreshold(5 * time.Second); err != nil || l.SlowThreshold() != 5*time.Second {
		t.Fatalf("SetSlowThreshold(5s) = %v, SlowThreshold() = %v", err, l.SlowThreshold())
	}
	if l.SlowEnabled(time.Second) || !l.SlowEnabled(5*time.Second) {
		t.Fatal("SlowEnabled disagrees with the threshold at info level")
	}
}

func TestSlowUnderThresholdDoesNotAllocate(t *testing.T) {
	l := Discard()
	e := l.Component("protocol")
	if n := testing.AllocsPerRun(100, func() { l.Slow(e, "get", time.Millisecond) }); n != 0 {
		t.Fatalf("Slow under the threshold at info allocates %v times, want 0", n)
	}
}

func TestMillis(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{time.Nanosecond, "0.000001"},
		{1500 * time.Microsecond, "1.5"},
		{250 * time.Millisecond, "250"},
		{time.Hour, "3600000"},
		{-2 * time.Millisecond, "-2"},
	}
	for _, tc := range tests {
		if got := Millis(tc.d).String(); got != tc.want {
			t.Errorf("Millis(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if b, _ := json.Marshal(Millis(tc.d)); string(b) != tc.want {
			t.Errorf("json of Millis(%v) = %s, want %s", tc.d, b, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; nil means valid
	}{
		{"zero", Config{}, nil},
		{"default", DefaultConfig(), nil},
		{"every level", Config{Level: "Debug"}, nil},
		{"json", Config{Format: "json", Dir: "/var/log/upu", Quiet: true}, nil},
		{"quiet without files", Config{Quiet: true}, []string{"Quiet"}},
		{"unknown level", Config{Level: "trace"}, []string{`"trace"`}},
		{"unknown format", Config{Format: "xml"}, []string{`Format="xml"`}},
		{"negative size", Config{MaxSizeMB: -1}, []string{"MaxSizeMB"}},
		{"negative age", Config{MaxAgeDays: -1}, []string{"MaxAgeDays"}},
		{"negative backups", Config{MaxBackups: -1}, []string{"MaxBackups"}},
		{"negative rotation", Config{RotateEvery: -time.Hour}, []string{"RotateEvery"}},
		{"negative threshold", Config{SlowThreshold: -time.Second}, []string{"SlowThreshold"}},
		{"every problem at once", Config{Level: "loud", Format: "xml", MaxSizeMB: -1},
			[]string{`"loud"`, `"xml"`, "MaxSizeMB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
	if _, err := New(Config{Level: "loud"}, "n", "d"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a bad config = %v, want ErrInvalidConfig", err)
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t, Config{RotateEvery: time.Hour})
	f.log.Component("test").Info("first")
	backups := func() []string {
		m, err := filepath.Glob(filepath.Join(f.dir, "upu-*.log"))
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(m, func(p string) bool {
			base := filepath.Base(p)
			return base == ErrorFile || base == AuditFile
		})
	}

	f.clock.Advance(time.Hour - time.Nanosecond)
	if b := backups(); len(b) != 0 {
		t.Fatalf("rotated early: %v", b)
	}
	f.clock.Advance(time.Nanosecond)
	b := backups()
	if len(b) != 1 {
		t.Fatalf("after an hour: backups %v, want one of upu.log only (empty files stay)", b)
	}
	old, err := os.ReadFile(b[0])
	if err != nil || !strings.Contains(string(old), "msg=first") {
		t.Fatalf("backup %s holds %q (%v), want the first entry", b[0], old, err)
	}
	if lines := f.lines(t, MainFile); len(lines) != 0 {
		t.Fatalf("upu.log after rotation has %q, want empty", lines)
	}

	f.clock.Advance(time.Hour) // nothing written since: no new backup
	if got := backups(); len(got) != 1 {
		t.Fatalf("an idle hour made backups %v", got)
	}
	f.log.Component("test").Info("second")
	if got := messages(t, f.lines(t, MainFile)); !slices.Equal(got, []string{"second"}) {
		t.Fatalf("upu.log after rotation has %v, want [second]", got)
	}
}

func TestStderrWithoutDir(t *testing.T) {
	stderr := &syncBuffer{}
	l, err := newLogger(Config{}, testNode, testDomain, stderr, clock.Real())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	l.Component("node").Info("started")
	l.Audit("cli", "log-level", "info", "debug", nil)
	if got := messages(t, stderr.lines()); !slices.Equal(got, []string{"started", "audit"}) {
		t.Fatalf("stderr has %v, want [started audit]", got)
	}
}

func TestStderrCopyWithDir(t *testing.T) {
	f := newFixture(t, Config{})
	f.log.Component("node").Error("bad")
	f.log.Audit("cli", "x", 1, 2, nil)
	for name, lines := range map[string][]string{
		"stderr": f.stderr.lines(), MainFile: f.lines(t, MainFile), ErrorFile: f.lines(t, ErrorFile),
	} {
		if got := messages(t, lines); !slices.Equal(got, []string{"bad"}) {
			t.Errorf("%s has %v, want [bad]", name, got)
		}
	}
}

func TestNewFailsOnUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: file}, "n", "d"); err == nil {
		t.Fatal("New with a file as Dir succeeded")
	}
}

func TestCloseStopsFileWrites(t *testing.T) {
	f := newFixture(t, Config{})
	if err := f.log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.log.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.log.files[0].Write([]byte("late\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close = %v, want ErrClosed", err)
	}
	f.clock.Advance(48 * time.Hour) // rotation is stopped too
	if lines := f.lines(t, MainFile); len(lines) != 0 {
		t.Fatalf("main log has %q after Close", lines)
	}
}

func TestStdLogger(t *testing.T) {
	stderr := &syncBuffer{}
	l, err := newLogger(Config{Level: "debug"}, testNode, testDomain, stderr, clock.Real())
	if err != nil {
		t.Fatal(err)
	}
	std := l.StdLogger("gossip")
	std.Print("[DEBUG] memberlist: Stream connection from=127.0.0.1:7946")
	std.Print("[INFO] serf: EventMemberJoin: n2 127.0.0.1")
	std.Print("[WARN] memberlist: Was able to connect to n3 over TCP but UDP probes failed")
	std.Print("[ERR] memberlist: Failed to send ping: connection refused")
	std.Print("2024/05/01 00:00:00 [INFO] serf: with a date")
	std.Print("no tag [at all]")
	std.Print("two\n[WARN] lines")

	want := []struct{ level, msg string }{
		{"debug", "memberlist: Stream connection from=127.0.0.1:7946"},
		{"info", "serf: EventMemberJoin: n2 127.0.0.1"},
		{"warning", "memberlist: Was able to connect to n3 over TCP but UDP probes failed"},
		{"warning", "memberlist: Failed to send ping: connection refused"},
		{"info", "serf: with a date"},
		{"info", "no tag [at all]"},
		{"info", "two"},
		{"warning", "lines"},
	}
	lines := stderr.lines()
	if len(lines) != len(want) {
		t.Fatalf("got %d entries, want %d: %q", len(lines), len(want), lines)
	}
	for i, w := range want {
		_, got := parseLogfmt(t, lines[i])
		if got["level"] != w.level || got["msg"] != w.msg || got[FieldComponent] != "gossip" {
			t.Errorf("entry %d = level %q msg %q component %q; want %q %q gossip",
				i, got["level"], got["msg"], got[FieldComponent], w.level, w.msg)
		}
	}
}

// fakeTB records what NewTest writes.
type fakeTB struct {
	logs     []string
	cleanups []func()
}

func (*fakeTB) Helper() {}
func (tb *fakeTB) Logf(format string, args ...any) {
	tb.logs = append(tb.logs, fmt.Sprintf(format, args...))
}
func (tb *fakeTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }

func TestNewTest(t *testing.T) {
	tb := &fakeTB{}
	l := NewTest(tb)
	l.Component("store").Debug("opened")
	l.Audit("cli", "x", 1, 2, nil)
	if len(tb.logs) != 2 || !strings.Contains(tb.logs[0], "msg=opened") || strings.HasSuffix(tb.logs[0], "\n") ||
		!strings.Contains(tb.logs[1], "msg=audit") {
		t.Fatalf("t.Logf got %q, want the debug entry and the audit entry, one line each", tb.logs)
	}
	for _, f := range tb.cleanups {
		f()
	}
	l.Component("store").Info("after the test")
	if len(tb.logs) != 2 {
		t.Fatalf("an entry after cleanup reached t.Logf: %q", tb.logs[2:])
	}
}

func TestKey(t *testing.T) {
	long := strings.Repeat("k", 100)
	runes := strings.Repeat("é", 40)     // 80 bytes; byte 64 starts a rune
	odd := strings.Repeat("a", 63) + "é" // the cut at 64 would split é
	tests := []struct {
		key  []byte
		want string
	}{
		{nil, ""},
		{[]byte("greeting"), "greeting"},
		{[]byte("user:42 name"), "user:42 name"},
		{[]byte("日本"), "日本"},
		{[]byte{0, 1, 0xff}, "0x0001ff"},
		{[]byte("tab\there"), "0x" + hex.EncodeToString([]byte("tab\there"))},
		{[]byte(long), long[:MaxKeyLen] + "…(100 bytes)"},
		{[]byte(runes), runes[:MaxKeyLen] + "…(80 bytes)"},
		{[]byte(odd), odd[:63] + "…(65 bytes)"},
		{bytes.Repeat([]byte{0xff}, 70), "0x" + strings.Repeat("ff", MaxKeyLen) + "…(70 bytes)"},
	}
	for _, tc := range tests {
		if got := Key(tc.key); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
