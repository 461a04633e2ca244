package logging

import (
	"bytes"
	"io"
	"log"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
)

// TB is the part of testing.TB that NewTest needs.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Cleanup(func())
}

// NewTest returns a logger at debug level for a test of another package,
// writing every entry, audit entries included, through t.Logf, so that a
// failing test shows what the code under test logged. Entries logged after
// the test's cleanup has begun are dropped.
func NewTest(t TB) *Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	l, err := newLogger(Config{Level: "debug"}, "test-node", "test-domain", w, clock.Real())
	if err != nil {
		panic(err) // the config is fixed and valid
	}
	return l
}

// Discard returns a logger that writes nothing, for tests that do not look
// at logs. Its level is info, so entries are still formatted.
func Discard() *Logger {
	l, err := newLogger(Config{}, "", "", io.Discard, clock.Real())
	if err != nil {
		panic(err) // the config is fixed and valid
	}
	return l
}

type testWriter struct {
	mu      sync.Mutex
	t       TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("%s", bytes.TrimSuffix(p, []byte("\n")))
	}
	return len(p), nil
}

// stop runs in the test's cleanup: t.Logf after the test ends panics.
func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// StdLogger returns a standard library logger whose lines become entries
// of component, for libraries that log through *log.Logger (serf and
// memberlist). A leading "[LEVEL]" tag sets the level: TRACE and DEBUG are
// debug, INFO is info, WARN is warn, and ERR and ERROR are warn too: such
// libraries report peers and networks failing there, which by UPU's rules
// may become an error but is not one; the owner of the library logs error
// when the failure reaches a user. Untagged lines are info.
func (l *Logger) StdLogger(component string) *log.Logger {
	return log.New(libraryWriter{l.Component(component)}, "", 0)
}

type libraryWriter struct{ entry *logrus.Entry }

// Write takes whole lines, which is what log.Logger hands it.
func (w libraryWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		level, msg := splitTag(line)
		w.entry.Log(level, string(msg))
	}
	return len(p), nil
}

// splitTag reads the "[LEVEL]" tag of a library's line, skipping any date
// before it.
func splitTag(line []byte) (logrus.Level, []byte) {
	open := bytes.IndexByte(line, '[')
	end := bytes.IndexByte(line, ']')
	if open < 0 || end < open {
		return logrus.InfoLevel, line
	}
	msg := bytes.TrimSpace(line[end+1:])
	switch string(line[open+1 : end]) {
	case "TRACE", "DEBUG":
		return logrus.DebugLevel, msg
	case "INFO":
		return logrus.InfoLevel, msg
	case "WARN", "WARNING", "ERR", "ERROR":
		return logrus.WarnLevel, msg
	}
	return logrus.InfoLevel, line
}
