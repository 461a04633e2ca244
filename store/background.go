package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// syncer fsyncs Badger's logs every SyncInterval when commits are not
// synced one by one.
func (s *Store) syncer() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return // Close syncs once more
		case <-t.C:
			if err := s.db.Sync(); err != nil {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Error("fsync failed: recent writes may not survive a power loss")
			}
		}
	}
}

// valueLogGCInterval is how often values too large for the LSM tree (they
// live in Badger's value log) are garbage collected.
const valueLogGCInterval = 10 * time.Minute

// trimmer trims the replication log when the writer says an origin's log
// outgrew MaxLogEntries, and garbage collects the value log now and then.
func (s *Store) trimmer() {
	defer s.wg.Done()
	gc := time.NewTicker(valueLogGCInterval)
	defer gc.Stop()
	var forced forcedTrimWarning
	for {
		select {
		case <-s.closing:
			return
		case <-s.trimKick:
			before := s.LogForcedTrims()
			if err := s.trimOnce(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("log trim failed")
			}
			forced.add(s, s.LogForcedTrims()-before)
		case <-gc.C:
			s.valueLogGC()
		}
	}
}

// trimOnce trims what is due (see retention.go) through the writer, a chunk
// at a time.
func (s *Store) trimOnce(ctx context.Context) error {
	for {
		r := s.getRequest(reqTrim)
		r.ret = s.holders.snapshot()
		if err := s.do(ctx, r); err != nil {
			return err
		}
		more, progress, err := r.more, r.committed, r.err
		s.putRequest(r)
		if err != nil || !more || progress == 0 {
			return err
		}
	}
}

// forcedTrimWarnEvery bounds how often forced trims are warned of: while a
// holder is down they happen at every trim.
const forcedTrimWarnEvery = time.Minute

// forcedTrimWarning warns of entries trimmed while a holder still held
// them, at most once per forcedTrimWarnEvery, with the count since the last
// warning.
type forcedTrimWarning struct {
	at       time.Time // of the last warning
	unwarned uint64
}

func (f *forcedTrimWarning) add(s *Store, n uint64) {
	f.unwarned += n
	now := s.clk.Now()
	if f.unwarned == 0 || !f.at.IsZero() && now.Sub(f.at) < forcedTrimWarnEvery {
		return
	}
	s.log.WithFields(logrus.Fields{
		"entries": f.unwarned, "max_log_entries": s.cfg.MaxLogEntries,
		"holders_behind": strings.Join(s.holders.lagging(s.Applied()), ","),
	}).WithField(logging.FieldEvent, logging.EventLogTrimmed).Warn("log trimmed past max-log-entries before every holder had it: a digest sync repairs those holders")
	f.at, f.unwarned = now, 0
}

func (s *Store) valueLogGC() {
	if s.cfg.InMemory {
		return
	}
	// Each successful run rewrites one file; a few per tick keep up.
	for range 4 {
		select {
		case <-s.closing:
			return
		default:
		}
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("value log gc")
			}
			return
		}
	}
}
