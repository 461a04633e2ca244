package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/upu/upu/crdt"
)

// Digest returns a SHA-256 (hex) over the live data at the clock's now, and
// the number of keys it covers: for every key with a visible value, in key
// order, the key and the winning value (a counter's decimal value), each
// length-prefixed (4 bytes BE), then the expiry (8 bytes BE, Unix ms, 0:
// never). Stores holding the same live data have equal digests however the
// data got there.
func (s *Store) Digest(ctx context.Context) (string, int, error) {
	h := sha256.New()
	var buf []byte
	n := 0
	nowMS := s.clk.Now().UnixMilli()
	err := s.Scan(ctx, nil, 0, func(key []byte, r crdt.Record) bool {
		v := r.Read(nowMS)
		if !v.Found {
			return true
		}
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(key)))
		buf = append(buf, key...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v.Value)))
		buf = append(buf, v.Value...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(v.Expiry))
		h.Write(buf)
		n++
		return true
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// MaxDigestBits is the most bits BucketDigests takes: 65536 buckets.
const MaxDigestBits = 16

// BucketDigests returns 1<<bits digests of the records at the clock's now:
// digest[b] is the XOR of the fingerprints (crdt.Record.Fingerprint) of the
// keys in bucket b (crdt.Bucket), against the applied vector as the scan
// begins (one that grows during the scan only makes more records count as
// different). Replicas agree on a bucket when no later merge could tell
// their records apart, whatever expired entries each still keeps. System
// records (system.go) count too, in the bucket of their key, fingerprinted
// apart from a data record of the same name. bits over MaxDigestBits is
// ErrBadRequest.
func (s *Store) BucketDigests(ctx context.Context, bits uint) ([]uint64, error) {
	if bits > MaxDigestBits {
		return nil, fmt.Errorf("%w: %d digest bits, at most %d", ErrBadRequest, bits, MaxDigestBits)
	}
	out := make([]uint64, 1<<bits)
	nowMS := s.clk.Now().UnixMilli()
	applied := s.Applied()
	err := s.Scan(ctx, nil, 0, func(key []byte, r crdt.Record) bool {
		out[crdt.Bucket(key, bits)] ^= r.Fingerprint(key, nowMS, applied)
		return true
	})
	if err != nil {
		return nil, err
	}
	var fk []byte
	err = s.ScanSystem(ctx, func(key []byte, r crdt.Record) bool {
		fk = systemFingerprintKey(fk[:0], key)
		out[crdt.Bucket(key, bits)] ^= r.Fingerprint(fk, nowMS, applied)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Stats reports the store's size from counts it keeps, in constant time
// (but for DiskBytes, a walk of Badger's files). Keys is the records that
// are not dead: a key whose value expired counts until the purger, every
// PurgeInterval, finds it dead.
func (s *Store) Stats() Stats {
	st := Stats{LogLen: s.LogLen(), LogForcedTrims: s.LogForcedTrims(), Applied: s.Applied(), GCStats: s.GCStats()}
	st.Keys = int(max(0, s.records.Load()-st.DeadRecords))
	if !s.cfg.InMemory {
		st.DiskBytes = dirSize(filepath.Join(s.cfg.Dir, "badger"))
	}
	return st
}

// dirSize sums the sizes of the files under dir. Badger's own Size() needs
// its metrics, which cost on every write, so the store walks the files.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		// Badger preallocates sparse files: count the blocks in use.
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	return total
}

// Level is one level of Badger's LSM tree, for metrics: its tables and
// bytes, and its compaction score (over 1: a compaction is due).
type Level struct {
	Level  int
	Tables int
	Bytes  int64
	Score  float64
}

// Levels returns the LSM tree's levels as Badger reports them.
func (s *Store) Levels() []Level {
	infos := s.db.Levels()
	out := make([]Level, len(infos))
	for i, l := range infos {
		out[i] = Level{Level: l.Level, Tables: l.NumTables, Bytes: l.Size, Score: l.Score}
	}
	return out
}
