package store

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/upu/upu/crdt"
)

// writeN makes n local writes, in batches.
func writeN(t testing.TB, s *Store, n int) {
	t.Helper()
	ws := make([]Write, 0, 256)
	out := make([]Result, 256)
	for i := 0; i < n; {
		ws = ws[:0]
		for ; len(ws) < cap(ws) && i < n; i++ {
			ws = append(ws, Write{Op: OpSet, Key: []byte(fmt.Sprint("k", i%100)), Value: []byte("v")})
		}
		s.ApplyBatch(context.Background(), ws, out)
		for _, r := range out[:len(ws)] {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

func TestLogRetentionByHolders(t *testing.T) {
	const written = 3000
	self := crdt.NodeID(0x5e1f)
	own := func(n uint64) crdt.VersionVector { return crdt.VersionVector{{Node: self, Counter: n}} }
	// Past the bound the trimmer, kicked by the writes, may have run at any
	// length between: the log ends between the low mark and the bound.
	const low = 1000 - 1000/64
	for _, tc := range []struct {
		name    string
		maxLog  int64
		acks    []crdt.VersionVector // one holder each; nil: registered, never acked
		release int                  // holders released before the writes, from the first
		wantLen int64                // the log's length after trimming, at most
		minLen  int64                // and at least; 0: wantLen exactly
		held    uint64               // own entries every holder acked; any beyond trimmed are forced
	}{
		{name: "no holder, under the bound", maxLog: 5000, wantLen: written},
		{name: "no holder, over the bound", maxLog: 1000, wantLen: 1000, minLen: low, held: written},
		{name: "a holder that has not acked, under the bound", maxLog: 5000, acks: []crdt.VersionVector{nil}, wantLen: written},
		{name: "everything acked, under the bound: kept", maxLog: 5000, acks: []crdt.VersionVector{own(written)}, wantLen: written},
		{name: "everything acked, over the bound", maxLog: 1000, acks: []crdt.VersionVector{own(written)}, wantLen: 1000, minLen: low, held: written},
		{name: "acked beyond the log", maxLog: 1000, acks: []crdt.VersionVector{own(2 * written)}, wantLen: 1000, minLen: low, held: written},
		{name: "the least acked of two holders", maxLog: 1000, acks: []crdt.VersionVector{own(written), own(1500)}, wantLen: 1000, minLen: low, held: 1500},
		{name: "another origin acked only", maxLog: 1000, acks: []crdt.VersionVector{{{Node: 1, Counter: written}}}, wantLen: 1000, minLen: low},
		{name: "hard bound trims unacked entries", maxLog: 1000, acks: []crdt.VersionVector{nil}, wantLen: 1000, minLen: low},
		{name: "hard bound past a partial ack", maxLog: 1000, acks: []crdt.VersionVector{own(1500)}, wantLen: 1000, minLen: low, held: 1500},
		{name: "release of the holder behind", maxLog: 1000, acks: []crdt.VersionVector{nil, own(written)}, release: 1, wantLen: 1000, minLen: low, held: written},
		{name: "release of every holder", maxLog: 5000, acks: []crdt.VersionVector{nil}, release: 1, wantLen: written},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.NodeID, cfg.MaxLogEntries = self, tc.maxLog
			s := openStore(t, cfg, newFakeClock())
			var hs []*Holder
			for i := range tc.acks {
				h := s.Holder(fmt.Sprint("h", i))
				t.Cleanup(h.Release)
				hs = append(hs, h)
			}
			// Acks come first, so that a background trim during the writes
			// sees the same as the last one.
			for i, vv := range tc.acks {
				if vv != nil {
					hs[i].Ack(vv)
				}
			}
			for _, h := range hs[:tc.release] {
				h.Release()
			}
			writeN(t, s, written)
			if err := s.trimOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			n := s.LogLen()
			if n > tc.wantLen || n < cmp.Or(tc.minLen, tc.wantLen) {
				t.Errorf("LogLen = %d, want %d to %d", n, cmp.Or(tc.minLen, tc.wantLen), tc.wantLen)
			}
			start, err := s.LogStart(self)
			if err != nil {
				t.Fatal(err)
			}
			if want := uint64(written-n) + 1; start != want {
				t.Errorf("LogStart = %d, want %d", start, want)
			}
			st := s.Stats()
			if want := (start - 1) - min(start-1, tc.held); st.LogForcedTrims != want {
				t.Errorf("LogForcedTrims = %d, want %d (log starts at %d)", st.LogForcedTrims, want, start)
			}
		})
	}
}

// A holder's acks are its own: a later, lower one holds again what it
// names (trimming past the bound then counts as forced what lies beyond
// it), and releasing twice is harmless.
func TestHolderAckReplaces(t *testing.T) {
	cfg := testConfig()
	cfg.NodeID, cfg.MaxLogEntries = 7, 1000
	s := openStore(t, cfg, newFakeClock())
	h := s.Holder("ring")
	h.Ack(crdt.VersionVector{{Node: 7, Counter: 2500}})
	h.Ack(crdt.VersionVector{{Node: 7, Counter: 1100}})
	writeN(t, s, 2500)
	if err := s.trimOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	start, err := s.LogStart(7)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.LogForcedTrims(), start-1-1100; start-1 <= 1100 || got != want {
		t.Errorf("LogForcedTrims = %d with the log starting at %d, want %d: the later ack (1100) holds", got, start, want)
	}
	h.Release()
	h.Release()
	before := s.LogForcedTrims()
	writeN(t, s, 500)
	if err := s.trimOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.LogForcedTrims(); got != before {
		t.Errorf("LogForcedTrims after release = %d, want %d (no holder: the bound alone)", got, before)
	}
}

// Forced trims are warned of at most once a minute, with the entries
// trimmed since the last warning.
func TestForcedTrimWarning(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	clk := newFakeClock()
	s, err := Open(testConfig(), clk, logrus.NewEntry(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := s.Holder("ring")
	t.Cleanup(h.Release)
	set(t, s, "k", "v", 0) // which the ring has not acknowledged
	var f forcedTrimWarning
	for i, step := range []struct {
		after   time.Duration
		forced  uint64
		entries uint64 // the warning's count; 0: no warning
	}{
		{0, 0, 0},
		{0, 5, 5},
		{time.Second, 3, 0},
		{time.Minute, 0, 3},
		{time.Minute, 0, 0},
		{time.Second, 7, 7},
	} {
		clk.Add(step.after)
		hook.Reset()
		f.add(s, step.forced)
		var warned []*logrus.Entry
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel {
				warned = append(warned, e)
			}
		}
		switch {
		case step.entries == 0 && len(warned) != 0:
			t.Errorf("step %d: warned %v, want nothing", i, warned[0].Data)
		case step.entries != 0 && (len(warned) != 1 || warned[0].Data["entries"] != step.entries || warned[0].Data["holders_behind"] != "ring"):
			t.Errorf("step %d: warnings %d, want one of %d entries naming the ring", i, len(warned), step.entries)
		}
	}
}
