package crdt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/upu/upu/internal/appendbuf"
)

// Records and contexts are encoded by hand with msgpack's low-level calls:
// they are on every read and write, and reflection would cost several
// allocations per entry.

// recordFormat is the first byte of an encoded record; bump it when the
// layout changes so stored data can be migrated. Format 2 added entry
// lineages, base entries and resets; records of format 1, which stores
// still hold, decode as records without them.
const (
	recordFormat       byte = 2
	recordFormatLegacy byte = 1
)

// layout is how a record is laid out after its format byte: legacy (format
// 1: an array header of 2, entries of 8 fields), current (3 and 9, resets
// last), or either, told apart by the array header, inside msgpack
// messages, which carry no format byte.
type layout uint8

const (
	layoutEither layout = iota
	layoutLegacy
	layoutCurrent
)

// AppendRecord appends r's binary encoding to dst.
func AppendRecord(dst []byte, r Record) []byte {
	w := appendbuf.Writer{B: append(dst, recordFormat)}
	enc := msgpack.GetEncoder()
	enc.Reset(&w)
	// Writes to a slice cannot fail.
	_ = encodeRecord(enc, &r)
	msgpack.PutEncoder(enc)
	return w.B
}

// UnmarshalRecord decodes a record made by AppendRecord. The result does not
// alias b.
func UnmarshalRecord(b []byte) (Record, error) {
	var l layout
	switch {
	case len(b) > 0 && b[0] == recordFormat:
		l = layoutCurrent
	case len(b) > 0 && b[0] == recordFormatLegacy:
		l = layoutLegacy
	default:
		return Record{}, fmt.Errorf("%w: record format", ErrBadEncoding)
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	rd := bytes.NewReader(b[1:])
	dec.Reset(rd)
	var r Record
	if err := decodeRecord(dec, &r, l); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	if rd.Len() != 0 {
		return Record{}, fmt.Errorf("%w: %d bytes after the record", ErrBadEncoding, rd.Len())
	}
	return r, nil
}

// EncodeMsgpack lets a Record travel inside msgpack messages.
func (r *Record) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeRecord(enc, r) }

// DecodeMsgpack is the inverse of EncodeMsgpack; it validates what it reads,
// and its errors wrap ErrBadEncoding. It reads the legacy layout too, which
// peers not yet upgraded send.
func (r *Record) DecodeMsgpack(dec *msgpack.Decoder) error {
	if err := decodeRecord(dec, r, layoutEither); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	return nil
}

// EncodeMsgpack lets a Context travel inside msgpack messages.
func (c *Context) EncodeMsgpack(enc *msgpack.Encoder) error { return encodeContext(enc, c) }

// DecodeMsgpack is the inverse of EncodeMsgpack; it validates what it reads,
// and its errors wrap ErrBadEncoding.
func (c *Context) DecodeMsgpack(dec *msgpack.Decoder) error {
	if err := decodeContext(dec, c); err != nil {
		return fmt.Errorf("%w: context: %v", ErrBadEncoding, err)
	}
	return nil
}

// tokenKeyHash binds a context token to its key, so a token handed back with
// the wrong key is refused instead of superseding writes it never saw.
func tokenKeyHash(key []byte) uint64 {
	h := fnv.New64a()
	h.Write(key)
	return h.Sum64()
}

// EncodeToken returns the opaque token a client gets from a read of key and
// hands back with a write to the same key: the key's hash, then the context.
func EncodeToken(key []byte, c Context) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 32), tokenKeyHash(key))
	w := appendbuf.Writer{B: b}
	enc := msgpack.GetEncoder()
	enc.Reset(&w)
	_ = encodeContext(enc, &c)
	msgpack.PutEncoder(enc)
	return w.B
}

// DecodeToken parses a token from EncodeToken for key. A token made for
// another key is an error wrapping ErrBadEncoding.
func DecodeToken(key, b []byte) (Context, error) {
	if len(b) < 8 {
		return Context{}, fmt.Errorf("%w: context token too short", ErrBadEncoding)
	}
	if binary.BigEndian.Uint64(b) != tokenKeyHash(key) {
		return Context{}, fmt.Errorf("%w: context token belongs to another key", ErrBadEncoding)
	}
	return DecodeContext(b[8:])
}

// EncodeContext returns the opaque token a client gets from a read and hands
// back with a write.
func EncodeContext(c Context) []byte {
	w := appendbuf.Writer{}
	enc := msgpack.GetEncoder()
	enc.Reset(&w)
	_ = encodeContext(enc, &c)
	msgpack.PutEncoder(enc)
	return w.B
}

