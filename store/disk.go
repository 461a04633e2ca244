package store

import (
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// The disk watch: a store that runs out of disk fails every write, so the
// operator is warned while there is still room. Every diskCheckInterval the
// free space of the data directory's file system is read; below diskLowFree
// of the total, a WARN (event disk_filling) once, and an INFO once it is
// back above. Stats and metrics report the figures.
const (
	diskCheckInterval = 30 * time.Second
	diskLowFree       = 0.10
)

// DiskUsage is the data directory's file system as last read.
type DiskUsage struct {
	Free, Total uint64 // bytes; zero when unknown (in memory, or not read yet)
}

// diskWatch follows the data directory's free space.
type diskWatch struct {
	usage atomic.Pointer[DiskUsage]
	low   bool // warned, not yet back above the bound
}

// Disk returns the data directory's free and total space as last read.
func (s *Store) Disk() DiskUsage {
	if u := s.disk.usage.Load(); u != nil {
		return *u
	}
	return DiskUsage{}
}

// diskWatcher reads the free space now and every diskCheckInterval.
func (s *Store) diskWatcher() {
	defer s.wg.Done()
	t := time.NewTicker(diskCheckInterval)
	defer t.Stop()
	for {
		s.readDisk()
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}

func (s *Store) readDisk() {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.cfg.Dir, &fs); err != nil {
		return // the directory is Badger's; its own errors say more
	}
	s.observeDisk(DiskUsage{Free: fs.Bavail * uint64(fs.Bsize), Total: fs.Blocks * uint64(fs.Bsize)})
}

// observeDisk records u and warns, or says all is well again, when it
// crosses diskLowFree.
func (s *Store) observeDisk(u DiskUsage) {
	s.disk.usage.Store(&u)
	if u.Total == 0 {
		return
	}
	low := float64(u.Free) < diskLowFree*float64(u.Total)
	if low == s.disk.low {
		return
	}
	s.disk.low = low
	entry := s.log.WithFields(logrus.Fields{"dir": s.cfg.Dir, "free_bytes": u.Free, "total_bytes": u.Total})
	if low {
		entry.WithField(logging.FieldEvent, logging.EventDiskFilling).Warn("disk filling: under 10% free in the data directory's file system; writes fail when it is full")
	} else {
		entry.Info("disk space back above 10% free")
	}
}
