package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/upu/upu/crdt"
)

func setSystem(t testing.TB, s *Store, key, value string) Result {
	t.Helper()
	res := s.Apply(context.Background(), Write{Op: OpSet, Key: []byte(key), Value: []byte(value), System: true})
	if res.Err != nil {
		t.Fatalf("set system %q: %v", key, res.Err)
	}
	return res
}

// systemValue returns the visible value of a system key, or "" and false.
func systemValue(t testing.TB, s *Store, key string) (string, bool) {
	t.Helper()
	v, _, err := s.ReadSystem([]byte(key))
	if errors.Is(err, ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("read system %q: %v", key, err)
	}
	return string(v.Value), true
}

// shipLog applies to dst every entry of src's own log that dst lacks, as
// the ring does.
func shipLog(t testing.TB, src, dst *Store) {
	t.Helper()
	id := src.NodeID()
	es, err := src.ReadLog(id, dst.Applied().Get(id)+1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.ApplyRemote(context.Background(), es); err != nil {
		t.Fatal(err)
	}
}

func TestSystemKeyspaceReplicates(t *testing.T) {
	a, clkA := openMem(t)
	b, _ := openMem(t)
	setSystem(t, a, "parent", "dc-root")
	set(t, a, "parent", "a data value", 0)
	es, err := a.ReadLog(a.NodeID(), 1, 10)
	if err != nil || len(es) != 2 || !es[0].System || es[1].System {
		t.Fatalf("log: %+v, %v; want a system entry, then a data one", es, err)
	}
	shipLog(t, a, b)
	for _, s := range []*Store{a, b} {
		if v, ok := systemValue(t, s, "parent"); v != "dc-root" || !ok {
			t.Errorf("system parent = %q, %v", v, ok)
		}
		if v, ok := readValue(t, s, "parent"); v != "a data value" || !ok {
			t.Errorf("data parent = %q, %v", v, ok)
		}
	}

	// Concurrent writes on two members: the later one wins on both.
	setSystem(t, b, "parent", "dc-b")
	clkA.Add(time.Second)
	setSystem(t, a, "parent", "dc-a")
	shipLog(t, a, b)
	shipLog(t, b, a)
	for _, s := range []*Store{a, b} {
		if v, _ := systemValue(t, s, "parent"); v != "dc-a" {
			t.Errorf("after concurrent writes: system parent = %q, want the later dc-a", v)
		}
	}
	res := b.Apply(context.Background(), Write{Op: OpDel, Key: []byte("parent"), System: true})
	if res.Err != nil || res.Counter != 1 {
		t.Fatalf("delete: %+v", res)
	}
	shipLog(t, b, a)
	if _, ok := systemValue(t, a, "parent"); ok {
		t.Error("the system key is still visible after its delete replicated")
	}
}

// Data reads, scans, digests and stats do not see the system keyspace.
func TestSystemKeyspaceInvisibleToData(t *testing.T) {
	s, _ := openMem(t)
	empty, _ := openMem(t)
	setSystem(t, s, "parent", "dc-root")
	if _, _, err := s.Read([]byte("parent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read of the system key's name: %v, want ErrNotFound", err)
	}
	if _, err := s.Get([]byte("parent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of the system key's name: %v, want ErrNotFound", err)
	}
	var seen [][]byte
	if err := s.Scan(context.Background(), nil, 0, func(k []byte, _ crdt.Record) bool {
		seen = append(seen, k)
		return true
	}); err != nil || len(seen) != 0 {
		t.Errorf("Scan saw %q, %v", seen, err)
	}
	d, n, err := s.Digest(context.Background())
	de, _, _ := empty.Digest(context.Background())
	if err != nil || n != 0 || d != de {
		t.Errorf("Digest = %s over %d keys, %v; want the empty store's %s", d, n, err, de)
	}
	if st := s.Stats(); st.Keys != 0 {
		t.Errorf("Stats.Keys = %d", st.Keys)
	}
	// A data write of the same name leaves the system key alone.
	set(t, s, "parent", "data", 0)
	s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("parent")})
	if v, _ := systemValue(t, s, "parent"); v != "dc-root" {
		t.Errorf("system parent = %q after data writes of the same name", v)
	}
}

func TestSystemWriteRejected(t *testing.T) {
	s, _ := openMem(t)
	for _, tc := range []struct {
		name string
		w    Write
		want error
	}{
		{"incr", Write{Op: OpIncr, Key: []byte("k"), Delta: 1}, ErrBadRequest},
		{"expire", Write{Op: OpExpire, Key: []byte("k"), Expiry: 1}, ErrBadRequest},
		{"append", Write{Op: OpAppend, Key: []byte("k"), Value: []byte("v")}, ErrBadRequest},
		{"expiry", Write{Op: OpSet, Key: []byte("k"), Value: []byte("v"), Expiry: 1}, ErrBadRequest},
		{"condition", Write{Op: OpSet, Key: []byte("k"), Value: []byte("v"), Cond: CondAbsent}, ErrBadRequest},
		{"empty key", Write{Op: OpSet, Value: []byte("v")}, ErrBadRequest},
		{"long key", Write{Op: OpSet, Key: bytes.Repeat([]byte("k"), MaxKeySizeLimit+1), Value: []byte("v")}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.System = true
			if res := s.Apply(context.Background(), tc.w); !errors.Is(res.Err, tc.want) {
				t.Errorf("Apply: %v, want %v", res.Err, tc.want)
			}
		})
	}
	if got := s.Applied().Get(s.NodeID()); got != 0 {
		t.Errorf("rejected writes took sequence numbers: applied %d", got)
	}
}

func TestSystemKeyspaceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	cfg := Config{Dir: dir, PurgeInterval: time.Hour}
	s, err := Open(cfg, clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	setSystem(t, s, "parent", "dc-root")
	setSystem(t, s, "gone", "x")
	if res := s.Apply(context.Background(), Write{Op: OpDel, Key: []byte("gone"), System: true}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg, clk)
	if v, ok := systemValue(t, s, "parent"); v != "dc-root" || !ok {
		t.Errorf("system parent after restart = %q, %v", v, ok)
	}
	if _, ok := systemValue(t, s, "gone"); ok {
		t.Error("a deleted system key is back after restart")
	}
	es, err := s.ReadLog(s.NodeID(), 1, 10)
	if err != nil || len(es) != 3 || !es[0].System || !es[2].System {
		t.Errorf("log after restart: %+v, %v", es, err)
	}
}

// A digest sync repairs a system record: bucket digests cover it, and the
// sender's system records merge into the receiver.
func TestSystemKeyspaceDigestSync(t *testing.T) {
	ctx := context.Background()
	const bits = 4
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, a, b *Store)
	}{
		{"missing on the receiver", func(t *testing.T, a, _ *Store) { setSystem(t, a, "parent", "dc-root") }},
		{"older on the receiver", func(t *testing.T, a, b *Store) {
			setSystem(t, a, "parent", "dc-old")
			shipLog(t, a, b)
			setSystem(t, a, "parent", "dc-new")
		}},
		{"a data record of the same name does not hide it", func(t *testing.T, a, b *Store) {
			set(t, a, "parent", "data", 0)
			shipLog(t, a, b)
			setSystem(t, a, "parent", "dc-root")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := openMem(t)
			b, _ := openMem(t)
			tc.setup(t, a, b)
			da, err := a.BucketDigests(ctx, bits)
			if err != nil {
				t.Fatal(err)
			}
			db, err := b.BucketDigests(ctx, bits)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(da, db) {
				t.Fatal("bucket digests agree though the system records differ")
			}
			var recs []KeyRecord
			if err := a.ScanSystem(ctx, func(k []byte, r crdt.Record) bool {
				recs = append(recs, KeyRecord{Key: k, Record: r, System: true})
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if err := b.MergeRecords(ctx, recs, a.Applied()); err != nil {
				t.Fatal(err)
			}
			if err := b.RaiseApplied(ctx, a.Applied()); err != nil {
				t.Fatal(err)
			}
			if db, err = b.BucketDigests(ctx, bits); err != nil || !slices.Equal(da, db) {
				t.Errorf("bucket digests after the sync: %x, want %x (%v)", db, da, err)
			}
			va, _ := systemValue(t, a, "parent")
			if vb, _ := systemValue(t, b, "parent"); vb != va {
				t.Errorf("receiver's system parent = %q, sender's %q", vb, va)
			}
		})
	}
}

func decodedFound(t *testing.T, e *LogEntry) bool {
	t.Helper()
	rec, err := e.Record()
	return err == nil && rec.Read(0).Found
}

// Entries stored before the flags byte existed still read.
func TestLogValueFormatV1(t *testing.T) {
	delta := crdt.Record{}.Set(crdt.Op{Node: 1, TS: 5, Seq: 1}, []byte("v"), 0)
	logValue := func(system bool) []byte {
		return crdt.AppendRecord(appendLogHead(nil, []byte("k"), "req", 5, system), delta)
	}
	v2 := logValue(false)
	v1 := append([]byte{logFormatV1}, v2[2:]...)
	for _, tc := range []struct {
		name   string
		b      []byte
		system bool
		bad    bool
	}{
		{"format 1", v1, false, false},
		{"format 2", v2, false, false},
		{"format 2, system", logValue(true), true, false},
		{"unknown flag", append([]byte{logFormat, 0x80}, v2[2:]...), false, true},
		{"unknown format", append([]byte{9}, v2[1:]...), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e LogEntry
			err := decodeLogValue(tc.b, &e)
			if tc.bad {
				if !errors.Is(err, crdt.ErrBadEncoding) {
					t.Errorf("decode: %v, want ErrBadEncoding", err)
				}
				return
			}
			if err != nil || string(e.Key) != "k" || e.ReqID != "req" || e.TS != 5 || e.System != tc.system || !decodedFound(t, &e) {
				t.Errorf("decoded %+v, %v", e, err)
			}
		})
	}
}

// The configured limits bound the clients' data, not the node's own
// settings: a node with a small --max-value-size still keeps its keys.
func TestSystemWriteNotBoundByClientLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeySize, cfg.MaxValueSize = 8, 16
	s := openStore(t, cfg, newFakeClock())
	ctx := context.Background()
	long, big := []byte("a-system-key-longer-than-8"), make([]byte, 32)
	if res := s.Apply(ctx, Write{Op: OpSet, Key: long, Value: big, System: true}); res.Err != nil {
		t.Fatalf("system write over the client limits: %v", res.Err)
	}
	if res := s.Apply(ctx, Write{Op: OpSet, Key: []byte("k"), Value: big}); !errors.Is(res.Err, ErrTooLarge) {
		t.Fatalf("data write over MaxValueSize: %v, want ErrTooLarge", res.Err)
	}
}
