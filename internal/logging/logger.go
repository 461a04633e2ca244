package logging

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
)

// Logger is a node's logging: the main log, the error file, the audit log,
// the run-time level and slow threshold. It is safe for concurrent use.
type Logger struct {
	main    *logrus.Logger
	audit   *logrus.Logger
	base    *logrus.Entry // node and domain preset
	auditAt *logrus.Entry // the same, on the audit log
	jsonOut bool
	slow    atomic.Int64 // time.Duration
	files   []*fileSink
	rotator *rotator // nil without files
}

// New returns the logger of node (its ID) in domain, set up by cfg. Node
// and domain are put on every entry; an empty one is left out. Close it
// when the process ends.
func New(cfg Config, node, domain string) (*Logger, error) {
	return newLogger(cfg, node, domain, os.Stderr, clock.Real())
}

func newLogger(cfg Config, node, domain string, stderr io.Writer, clk clock.Clock) (*Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	level, _ := parseLevel(cfg.Level) // validated above
	formatter := newFormatter(cfg.Format)

	l := &Logger{
		main:    newLogrus(formatter, level),
		audit:   newLogrus(formatter, logrus.InfoLevel),
		jsonOut: cfg.Format == FormatJSON,
	}
	l.slow.Store(int64(cfg.SlowThreshold))
	l.main.SetOutput(stderr)
	l.audit.SetOutput(stderr)
	if cfg.Dir != "" {
		if err := l.openFiles(cfg, stderr, formatter); err != nil {
			return nil, err
		}
	}

	fixed := logrus.Fields{}
	if node != "" {
		fixed[FieldNode] = node
	}
	if domain != "" {
		fixed[FieldDomain] = domain
	}
	l.base = l.main.WithFields(fixed)
	l.auditAt = l.audit.WithFields(fixed)

	if cfg.Dir != "" {
		l.rotator = startRotator(clk, cfg.RotateEvery, l.files, l.Component("logging"))
	}
	return l, nil
}

func newLogrus(f logrus.Formatter, level logrus.Level) *logrus.Logger {
	lg := logrus.New()
	lg.SetFormatter(f)
	lg.SetLevel(level)
	return lg
}

func (l *Logger) openFiles(cfg Config, stderr io.Writer, formatter logrus.Formatter) error {
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("upu: log directory: %w", err)
	}
	var sinks [3]*fileSink
	for i, name := range []string{MainFile, ErrorFile, AuditFile} {
		s, err := openSink(cfg.Dir, name, cfg)
		if err != nil {
			_ = l.closeFiles()
			return fmt.Errorf("upu: log file: %w", err)
		}
		sinks[i] = s
		l.files = append(l.files, s)
	}
	mainFile, errorFile, auditFile := sinks[0], sinks[1], sinks[2]

	if !cfg.Quiet {
		// stderr first: a failing file must not silence the terminal.
		l.main.SetOutput(io.MultiWriter(stderr, mainFile))
	} else {
		l.main.SetOutput(mainFile)
	}
	l.main.AddHook(errorHook{formatter: formatter, out: errorFile})
	l.audit.SetOutput(auditFile)
	return nil
}

// Component returns an entry with node, domain and component set. Make it
// once per component and keep it; add req_id and the like per call.
func (l *Logger) Component(name string) *logrus.Entry {
	return l.base.WithField(FieldComponent, name)
}

// SetLevel changes the level of the main log while the node runs. The
// audit log is not affected.
func (l *Logger) SetLevel(name string) error {
	level, err := parseLevel(name)
	if err != nil {
		return err
	}
	l.main.SetLevel(level)
	return nil
}

// Level returns the main log's level: fatal, error, warn, info or debug.
func (l *Logger) Level() string { return levelName(l.main.GetLevel()) }

// SetSlowThreshold changes the duration at which Slow logs at warn. It
// must be positive.
func (l *Logger) SetSlowThreshold(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: slow threshold %v is not positive", ErrInvalidConfig, d)
	}
	l.slow.Store(int64(d))
	return nil
}

// SlowThreshold returns the current slow threshold.
func (l *Logger) SlowThreshold() time.Duration { return time.Duration(l.slow.Load()) }

// SlowEnabled reports whether Slow would write an entry for an operation
// that took d. Hot paths check it before building fields, which costs
// allocations even when nothing is written.
func (l *Logger) SlowEnabled(d time.Duration) bool {
	return d >= l.SlowThreshold() || l.main.IsLevelEnabled(logrus.DebugLevel)
}

// Slow logs that op took d on e, an entry of this logger (a component's,
// with req_id and the like added): at warn, with the threshold, when d
// reaches the slow threshold; otherwise at debug.
func (l *Logger) Slow(e *logrus.Entry, op string, d time.Duration) {
	threshold := l.SlowThreshold()
	slow := d >= threshold
	if !slow && !e.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	e = e.WithFields(logrus.Fields{FieldOp: op, FieldDuration: Millis(d)})
	if slow {
		e.WithField(FieldThreshold, Millis(threshold)).WithField(FieldEvent, EventSlow).Warn("slow operation")
		return
	}
	e.Debug("operation done")
}

// Audit records an admin operation in the audit log (stderr without a
// Dir), whatever the level: who did it, what, and the value before and
// after. In JSON, before and after are nested as JSON; in text, a string
// is written as is and any other value as JSON.
func (l *Logger) Audit(actor, action string, before, after any, fields logrus.Fields) {
	l.auditAt.WithFields(fields).WithFields(logrus.Fields{
		FieldActor:  actor,
		FieldAction: action,
		FieldBefore: l.auditValue(before),
		FieldAfter:  l.auditValue(after),
	}).Info("audit")
}

func (l *Logger) auditValue(v any) any {
	if s, ok := v.(string); ok && !l.jsonOut {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	if l.jsonOut {
		return json.RawMessage(b)
	}
	return string(b)
}

// Close stops rotation and closes the files. Entries logged after Close
// still reach stderr, if configured, but not the files.
func (l *Logger) Close() error {
	if l.rotator != nil {
		l.rotator.stop()
	}
	return l.closeFiles()
}

func (l *Logger) closeFiles() error {
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// errorHook copies warn, error and fatal entries to the error file: what
// may need someone, without the routine.
type errorHook struct {
	formatter logrus.Formatter
	out       io.Writer
}

func (errorHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h errorHook) Fire(e *logrus.Entry) error {
	b, err := h.formatter.Format(e)
	if err != nil {
		return err
	}
	_, err = h.out.Write(b)
	return err
}
