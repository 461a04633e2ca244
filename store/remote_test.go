package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/upu/upu/crdt"
)

// peer simulates another node producing log entries.
type peer struct {
	id   crdt.NodeID
	hlc  crdt.HLC
	recs map[string]crdt.Record
	seq  uint64
	now  int64
}

func newPeer(id crdt.NodeID) *peer {
	return &peer{id: id, recs: map[string]crdt.Record{}, now: 1_700_000_000_000}
}

func (p *peer) write(key string, f func(r crdt.Record, op crdt.Op) crdt.Record) LogEntry {
	p.seq++ // the entry's sequence number is its dot's counter, as in a store
	op := crdt.Op{Node: p.id, TS: p.hlc.Now(p.now), Seq: p.seq}
	delta := f(p.recs[key], op)
	p.recs[key] = crdt.Merge(p.recs[key], delta)
	return LogEntry{Origin: p.id, Seq: p.seq, Key: []byte(key), Delta: crdt.AppendRecord(nil, delta), TS: op.TS, ReqID: fmt.Sprint("req-", p.seq)}
}

func (p *peer) set(key, value string, expiry int64) LogEntry {
	return p.write(key, func(r crdt.Record, op crdt.Op) crdt.Record { return r.Set(op, []byte(value), expiry) })
}

func (p *peer) del(key string) LogEntry {
	return p.write(key, func(r crdt.Record, op crdt.Op) crdt.Record { return r.Delete(op) })
}

func (p *peer) incr(key string, n int64) LogEntry {
	return p.write(key, func(r crdt.Record, op crdt.Op) crdt.Record {
		d, _, err := r.Incr(op, n, p.now)
		if err != nil {
			panic(err)
		}
		return d
	})
}

// remoteSets returns entries from..to of a peer that sets key "r<seq>".
func remoteSets(origin crdt.NodeID, from, to uint64) []LogEntry {
	p := newPeer(origin)
	var out []LogEntry
	for i := uint64(1); i <= to; i++ {
		e := p.set(fmt.Sprint("r", i), fmt.Sprint("v", i), 0)
		if i >= from {
			out = append(out, e)
		}
	}
	return out
}

func TestApplyRemote(t *testing.T) {
	origin := crdt.NodeID(0x1111)
	all := remoteSets(origin, 1, 10)
	tests := []struct {
		name        string
		batches     [][]LogEntry
		wantApplied []int // per batch
		wantSeq     uint64
	}{
		{"in order", [][]LogEntry{all[:5], all[5:]}, []int{5, 5}, 10},
		{"duplicates skipped", [][]LogEntry{all[:5], all[:7], all[3:10]}, []int{5, 2, 3}, 10},
		{"gap not applied", [][]LogEntry{all[:3], all[5:]}, []int{3, 0}, 3},
		{"gap inside a batch", [][]LogEntry{{all[0], all[1], all[3], all[2]}}, []int{3}, 3},
		{"gap filled later", [][]LogEntry{all[:3], all[5:], all[3:]}, []int{3, 0, 7}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMem(t)
			for i, b := range tt.batches {
				n, err := s.ApplyRemote(context.Background(), b)
				if err != nil || n != tt.wantApplied[i] {
					t.Fatalf("batch %d: applied %d, %v; want %d", i, n, err, tt.wantApplied[i])
				}
			}
			if got := s.Applied().Get(origin); got != tt.wantSeq {
				t.Fatalf("applied = %d, want %d", got, tt.wantSeq)
			}
			for i := uint64(1); i <= 10; i++ {
				_, found := readValue(t, s, fmt.Sprint("r", i))
				if found != (i <= tt.wantSeq) {
					t.Errorf("r%d found = %v", i, found)
				}
			}
			log, err := s.ReadLog(origin, 1, 100)
			if err != nil || uint64(len(log)) != tt.wantSeq {
				t.Fatalf("ReadLog: %d entries, %v", len(log), err)
			}
			for i, e := range log {
				w := all[i]
				if e.Seq != w.Seq || string(e.Key) != string(w.Key) || e.TS != w.TS || e.ReqID != w.ReqID ||
					!bytes.Equal(e.Delta, w.Delta) {
					t.Errorf("log entry %d = %+v, want %+v", i, e, w)
				}
			}
			if s.hlc.Last() < all[tt.wantSeq-1].TS {
				t.Errorf("HLC did not observe remote timestamps")
			}
		})
	}
}

