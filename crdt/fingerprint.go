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

// Fingerprint returns a 64-bit hash of key and of whatever in r a later
// merge or read could tell from another replica's record: every entry live
// at nowMS, tombstones included (a tombstone sibling beats an older value
// in reads, and a dead record's tombstone becomes such a sibling when a
// concurrent write arrives), every reset (it changes what a count entry
// still to arrive adds), and the dots of r's context that applied (the
// holder's applied vector) does not cover (a client's context can name a
// write not applied here yet, which the next merge of that write must drop).
// Expired entries and the context below applied (to which Compact adds dots
// of other keys) are left out.
//
// A digest sync sends nothing for a bucket whose fingerprints agree, and
// then raises the receiver's applied vector past the deltas that made those
// records, so equal fingerprints must mean records no later merge can tell
// apart. Replicas that collect a dead record at different moments differ
// meanwhile, which costs a needless record in a sync, never a wrong one.
//
// Zero means nothing to tell from no record at all. XOR of the
// fingerprints of a set of keys digests the set whatever its order.
func (r Record) Fingerprint(key []byte, nowMS int64, applied VersionVector) uint64 {
	live := 0
	for i := range r.Entries {
		if r.Entries[i].Live(nowMS) {
			live++
		}
	}
	var (
		d   xxhash.Digest
		buf [64]byte
		any bool
	)
	d.Reset()
	// The layout decodes one way only: key and value lengths, and the
	// number of entries before the context's fixed-size dots. A record
	// with resets sets the count's top bit and follows it with theirs, and
	// an entry with a lineage sets its kind's top bit and follows it with
	// the origin, so records without either hash as they always did.
	start := func() {
		if !any {
			b := binary.BigEndian.AppendUint32(buf[:0], uint32(len(key)))
			d.Write(b)
			d.Write(key)
			if len(r.Resets) == 0 {
				d.Write(binary.BigEndian.AppendUint32(buf[:0], uint32(live)))
			} else {
				b = binary.BigEndian.AppendUint32(buf[:0], uint32(live)|1<<31)
				d.Write(binary.BigEndian.AppendUint32(b, uint32(len(r.Resets))))
			}
			any = true
		}
	}
	if len(r.Resets) > 0 {
		start()
	}
	for i := range r.Entries {
		e := &r.Entries[i]
		if !e.Live(nowMS) {
			continue
		}
		start()
		b := binary.BigEndian.AppendUint64(buf[:0], uint64(e.Dot.Node))
		b = binary.BigEndian.AppendUint64(b, e.Dot.Counter)
		b = binary.BigEndian.AppendUint64(b, uint64(e.TS))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Expiry))
		if e.Origin == 0 {
			b = append(b, byte(e.Kind))
		} else {
			b = binary.BigEndian.AppendUint64(append(b, byte(e.Kind)|1<<7), e.Origin)
		}
		b = binary.BigEndian.AppendUint64(b, e.Inc)
		b = binary.BigEndian.AppendUint64(b, e.Dec)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Value)))
		d.Write(b)
		d.Write(e.Value)
	}
	for _, z := range r.Resets {
		b := binary.BigEndian.AppendUint64(buf[:0], uint64(z.Node))
		b = binary.BigEndian.AppendUint64(b, z.Origin)
		b = binary.BigEndian.AppendUint64(b, z.Inc)
		d.Write(binary.BigEndian.AppendUint64(b, z.Dec))
	}
	dot := func(n NodeID, c uint64) {
		start()
		b := binary.BigEndian.AppendUint64(buf[:0], uint64(n))
		d.Write(binary.BigEndian.AppendUint64(b, c))
	}
	for _, e := range r.Context.VV {
		if e.Counter > applied.Get(e.Node) {
			dot(e.Node, e.Counter)
		}
	}
	for _, c := range r.Context.Cloud {
		if !applied.Covers(c) {
			dot(c.Node, c.Counter)
		}
	}
	if !any {
		return 0
	}
	if s := d.Sum64(); s != 0 {
		return s
	}
	return 1
}
