package logging

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/confcheck"
)

var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("upu: invalid logging config")
	// ErrUnknownLevel is returned for a level name other than fatal,
	// error, warn, info or debug.
	ErrUnknownLevel = errors.New("upu: unknown log level")
	// ErrClosed is returned by writes to a log file after Close.
	ErrClosed = errors.New("upu: log closed")
)

// Config says where and how a node logs. The zero value of each field
// means its default.
type Config struct {
	// Level is the least severe level written to the main log: fatal,
	// error, warn, info or debug. Default info.
	Level string
	// Format is "text" (logfmt, the default) or "json".
	Format string
	// Dir holds upu.log, error.log and audit.log; it is created if missing.
	// Empty means no files: everything goes to stderr.
	Dir string
	// Quiet, with Dir set, keeps the main log off stderr: the files alone
	// have it. Without Dir it is refused, since nothing would be logged.
	Quiet bool
	// MaxSizeMB is the size in megabytes past which a file is rotated.
	// Default 100.
	MaxSizeMB int
	// RotateEvery rotates each file that is not empty at this interval,
	// so that one file covers a bounded stretch of time. Default 24h.
	RotateEvery time.Duration
	// MaxAgeDays is how long rotated files are kept. Default 30.
	MaxAgeDays int
	// MaxBackups is how many rotated files are kept per log. Each log takes
	// at most (MaxBackups+1)*MaxSizeMB of disk. Default 20.
	MaxBackups int
	// SlowThreshold is the duration at which Slow logs an operation at
	// warn. Default 100ms.
	SlowThreshold time.Duration
}

// DefaultConfig returns the configuration used for zero fields.
func DefaultConfig() Config {
	return Config{
		Level:         "info",
		Format:        FormatText,
		MaxSizeMB:     100,
		RotateEvery:   24 * time.Hour,
		MaxAgeDays:    30,
		MaxBackups:    20,
		SlowThreshold: 100 * time.Millisecond,
	}
}

// Formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Validate reports every problem with c in one error wrapping
// ErrInvalidConfig. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var l confcheck.List
	if c.Level != "" {
		if _, err := parseLevel(c.Level); err != nil {
			l.Add("Level", c.Level, levelChoice)
		}
	}
	switch c.Format {
	case "", FormatText, FormatJSON:
	default:
		l.Add("Format", c.Format, fmt.Sprintf("want %q or %q", FormatText, FormatJSON))
	}
	for _, f := range []struct {
		name  string
		value int64
		show  any
	}{
		{"MaxSizeMB", int64(c.MaxSizeMB), c.MaxSizeMB},
		{"MaxAgeDays", int64(c.MaxAgeDays), c.MaxAgeDays},
		{"MaxBackups", int64(c.MaxBackups), c.MaxBackups},
		{"RotateEvery", int64(c.RotateEvery), c.RotateEvery},
		{"SlowThreshold", int64(c.SlowThreshold), c.SlowThreshold},
	} {
		if f.value < 0 {
			l.Add(f.name, f.show, "must not be negative")
		}
	}
	if c.Quiet && c.Dir == "" {
		l.Add("Quiet", c.Quiet, "needs Dir: without log files nothing would be logged")
	}
	return l.Err(ErrInvalidConfig)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Level == "" {
		c.Level = d.Level
	}
	if c.Format == "" {
		c.Format = d.Format
	}
	if c.MaxSizeMB == 0 {
		c.MaxSizeMB = d.MaxSizeMB
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = d.RotateEvery
	}
	if c.MaxAgeDays == 0 {
		c.MaxAgeDays = d.MaxAgeDays
	}
	if c.MaxBackups == 0 {
		c.MaxBackups = d.MaxBackups
	}
	if c.SlowThreshold == 0 {
		c.SlowThreshold = d.SlowThreshold
	}
	return c
}

// parseLevel reads one of UPU's five level names, in any case; "warning"
// is accepted because that is how entries print it.
const levelChoice = "want fatal, error, warn, info or debug"

func parseLevel(name string) (logrus.Level, error) {
	switch strings.ToLower(name) {
	case "fatal":
		return logrus.FatalLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	case "warn", "warning":
		return logrus.WarnLevel, nil
	case "info":
		return logrus.InfoLevel, nil
	case "debug":
		return logrus.DebugLevel, nil
	}
	return 0, fmt.Errorf("%w %q: %s", ErrUnknownLevel, name, levelChoice)
}

func levelName(l logrus.Level) string {
	if l == logrus.WarnLevel {
		return "warn"
	}
	return l.String()
}
