package crdt

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Bucket returns which of 1<<bits buckets key falls in: the top bits of
// its 64-bit xxhash, the same on every node. bits is at most 32.
func Bucket(key []byte, bits uint) uint32 {
	if bits == 0 {
		return 0
	}
	return uint32(xxhash.Sum64(key) >> (64 - bits))
}

// Fingerprint returns a 64-bit hash of key and of every entry of r that a
// read at nowMS may show (live, not a tombstone): its dot, timestamp,
// expiry, kind, counts and value. Contexts, tombstones and expired entries
// are left out, so replicas that dropped them at different moments still
// agree. Zero means nothing to show. XOR of the fingerprints of a set of
// keys digests the set whatever its order.
func (r Record) Fingerprint(key []byte, nowMS int64) uint64 {
	var (
		d   xxhash.Digest
		buf [64]byte
		any bool
	)
	d.Reset()
	for i := range r.Entries {
		e := &r.Entries[i]
		if e.Kind == KindTomb || !e.Live(nowMS) {
			continue
		}
		if !any {
			binary.BigEndian.PutUint32(buf[:4], uint32(len(key)))
			d.Write(buf[:4])
			d.Write(key)
			any = true
		}
		b := binary.BigEndian.AppendUint64(buf[:0], uint64(e.Dot.Node))
		b = binary.BigEndian.AppendUint64(b, e.Dot.Counter)
		b = binary.BigEndian.AppendUint64(b, uint64(e.TS))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Expiry))
		b = append(b, byte(e.Kind))
		b = binary.BigEndian.AppendUint64(b, e.Inc)
		b = binary.BigEndian.AppendUint64(b, e.Dec)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Value)))
		d.Write(b)
		d.Write(e.Value)
	}
	if !any {
		return 0
	}
	if s := d.Sum64(); s != 0 {
		return s
	}
	return 1
}
