package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/upu/upu/crdt"
)

// peerBatch is one peer's records, read under its applied vector.
type peerBatch struct {
	recs []KeyRecord
	seen crdt.VersionVector
}

// peerRecords returns three peers' records after interleaved writes, per
// peer, and their log entries.
func peerRecords() ([]peerBatch, []LogEntry) {
	peers := []*peer{newPeer(0xa), newPeer(0xb), newPeer(0xc)}
	var entries []LogEntry
	for i := range 40 {
		p := peers[i%3]
		key := fmt.Sprint("k", i%9)
		switch i % 4 {
		case 0, 1:
			entries = append(entries, p.set(key, fmt.Sprint("v", i), 0))
		case 2:
			entries = append(entries, p.del(key))
		case 3:
			entries = append(entries, p.incr("n", int64(i)))
		}
	}
	var batches []peerBatch
	for _, p := range peers {
		b := peerBatch{seen: crdt.VersionVector{{Node: p.id, Counter: p.seq}}}
		for k, r := range p.recs {
			b.recs = append(b.recs, KeyRecord{Key: []byte(k), Record: r})
		}
		batches = append(batches, b)
	}
	return batches, entries
}

// mergeAll merges every batch with MergeRecords.
func mergeAll(t *testing.T, s *Store, batches []peerBatch) {
	t.Helper()
	for _, b := range batches {
		if err := s.MergeRecords(context.Background(), b.recs, b.seen); err != nil {
			t.Fatal(err)
		}
	}
}