// DecodeContext parses a token from EncodeContext. Tokens come from clients,
// so everything is checked.
func DecodeContext(b []byte) (Context, error) {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	rd := bytes.NewReader(b)
	dec.Reset(rd)
	var c Context
	if err := decodeContext(dec, &c); err != nil {
		return Context{}, fmt.Errorf("%w: context: %v", ErrBadEncoding, err)
	}
	if rd.Len() != 0 {
		return Context{}, fmt.Errorf("%w: %d bytes after the context", ErrBadEncoding, rd.Len())
	}
	return c, nil
}

const (
	recordFields       = 3
	recordFieldsLegacy = 2
	entryFields        = 9
	entryFieldsLegacy  = 8
	// maxItems bounds entry, dot and reset counts in decoded input.
	maxItems = 1 << 16
)

// encodeRecord writes the current layout: a header of 3, the entries, the
// context and the resets.
func encodeRecord(enc *msgpack.Encoder, r *Record) error {
	if err := enc.EncodeArrayLen(recordFields); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(r.Entries)); err != nil {
		return err
	}
	for i := range r.Entries {
		e := &r.Entries[i]
		for _, err := range [...]error{
			enc.EncodeArrayLen(entryFields),
			enc.EncodeUint(uint64(e.Dot.Node)),
			enc.EncodeUint(e.Dot.Counter),
			enc.EncodeUint(uint64(e.TS)),
			enc.EncodeInt(e.Expiry),
			enc.EncodeUint(uint64(e.Kind)),
			enc.EncodeBytes(e.Value),
			enc.EncodeUint(e.Inc),
			enc.EncodeUint(e.Dec),
			enc.EncodeUint(e.Origin),
		} {
			if err != nil {
				return err
			}
		}
	}
	if err := encodeContext(enc, &r.Context); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(4 * len(r.Resets)); err != nil {
		return err
	}
	for _, z := range r.Resets {
		for _, err := range [...]error{
			enc.EncodeUint(uint64(z.Node)),
			enc.EncodeUint(z.Origin),
			enc.EncodeUint(z.Inc),
			enc.EncodeUint(z.Dec),
		} {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func decodeRecord(dec *msgpack.Decoder, r *Record, l layout) error {
	head, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	switch {
	case head == recordFields && l != layoutLegacy:
		l = layoutCurrent
	case head == recordFieldsLegacy && l != layoutCurrent:
		l = layoutLegacy
	default:
		return fmt.Errorf("record array of %d", head)
	}
	fields, maxKind := entryFields, KindBase
	if l == layoutLegacy {
		fields, maxKind = entryFieldsLegacy, KindCount
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < 0 || n > maxItems {
		return fmt.Errorf("bad entry count %d", n)
	}
	// Grow as entries arrive rather than trusting the count: a few bytes of
	// hostile input must not allocate megabytes.
	r.Entries = make([]Entry, 0, min(n, 16))
	for i := range n {
		r.Entries = append(r.Entries, Entry{})
		e := &r.Entries[i]
		if err := expectArray(dec, fields); err != nil {
			return err
		}
		var node, ts, kind uint64
		for _, err := range [...]error{
			decUint(dec, &node),
			decUint(dec, &e.Dot.Counter),
			decUint(dec, &ts),
			decInt(dec, &e.Expiry),
			decUint(dec, &kind),
			decBytes(dec, &e.Value),
			decUint(dec, &e.Inc),
			decUint(dec, &e.Dec),
		} {
			if err != nil {
				return err
			}
		}
		if l == layoutCurrent {
			if err := decUint(dec, &e.Origin); err != nil {
				return err
			}
		}
		if kind > uint64(maxKind) {
			return fmt.Errorf("bad entry kind %d", kind)
		}
		e.Dot.Node, e.TS, e.Kind = NodeID(node), Timestamp(ts), Kind(kind)
		if e.Dot.Counter == 0 {
			// Counters start at 1; every context covers a zero dot.
			return fmt.Errorf("entry with a zero counter")
		}
		if i > 0 && compareDots(r.Entries[i-1].Dot, e.Dot) >= 0 {
			return fmt.Errorf("entries out of order")
		}
		// A lineage starts at an earlier dot of the entry's node.
		if e.Origin != 0 && (e.Kind != KindCount || e.Origin > e.Dot.Counter) {
			return fmt.Errorf("entry %s with lineage %d", e.Dot, e.Origin)
		}
	}
	if err := decodeContext(dec, &r.Context); err != nil {
		return err
	}
	if l == layoutCurrent {
		if err := decodeResets(dec, &r.Resets); err != nil {
			return err
		}
	}
	for i := range r.Entries {
		if !r.Context.Covers(r.Entries[i].Dot) {
			return fmt.Errorf("entry %s outside the context", r.Entries[i].Dot)
		}
	}
	return nil
}

// decodeResets reads resets sorted by node and origin, none zero (the
// normal form every operation keeps).
func decodeResets(dec *msgpack.Decoder, out *[]Reset) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < 0 || n%4 != 0 || n > 4*maxItems {
		return fmt.Errorf("bad reset list length %d", n)
	}
	if n == 0 {
		return nil
	}
	rs := make([]Reset, 0, min(n/4, 16))
	for range n / 4 {
		var node uint64
		var z Reset
		for _, err := range [...]error{decUint(dec, &node), decUint(dec, &z.Origin), decUint(dec, &z.Inc), decUint(dec, &z.Dec)} {
			if err != nil {
				return err
			}
		}
		z.Node = NodeID(node)
		if z.Inc == 0 && z.Dec == 0 {
			return fmt.Errorf("zero reset of %s", z.Node)
		}
		if k := len(rs); k > 0 && compareLineages(rs[k-1].Node, rs[k-1].Origin, z.Node, z.Origin) >= 0 {
			return fmt.Errorf("resets out of order")
		}
		rs = append(rs, z)
	}
	*out = rs
	return nil
}

func encodeContext(enc *msgpack.Encoder, c *Context) error {
	if err := enc.EncodeArrayLen(2 * len(c.VV)); err != nil {
		return err
	}
	for _, e := range c.VV {
		if err := enc.EncodeUint(uint64(e.Node)); err != nil {
			return err
		}
		if err := enc.EncodeUint(e.Counter); err != nil {
			return err
		}
	}
	if err := enc.EncodeArrayLen(2 * len(c.Cloud)); err != nil {
		return err
	}
	for _, d := range c.Cloud {
		if err := enc.EncodeUint(uint64(d.Node)); err != nil {
			return err
		}
		if err := enc.EncodeUint(d.Counter); err != nil {
			return err
		}
	}
	return nil
}

func decodeContext(dec *msgpack.Decoder, c *Context) error {
	pairs, err := decodePairs(dec)
	if err != nil {
		return err
	}
	var vv VersionVector
	if len(pairs) > 0 {
		vv = make(VersionVector, 0, len(pairs))
	}
	for i, p := range pairs {
		if p.Counter == 0 || (i > 0 && pairs[i-1].Node >= p.Node) {
			return fmt.Errorf("version vector not sorted or has zero counters")
		}
		vv = append(vv, VVEntry(p))
	}
	cloud, err := decodePairs(dec)
	if err != nil {
		return err
	}
	*c = normalize(vv, cloud)
	return nil
}

func decodePairs(dec *msgpack.Decoder) ([]Dot, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n%2 != 0 || n > 2*maxItems {
		return nil, fmt.Errorf("bad pair list length %d", n)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]Dot, 0, min(n/2, 16))
	for range n / 2 {
		var node, counter uint64
		if err := decUint(dec, &node); err != nil {
			return nil, err
		}
		if err := decUint(dec, &counter); err != nil {
			return nil, err
		}
		out = append(out, Dot{NodeID(node), counter})
	}
	return out, nil
}

func expectArray(dec *msgpack.Decoder, n int) error {
	got, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("array of %d, want %d", got, n)
	}
	return nil
}

func decUint(dec *msgpack.Decoder, v *uint64) (err error) {
	*v, err = dec.DecodeUint64()
	return err
}

func decInt(dec *msgpack.Decoder, v *int64) (err error) {
	*v, err = dec.DecodeInt64()
	return err
}

// bytesChunk is the most decBytes allocates before the input shows it holds
// that much.
const bytesChunk = 64 << 10

// decBytes decodes a byte string. msgpack's DecodeBytes allocates the length
// the input claims, up to 4 GiB for a six-byte input; this grows the buffer
// only as the bytes arrive.
func decBytes(dec *msgpack.Decoder, v *[]byte) error {
	n, err := dec.DecodeBytesLen()
	switch {
	case err != nil:
		return err
	case n == -1:
		*v = nil
		return nil
	case n < 0:
		return fmt.Errorf("bad byte string length %d", n)
	}
	b := make([]byte, min(n, bytesChunk))
	if err := dec.ReadFull(b); err != nil {
		return err
	}
	for len(b) < n {
		have := len(b)
		b = append(b, make([]byte, min(n-have, have))...)
		if err := dec.ReadFull(b[have:]); err != nil {
			return err
		}
	}
	*v = b
	return nil
}