func TestApplyRemoteBadEntry(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(e *LogEntry)
	}{
		{"no key", func(e *LogEntry) { e.Key = nil }},
		{"no delta", func(e *LogEntry) { e.Delta = nil }},
		{"delta not a record", func(e *LogEntry) { e.Delta = []byte{0xff, 0x01} }},
		{"delta cut short", func(e *LogEntry) { e.Delta = e.Delta[:len(e.Delta)-1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMem(t)
			all := remoteSets(0x22, 1, 3)
			tt.spoil(&all[1])
			n, err := s.ApplyRemote(context.Background(), all)
			if n != 1 || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("applied %d, %v; want 1, ErrBadRequest", n, err)
			}
			if got := s.Applied().Get(0x22); got != 1 {
				t.Errorf("applied = %d, want 1", got)
			}
		})
	}
}

// TestReplicaConvergence feeds two stores the same entries from three peers,
// in different batches and interleavings: their digests agree, and agree
// with a store that was merged whole records instead.
func TestReplicaConvergence(t *testing.T) {
	peers := []*peer{newPeer(0xa), newPeer(0xb), newPeer(0xc)}
	var streams [3][]LogEntry
	for i := range 60 {
		p := i % 3
		key := fmt.Sprint("k", i%7)
		var e LogEntry
		switch i % 5 {
		case 0, 1:
			e = peers[p].set(key, fmt.Sprint("v", i), 0)
		case 2:
			e = peers[p].incr("counter", int64(i))
		case 3:
			e = peers[p].del(key)
		case 4:
			e = peers[p].set(key, fmt.Sprint("ttl", i), peers[p].now-1) // already expired
		}
		streams[p] = append(streams[p], e)
	}
	a, _ := openMem(t)
	b, _ := openMem(t)
	c, _ := openMem(t)
	// a: each peer's stream at once, peer by peer.
	for _, st := range streams {
		if _, err := a.ApplyRemote(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	// b: small batches, peers interleaved in reverse, with duplicates.
	for off := 0; off < 20; off += 3 {
		for p := 2; p >= 0; p-- {
			st := streams[p]
			batch := st[max(0, off-2):min(len(st), off+3)]
			if _, err := b.ApplyRemote(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	// c: the peers' whole records.
	for _, p := range peers {
		for k, r := range p.recs {
			if err := c.MergeRecord(context.Background(), []byte(k), r, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !a.Applied().Equal(b.Applied()) {
		t.Fatalf("applied differ: %s vs %s", a.Applied(), b.Applied())
	}
	da, na, err := a.Digest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db, nb, _ := b.Digest(context.Background())
	dc, nc, _ := c.Digest(context.Background())
	if da != db || da != dc || na != nb || na != nc {
		t.Fatalf("digests differ: %s/%d %s/%d %s/%d", da, na, db, nb, dc, nc)
	}
	if na == 0 {
		t.Fatal("no live keys")
	}
	v, _, err := a.Read([]byte("counter"))
	if err != nil || v.Counter != 2+7+12+17+22+27+32+37+42+47+52+57 {
		t.Errorf("counter = %d, %v", v.Counter, err)
	}
	// Merging the same records again changes nothing.
	for _, p := range peers {
		for k, r := range p.recs {
			if err := c.MergeRecord(context.Background(), []byte(k), r, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if again, _, _ := c.Digest(context.Background()); again != dc {
		t.Error("digest changed after merging the same records again")
	}
}

func TestReadLogTrimmed(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.MaxLogEntries = 64 // trimmed back to 63 once over
	s := openStore(t, cfg, clk)
	const n = 200
	for i := range n {
		set(t, s, fmt.Sprint("k", i%10), "v", 0)
	}
	self := s.NodeID()
	// The trimmer runs in the background; drive it to completion.
	if err := s.trimOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.LogLen(); got > 64 {
		t.Fatalf("LogLen = %d after trimming, want <= 64", got)
	}
	start, err := s.LogStart(self)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(n) - uint64(s.LogLen()) + 1; start != want {
		t.Errorf("LogStart = %d, want %d", start, want)
	}
	if _, err := s.ReadLog(self, 1, 10); !errors.Is(err, ErrLogTrimmed) {
		t.Errorf("ReadLog from 1: %v, want ErrLogTrimmed", err)
	}
	log, err := s.ReadLog(self, start, 1000)
	if err != nil || uint64(len(log)) != n-start+1 || log[len(log)-1].Seq != n {
		t.Fatalf("ReadLog from start: %d entries, %v", len(log), err)
	}
	if log, err := s.ReadLog(self, n+1, 10); err != nil || len(log) != 0 {
		t.Errorf("ReadLog past the end: %d, %v", len(log), err)
	}
}

func TestLogTrimSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	cfg := Config{Dir: dir, MaxLogEntries: 10, PurgeInterval: 3600e9}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		set(t, s, fmt.Sprint("k", i), "v", 0)
	}
	if err := s.trimOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := s.LogLen()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, cfg, clk)
	if got := s2.LogLen(); got != n || got > 10 {
		t.Errorf("LogLen after reopen = %d, before %d", got, n)
	}
}
