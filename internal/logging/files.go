package logging

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/upu/upu/internal/clock"
)

// File names inside Config.Dir.
const (
	MainFile  = "upu.log"
	ErrorFile = "error.log"
	AuditFile = "audit.log"
)

// fileSink is one rotating log file. It refuses writes after close, which
// lumberjack alone would answer by reopening the file.
type fileSink struct {
	mu     sync.Mutex
	file   *lumberjack.Logger
	closed bool
}

// openSink opens (or creates) dir/name now, so that a bad directory fails
// New rather than every later write.
func openSink(dir, name string, cfg Config) (*fileSink, error) {
	s := &fileSink{file: &lumberjack.Logger{
		Filename:   filepath.Join(dir, name),
		MaxSize:    cfg.MaxSizeMB,
		MaxAge:     cfg.MaxAgeDays,
		MaxBackups: cfg.MaxBackups,
	}}
	if _, err := s.file.Write(nil); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.file.Write(p)
}

// rotateIfWritten rotates the file unless it is empty: an idle log leaves
// no trail of empty backups.
func (s *fileSink) rotateIfWritten() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	info, err := os.Stat(s.file.Filename)
	if err != nil || info.Size() == 0 {
		return err
	}
	return s.file.Rotate()
}

func (s *fileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.file.Close()
}

// rotator rotates files on a timer. It runs as an AfterFunc, so it needs no
// goroutine of its own; stop waits for a rotation in progress.
type rotator struct {
	mu      sync.Mutex
	timer   clock.Timer
	stopped bool
	every   time.Duration
	files   []*fileSink
	log     *logrus.Entry
}

func startRotator(clk clock.Clock, every time.Duration, files []*fileSink, log *logrus.Entry) *rotator {
	r := &rotator{every: every, files: files, log: log}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = clk.AfterFunc(every, r.rotate)
	return r
}

func (r *rotator) rotate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.rotateIfWritten())
	}
	if err := errors.Join(errs...); err != nil {
		r.log.WithError(err).WithField(FieldEvent, EventLogError).Warn("log rotation failed")
	}
	r.timer.Reset(r.every)
}

func (r *rotator) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.timer.Stop()
}
