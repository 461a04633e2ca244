package store

import (
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

func TestDiskWatchWarnsOncePerEpisode(t *testing.T) {
	logger, hook := test.NewNullLogger()
	s := &Store{log: logrus.NewEntry(logger)}
	s.cfg.Dir = "/data"
	for _, u := range []DiskUsage{
		{Free: 50, Total: 100},
		{Free: 9, Total: 100}, // under 10%: warn
		{Free: 5, Total: 100}, // still under: nothing new
		{Free: 40, Total: 100},
		{Free: 1, Total: 100}, // a new episode
	} {
		s.observeDisk(u)
	}
	var warns, infos int
	for _, e := range hook.AllEntries() {
		switch e.Level {
		case logrus.WarnLevel:
			warns++
			if e.Data["event"] != "disk_filling" {
				t.Errorf("warning without the disk_filling event: %v", e.Data)
			}
		case logrus.InfoLevel:
			infos++
		}
	}
	if warns != 2 || infos != 1 {
		t.Fatalf("%d warnings and %d infos, want 2 and 1", warns, infos)
	}
	if got := s.Disk(); got.Free != 1 || got.Total != 100 {
		t.Fatalf("Disk() = %+v", got)
	}
}

func TestDiskUsageRead(t *testing.T) {
	s := openStore(t, Config{Dir: t.TempDir(), PurgeInterval: time.Hour}, newFakeClock())
	s.readDisk()
	if u := s.Disk(); u.Total == 0 || u.Free > u.Total {
		t.Fatalf("Disk() of the test directory = %+v", u)
	}
}