// encoded returns every record of s, encoded, by key.
func encoded(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.Scan(context.Background(), nil, 0, func(k []byte, r crdt.Record) bool {
		out[string(k)] = string(crdt.AppendRecord(nil, r))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMergeRecordsEqualsMergeRecord(t *testing.T) {
	batches, entries := peerRecords()
	// The receivers hold part of the same history already.
	half := entries[:len(entries)/2]
	tests := []struct {
		name string
		seen func(peerBatch) crdt.VersionVector
	}{
		{"no seen vector", func(peerBatch) crdt.VersionVector { return nil }},
		{"the peer's seen vector", func(b peerBatch) crdt.VersionVector { return b.seen }},
		{"a seen vector covering the others", func(peerBatch) crdt.VersionVector {
			return crdt.VersionVector{{Node: 0xa, Counter: 99}, {Node: 0xb, Counter: 5}, {Node: 0xc, Counter: 99}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, _ := openMem(t)
			batch, _ := openMem(t)
			for _, s := range []*Store{one, batch} {
				if _, err := s.ApplyRemote(context.Background(), half); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range batches {
				for _, r := range b.recs {
					if err := one.MergeRecord(context.Background(), r.Key, r.Record, tt.seen(b)); err != nil {
						t.Fatal(err)
					}
				}
				if err := batch.MergeRecords(context.Background(), b.recs, tt.seen(b)); err != nil {
					t.Fatal(err)
				}
			}
			a, b := encoded(t, one), encoded(t, batch)
			if len(a) == 0 || len(a) != len(b) {
				t.Fatalf("%d records vs %d", len(a), len(b))
			}
			for k, v := range a {
				if b[k] != v {
					t.Errorf("key %s differs", k)
				}
			}
			if !equalStrings(deadKeys(t, one), deadKeys(t, batch)) {
				t.Errorf("dead index differs: %q vs %q", deadKeys(t, one), deadKeys(t, batch))
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestMergeRecordsZeroRecord: a zero record with the sender's seen vector
// drops the siblings the sender saw and no longer holds, and only those.
func TestMergeRecordsZeroRecord(t *testing.T) {
	p1, p2 := newPeer(0x1), newPeer(0x2)
	e1, e2 := p1.set("k", "one", 0), p2.set("k", "two", 0)
	tests := []struct {
		name string
		seen crdt.VersionVector
		want []crdt.NodeID // writers of the siblings left
	}{
		{"no seen vector", nil, []crdt.NodeID{0x1, 0x2}},
		{"covers neither", crdt.VersionVector{{Node: 0x3, Counter: 9}}, []crdt.NodeID{0x1, 0x2}},
		{"covers one", crdt.VersionVector{{Node: 0x1, Counter: 1}}, []crdt.NodeID{0x2}},
		{"covers both", crdt.VersionVector{{Node: 0x1, Counter: 1}, {Node: 0x2, Counter: 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMem(t)
			if _, err := s.ApplyRemote(context.Background(), []LogEntry{e1, e2}); err != nil {
				t.Fatal(err)
			}
			recs := []KeyRecord{{Key: []byte("k")}, {Key: []byte("absent")}}
			if err := s.MergeRecords(context.Background(), recs, tt.seen); err != nil {
				t.Fatal(err)
			}
			r := record(t, s, "k")
			var got []crdt.NodeID
			for _, e := range r.Entries {
				got = append(got, e.Dot.Node)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("siblings of %v left, want %v", got, tt.want)
			}
			if dead := len(deadKeys(t, s)) == 1; dead != (len(tt.want) == 0) {
				t.Errorf("dead index = %q", deadKeys(t, s))
			}
			if _, err := s.Get([]byte("absent")); !errors.Is(err, ErrNotFound) {
				t.Errorf("a zero record for an absent key was stored: %v", err)
			}
		})
	}
}

func TestMergeRecordsErrors(t *testing.T) {
	s, _ := openMem(t)
	if err := s.MergeRecords(context.Background(), nil, nil); err != nil {
		t.Errorf("no records: %v", err)
	}
	p := newPeer(0x7)
	p.set("a", "1", 0)
	p.set("b", "2", 0)
	recs := []KeyRecord{{Key: []byte("a"), Record: p.recs["a"]}, {Key: nil, Record: p.recs["a"]}, {Key: []byte("b"), Record: p.recs["b"]}}
	if err := s.MergeRecords(context.Background(), recs, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("empty key: %v, want ErrBadRequest", err)
	}
	for _, k := range []string{"a", "b"} {
		if _, found := readValue(t, s, k); !found {
			t.Errorf("%s not merged beside a bad record", k)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.MergeRecords(ctx, recs[:1], nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestMergeRecordsUnchangedNoCommit: merging records already held commits
// nothing.
func TestMergeRecordsUnchangedNoCommit(t *testing.T) {
	var commits int
	s := openCommitting(t, func(txn *badger.Txn) error {
		commits++ // only the writer commits
		return txn.Commit()
	})
	batches, _ := peerRecords()
	mergeAll(t, s, batches)
	before := commits
	if before == 0 {
		t.Fatal("first merge committed nothing")
	}
	mergeAll(t, s, batches)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if commits != before {
		t.Errorf("merging the same records again committed %d times", commits-before)
	}
}

func TestBucketDigests(t *testing.T) {
	ctx := context.Background()
	batches, entries := peerRecords()
	// a: the log in order; b: the log per origin in another order; c:
	// whole records, then its applied vector raised as a digest sync
	// does. All three hold the same records.
	a, _ := openMem(t)
	b, clkB := openMem(t)
	c, _ := openMem(t)
	if _, err := a.ApplyRemote(ctx, entries); err != nil {
		t.Fatal(err)
	}
	for _, origin := range []crdt.NodeID{0xc, 0xb, 0xa} {
		for _, e := range entries {
			if e.Origin == origin {
				if _, err := b.ApplyRemote(ctx, []LogEntry{e}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	mergeAll(t, c, batches)
	if err := c.RaiseApplied(ctx, a.Applied()); err != nil {
		t.Fatal(err)
	}

	for _, bits := range []uint{0, 1, 4, 16} {
		da, err := a.BucketDigests(ctx, bits)
		if err != nil {
			t.Fatal(err)
		}
		if len(da) != 1<<bits {
			t.Fatalf("bits %d: %d digests", bits, len(da))
		}
		for name, s := range map[string]*Store{"b": b, "c": c} {
			d, err := s.BucketDigests(ctx, bits)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(d) != fmt.Sprint(da) {
				t.Errorf("bits %d: %s's digests differ from a's", bits, name)
			}
		}
	}

	// b drops its tombstones: their buckets differ (a sync would send
	// those keys for nothing), no other.
	const bits = 8
	dead := map[uint32]bool{}
	for _, k := range deadKeys(t, b) {
		dead[crdt.Bucket([]byte(k), bits)] = true
	}
	b.SetStable(b.Applied())
	collect(t, b, clkB)
	if b.GCStats().DroppedStable == 0 {
		t.Fatal("b dropped no tombstone")
	}
	da, _ := a.BucketDigests(ctx, bits)
	db, _ := b.BucketDigests(ctx, bits)
	for i := range da {
		if (da[i] != db[i]) != dead[uint32(i)] {
			t.Errorf("bucket %d differs = %v after b's collection; dead keys there: %v", i, da[i] != db[i], dead[uint32(i)])
		}
	}

	// One key's value differs: its bucket alone.
	before, _ := a.BucketDigests(ctx, bits)
	set(t, a, "k1", "changed", 0)
	after, _ := a.BucketDigests(ctx, bits)
	want := crdt.Bucket([]byte("k1"), bits)
	for i := range after {
		if (after[i] != before[i]) != (uint32(i) == want) {
			t.Errorf("bucket %d changed = %v; the key is in %d", i, after[i] != before[i], want)
		}
	}
}

func TestBucketDigestsBits(t *testing.T) {
	s, _ := openMem(t)
	for _, bits := range []uint{MaxDigestBits + 1, 64} {
		if _, err := s.BucketDigests(context.Background(), bits); !errors.Is(err, ErrBadRequest) {
			t.Errorf("bits %d: %v, want ErrBadRequest", bits, err)
		}
	}
	d, err := s.BucketDigests(context.Background(), 0)
	if err != nil || len(d) != 1 || d[0] != 0 {
		t.Errorf("empty store: %v, %v", d, err)
	}
}

// TestBucketDigestsIgnoreExpired: an expired entry drops out of the
// digest without a write.
func TestBucketDigestsIgnoreExpired(t *testing.T) {
	s, clk := openMem(t)
	set(t, s, "k", "v", clk.ms()+1000)
	d, _ := s.BucketDigests(context.Background(), 0)
	clk.Add(time.Second)
	d2, _ := s.BucketDigests(context.Background(), 0)
	if d[0] == 0 || d2[0] != 0 {
		t.Errorf("digests %x then %x", d, d2)
	}
}

func TestLastContact(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Dir: t.TempDir(), PurgeInterval: time.Hour}
	reopen := func(s *Store) *Store {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(cfg, clk, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := s.LastContact(); !got.IsZero() {
		t.Fatalf("LastContact of a new store = %v", got)
	}
	for _, when := range []time.Time{clk.Now(), clk.Now().Add(time.Minute), {}} {
		if err := s.SetLastContact(context.Background(), when); err != nil {
			t.Fatal(err)
		}
		if got := s.LastContact(); !got.Equal(when) {
			t.Errorf("LastContact = %v, want %v", got, when)
		}
		s = reopen(s)
		if got := s.LastContact(); !got.Equal(when) {
			t.Errorf("after reopen: LastContact = %v, want %v", got, when)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastContact(context.Background(), clk.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
