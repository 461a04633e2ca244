package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/appendbuf"
	"github.com/upu/upu/store"
)

// MsgType says what a Message is. Values are part of the wire format: never
// renumber.
type MsgType uint8

const (
	// MsgProbe carries the sender's applied vector and asks for the
	// receiver's, which comes back in an Ack with ID 0. Both sides then
	// repair what the other lacks. With Resync set it also asks the
	// receiver for a full digest sync (see Machine.Resync).
	MsgProbe MsgType = 1
	// MsgAck answers a probe (ID 0, the full applied vector; Resyncing set
	// when the sender is resyncing and so serves no resync request) or a
	// push or sync chunk (its ID; for a push only the counters of the
	// origins it carried, for a chunk the full vector). Probes and acks of
	// a node taking a digest sync carry its Fence.
	MsgAck MsgType = 2
	// MsgPush carries log entries, each origin's in sequence order.
	MsgPush MsgType = 3
	// MsgSnap carries a chunk of the digest sync that the digest request
	// Sync began: the sender's records of the differing buckets (Bits,
	// Buckets) in the key range [Start, End), in key order, and Seen, as in
	// the request. The receiver merges them under Seen and drops, in the
	// same way, its own keys of that range and those buckets that the chunk
	// lacks. The last chunk has Done set and Applied holding the vector the
	// sync covers; the receiver raises its applied vector to it.
	MsgSnap MsgType = 4
	// MsgDigestReq begins a digest sync: it asks for the receiver's bucket
	// digests under Bits, and carries Seen, the sender's applied vector
	// then. Resync, when set, names the resync request the sync answers.
	MsgDigestReq MsgType = 5
	// MsgDigest answers a MsgDigestReq (its ID) with Digests, one per
	// bucket. Without any it refuses: the answer to a digest request means
	// the receiver is taking another sync (ask again later), the answer to
	// a chunk (ID: the chunk's Sync) that it no longer takes that sync
	// (start over).
	MsgDigest MsgType = 6
)

var msgTypeNames = [...]string{
	MsgProbe: "probe", MsgAck: "ack", MsgPush: "push", MsgSnap: "sync-chunk",
	MsgDigestReq: "digest-request", MsgDigest: "digest",
}

// String returns the type's name as used in logs (the "op" field).
func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("msgtype(%d)", uint8(t))
}

// Message is one replication message between two members of a domain. It
// is a tagged union: Type says which fields mean something. Messages are
// one-way; an ack is a message of its own, matched by ID.
//
// On the wire a Message is a msgpack map with short keys (see
// EncodeMsgpack); a missing key is the zero value and unknown keys are
// skipped, so fields can be added without a version bump.
type Message struct {
	Type MsgType
	// ID numbers pushes, sync chunks and digest requests per receiver; an
	// Ack or a Digest echoes it. Zero in a probe and in its ack.
	ID uint64
	// Applied is the sender's applied vector (probe, ack) or the vector a
	// finished sync covers (the last chunk).
	Applied crdt.VersionVector
	// Entries are a push's log entries.
	Entries []store.LogEntry
	// Records are a sync chunk's records, in key order.
	Records []KeyRecord
	// Done marks a sync's last chunk.
	Done bool
	// Bits is log2 of the number of digest buckets (digest request, chunk).
	Bits uint8
	// Digests are the receiver's bucket digests (MsgDigest): XORs of
	// record fingerprints, 1<<Bits of them.
	Digests []uint64
	// Start and End bound the keys a chunk covers, [Start, End); an empty
	// Start is the beginning of the key space, an empty End its end.
	Start, End []byte
	// Buckets is a chunk's set of differing buckets, a bitmap: bucket b is
	// bit b%8 of byte b/8.
	Buckets []byte
	// Seen is the sync sender's applied vector when it asked for the
	// digests, its own origin and the receiver's included (digest request,
	// every chunk).
	Seen crdt.VersionVector
	// Sync is the ID of the digest request that began a chunk's sync.
	Sync uint64
	// Fence, in a probe or ack, is the Seen vector of the digest sync the
	// sender is taking: until it ends, the sender applies no log entry
	// that the vector covers (the sync's end covers them), so pushers hold
	// them back.
	Fence crdt.VersionVector
	// Resync is a resync request's ID: in a probe, the request; in a
	// digest request or chunk, the request the sync answers.
	Resync uint64
	// Resyncing, in the ack of a probe, says the sender is resyncing.
	Resyncing bool
}

// KeyRecord is one key's record in a sync chunk.
type KeyRecord = store.KeyRecord

// Errors of decoding and of Step.
var (
	// ErrBadMessage wraps every decoding error of a Message.
	ErrBadMessage = errors.New("upu: bad replication message")
	// ErrUnknownMessage is returned by Step for a message type it does
	// not know.
	ErrUnknownMessage = errors.New("upu: unknown replication message")
)

// Limits of decoded input. They bound what a hostile or corrupt message
// can make the decoder allocate; every legitimate message is well inside.
const (
	maxItems     = 1 << 16 // entries, records, vector entries, digests
	maxKeyLen    = 64 << 10
	maxReqIDLen  = 1 << 10
	maxBits      = store.MaxDigestBits
	entryFields  = 6
	recordFields = 2
)

// Map keys of the wire format.
const (
	keyType      = "t"
	keyID        = "i"
	keyApplied   = "a"
	keyEntries   = "e"
	keyRecords   = "r"
	keyDone      = "d"
	keyBits      = "b"
	keyDigests   = "g"
	keyStart     = "s"
	keyEnd       = "n"
	keyBuckets   = "k"
	keySeen      = "v"
	keyResync    = "y"
	keyResyncing = "x"
	keySync      = "q"
	keyFence     = "f"
)

// AppendMessage appends m's msgpack encoding to dst.
func AppendMessage(dst []byte, m *Message) []byte {
	w := appendbuf.Writer{B: dst}
	enc := msgpack.GetEncoder()
	enc.Reset(&w)
	_ = m.EncodeMsgpack(enc) // writes to a slice cannot fail
	msgpack.PutEncoder(enc)
	return w.B
}

// UnmarshalMessage decodes a message made by AppendMessage. The result does
// not alias b. Errors wrap ErrBadMessage.
func UnmarshalMessage(b []byte) (Message, error) {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	rd := bytes.NewReader(b)
	dec.Reset(rd)
	var m Message
	if err := m.DecodeMsgpack(dec); err != nil {
		return Message{}, err
	}
	if rd.Len() != 0 {
		return Message{}, fmt.Errorf("%w: %d bytes after the message", ErrBadMessage, rd.Len())
	}
	return m, nil
}

// EncodeMsgpack writes m as a map holding only the fields that are not
// zero: {t: type, i: id, a: [node, counter, …], e: [entry…], r: [record…],
// d: true, b: bits, g: digests, s: start, n: end, k: buckets, v: seen,
// y: resync, x: true, q: sync, f: fence}. An entry is [origin, seq, key, hlc,
// req_id, delta], the delta a bin holding the encoding the origin's log
// stores (crdt.AppendRecord, its first byte the record format), written as
// it is read; a record is [key, record] in crdt's msgpack encoding; digests
// are one bin of 8 bytes (big-endian) per digest.
func (m *Message) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 1
	for _, present := range [...]bool{
		m.ID != 0, len(m.Applied) > 0, len(m.Entries) > 0, len(m.Records) > 0, m.Done,
		m.Bits != 0, len(m.Digests) > 0, len(m.Start) > 0, len(m.End) > 0, len(m.Buckets) > 0,
		len(m.Seen) > 0, m.Resync != 0, m.Resyncing, m.Sync != 0, len(m.Fence) > 0,
	} {
		if present {
			n++
		}
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeUintField(enc, keyType, uint64(m.Type)); err != nil {
		return err
	}
	if m.ID != 0 {
		if err := encodeUintField(enc, keyID, m.ID); err != nil {
			return err
		}
	}
	if len(m.Applied) > 0 {
		if err := encodeVectorField(enc, keyApplied, m.Applied); err != nil {
			return err
		}
	}
	if len(m.Entries) > 0 {
		if err := encodeKey(enc, keyEntries); err != nil {
			return err
		}
		if err := enc.EncodeArrayLen(len(m.Entries)); err != nil {
			return err
		}
		for i := range m.Entries {
			if err := encodeEntry(enc, &m.Entries[i]); err != nil {
				return err
			}
		}
	}
	if len(m.Records) > 0 {
		if err := encodeKey(enc, keyRecords); err != nil {
			return err
		}
		if err := enc.EncodeArrayLen(len(m.Records)); err != nil {
			return err
		}
		for i := range m.Records {
			if err := encodeKeyRecord(enc, &m.Records[i]); err != nil {
				return err
			}
		}
	}
	if m.Done {
		if err := encodeTrueField(enc, keyDone); err != nil {
			return err
		}
	}
	if m.Bits != 0 {
		if err := encodeUintField(enc, keyBits, uint64(m.Bits)); err != nil {
			return err
		}
	}
	if len(m.Digests) > 0 {
		if err := encodeKey(enc, keyDigests); err != nil {
			return err
		}
		if err := enc.EncodeBytesLen(8 * len(m.Digests)); err != nil {
			return err
		}
		var b [8]byte
		for _, d := range m.Digests {
			binary.BigEndian.PutUint64(b[:], d)
			if _, err := enc.Writer().Write(b[:]); err != nil {
				return err
			}
		}
	}
	for _, f := range [...]struct {
		key string
		b   []byte
	}{{keyStart, m.Start}, {keyEnd, m.End}, {keyBuckets, m.Buckets}} {
		if len(f.b) > 0 {
			if err := encodeKey(enc, f.key); err != nil {
				return err
			}
			if err := enc.EncodeBytes(f.b); err != nil {
				return err
			}
		}
	}
	if len(m.Seen) > 0 {
		if err := encodeVectorField(enc, keySeen, m.Seen); err != nil {
			return err
		}
	}
	if m.Resync != 0 {
		if err := encodeUintField(enc, keyResync, m.Resync); err != nil {
			return err
		}
	}
	if m.Resyncing {
		if err := encodeTrueField(enc, keyResyncing); err != nil {
			return err
		}
	}
	if m.Sync != 0 {
		if err := encodeUintField(enc, keySync, m.Sync); err != nil {
			return err
		}
	}
	if len(m.Fence) > 0 {
		if err := encodeVectorField(enc, keyFence, m.Fence); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack is the inverse of EncodeMsgpack. It checks what it reads
// (vectors sorted without zero counters, entries with an origin, a
// sequence number, a key and a delta, records valid as crdt decodes them,
// sizes within bounds) and its errors wrap ErrBadMessage. An entry's delta
// stays encoded: the store checks it as it applies it (store.ApplyRemote). It does not check the
// type, nor whether the fields fit it: Step does.
func (m *Message) DecodeMsgpack(dec *msgpack.Decoder) error {
	*m = Message{}
	if err := m.decode(dec); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return nil
}

func (m *Message) decode(dec *msgpack.Decoder) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 || n > 64 {
		return fmt.Errorf("bad field count %d", n)
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return err
		}
		switch key {
		case keyType:
			var t uint64
			if err := decUint(dec, &t); err != nil {
				return err
			}
			if t > 0xff {
				return fmt.Errorf("bad type %d", t)
			}
			m.Type = MsgType(t)
		case keyID:
			err = decUint(dec, &m.ID)
		case keyApplied:
			m.Applied, err = decodeVector(dec)
		case keyEntries:
			m.Entries, err = decodeEntries(dec)
		case keyRecords:
			m.Records, err = decodeRecords(dec)
		case keyDone:
			m.Done, err = dec.DecodeBool()
		case keyBits:
			var b uint64
			if err = decUint(dec, &b); err == nil && b > maxBits {
				err = fmt.Errorf("%d digest bits, at most %d", b, maxBits)
			}
			m.Bits = uint8(b)
		case keyDigests:
			m.Digests, err = decodeDigests(dec)
		case keyStart:
			m.Start, err = decBytes(dec, maxKeyLen)
		case keyEnd:
			m.End, err = decBytes(dec, maxKeyLen)
		case keyBuckets:
			m.Buckets, err = decBytes(dec, bitmapLen(maxBits))
		case keySeen:
			m.Seen, err = decodeVector(dec)
		case keyResync:
			err = decUint(dec, &m.Resync)
		case keyResyncing:
			m.Resyncing, err = dec.DecodeBool()
		case keySync:
			err = decUint(dec, &m.Sync)
		case keyFence:
			m.Fence, err = decodeVector(dec)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

func encodeUintField(enc *msgpack.Encoder, key string, v uint64) error {
	if err := encodeKey(enc, key); err != nil {
		return err
	}
	return enc.EncodeUint(v)
}

func encodeTrueField(enc *msgpack.Encoder, key string) error {
	if err := encodeKey(enc, key); err != nil {
		return err
	}
	return enc.EncodeBool(true)
}

func encodeVectorField(enc *msgpack.Encoder, key string, v crdt.VersionVector) error {
	if err := encodeKey(enc, key); err != nil {
		return err
	}
	return encodeVector(enc, v)
}

func encodeKey(enc *msgpack.Encoder, k string) error { return enc.EncodeString(k) }

// encodeVector writes a version vector as a flat array of node, counter
// pairs: half the size of a map per entry.
func encodeVector(enc *msgpack.Encoder, v crdt.VersionVector) error {
	if err := enc.EncodeArrayLen(2 * len(v)); err != nil {
		return err
	}
	for _, e := range v {
		if err := enc.EncodeUint(uint64(e.Node)); err != nil {
			return err
		}
		if err := enc.EncodeUint(e.Counter); err != nil {
			return err
		}
	}
	return nil
}

func decodeVector(dec *msgpack.Decoder) (crdt.VersionVector, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n%2 != 0 || n > 2*maxItems {
		return nil, fmt.Errorf("bad vector length %d", n)
	}
	if n == 0 {
		return nil, nil
	}
	v := make(crdt.VersionVector, 0, min(n/2, 64))
	for range n / 2 {
		var node, counter uint64
		if err := decUint(dec, &node); err != nil {
			return nil, err
		}
		if err := decUint(dec, &counter); err != nil {
			return nil, err
		}
		if counter == 0 || (len(v) > 0 && v[len(v)-1].Node >= crdt.NodeID(node)) {
			return nil, errors.New("vector not sorted or has a zero counter")
		}
		v = append(v, crdt.VVEntry{Node: crdt.NodeID(node), Counter: counter})
	}
	return v, nil
}

func encodeEntry(enc *msgpack.Encoder, e *store.LogEntry) error {
	fields := entryFields
	if e.System {
		fields++ // the flag, after the delta: older decoders skip it
	}
	for _, err := range [...]error{
		enc.EncodeArrayLen(fields),
		enc.EncodeUint(uint64(e.Origin)),
		enc.EncodeUint(e.Seq),
		enc.EncodeBytes(e.Key),
		enc.EncodeUint(uint64(e.TS)),
		enc.EncodeString(e.ReqID),
		enc.EncodeBytes(e.Delta),
	} {
		if err != nil {
			return err
		}
	}
	if !e.System {
		return nil
	}
	return enc.EncodeBool(true)
}

// entrySize is the length of encodeEntry's output, from the fields'
// lengths: batching measures entries without encoding them.
func entrySize(e *store.LogEntry) int {
	n := 1 + uintSize(uint64(e.Origin)) + uintSize(e.Seq) + binSize(len(e.Key)) +
		uintSize(uint64(e.TS)) + strSize(len(e.ReqID)) + binSize(len(e.Delta))
	if e.System {
		n++ // the flag
	}
	return n
}

// uintSize is the length of msgpack's encoding of v (EncodeUint).
func uintSize(v uint64) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<8:
		return 2
	case v < 1<<16:
		return 3
	case v < 1<<32:
		return 5
	}
	return 9
}

// binSize is the length of msgpack's encoding of n bytes (EncodeBytes of a
// non-nil slice).
func binSize(n int) int {
	switch {
	case n < 1<<8:
		return 2 + n
	case n < 1<<16:
		return 3 + n
	}
	return 5 + n
}

// strSize is the length of msgpack's encoding of a string of n bytes.
func strSize(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n < 1<<8:
		return 2 + n
	case n < 1<<16:
		return 3 + n
	}
	return 5 + n
}

func decodeEntries(dec *msgpack.Decoder) ([]store.LogEntry, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > maxItems {
		return nil, fmt.Errorf("bad entry count %d", n)
	}
	if n == 0 {
		return nil, nil
	}
	// Grow as entries arrive rather than trusting the count.
	out := make([]store.LogEntry, 0, min(n, 64))
	for i := range n {
		out = append(out, store.LogEntry{})
		if err := decodeEntry(dec, &out[i]); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return out, nil
}

func decodeEntry(dec *msgpack.Decoder, e *store.LogEntry) error {
	fields, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if fields < entryFields || fields > 64 {
		return fmt.Errorf("array of %d fields, want at least %d", fields, entryFields)
	}
	var origin, ts uint64
	if err := decUint(dec, &origin); err != nil {
		return err
	}
	if err := decUint(dec, &e.Seq); err != nil {
		return err
	}
	if e.Key, err = decKey(dec); err != nil {
		return err
	}
	if err := decUint(dec, &ts); err != nil {
		return err
	}
	if e.ReqID, err = dec.DecodeString(); err != nil {
		return err
	}
	if len(e.ReqID) > maxReqIDLen {
		return fmt.Errorf("request id of %d bytes", len(e.ReqID))
	}
	// Left encoded: the receiving store decodes it as it applies it.
	if e.Delta, err = decGrowing(dec); err != nil {
		return err
	}
	if len(e.Delta) == 0 {
		return errors.New("entry without a delta")
	}
	if fields > entryFields {
		if e.System, err = dec.DecodeBool(); err != nil {
			return fmt.Errorf("system flag: %w", err)
		}
		fields--
	}
	for range fields - entryFields {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	if origin == 0 || e.Seq == 0 {
		return errors.New("entry without an origin or a sequence number")
	}
	e.Origin, e.TS = crdt.NodeID(origin), crdt.Timestamp(ts)
	return nil
}

func encodeKeyRecord(enc *msgpack.Encoder, r *KeyRecord) error {
	fields := recordFields
	if r.System {
		fields++ // the flag, after the record: older decoders skip it
	}
	if err := enc.EncodeArrayLen(fields); err != nil {
		return err
	}
	if err := enc.EncodeBytes(r.Key); err != nil {
		return err
	}
	if err := r.Record.EncodeMsgpack(enc); err != nil || !r.System {
		return err
	}
	return enc.EncodeBool(true)
}

func decodeRecords(dec *msgpack.Decoder) ([]KeyRecord, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > maxItems {
		return nil, fmt.Errorf("bad record count %d", n)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]KeyRecord, 0, min(n, 64))
	for i := range n {
		out = append(out, KeyRecord{})
		r := &out[i]
		fields, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if fields < recordFields || fields > 64 {
			return nil, fmt.Errorf("record %d: array of %d fields, want at least %d", i, fields, recordFields)
		}
		if r.Key, err = decKey(dec); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if err := r.Record.DecodeMsgpack(dec); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if fields > recordFields {
			if r.System, err = dec.DecodeBool(); err != nil {
				return nil, fmt.Errorf("record %d: system flag: %w", i, err)
			}
			fields--
		}
		for range fields - recordFields {
			if err := dec.Skip(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func decUint(dec *msgpack.Decoder, v *uint64) (err error) {
	*v, err = dec.DecodeUint64()
	return err
}

// decKey reads a non-empty key of at most maxKeyLen bytes, allocating no
// more than the bound however long the input claims it is.
func decKey(dec *msgpack.Decoder) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n <= 0 || n > maxKeyLen {
		return nil, fmt.Errorf("key of %d bytes", n)
	}
	b := make([]byte, n)
	if err := dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

// decBytes reads a byte string of at most max bytes, allocating no more
// than the bound however long the input claims it is. Empty is nil.
func decBytes(dec *msgpack.Decoder, max int) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > max {
		return nil, fmt.Errorf("%d bytes, at most %d", n, max)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if err := dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

// bytesChunk is the most decGrowing allocates before the input shows it
// holds that much.
const bytesChunk = 64 << 10

// decGrowing reads a byte string of any length, growing its buffer only as
// the bytes arrive, so that a length the input only claims allocates
// little. Nil is nil.
func decGrowing(dec *msgpack.Decoder) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	switch {
	case err != nil:
		return nil, err
	case n == -1:
		return nil, nil
	case n < 0:
		return nil, fmt.Errorf("bad byte string length %d", n)
	}
	b := make([]byte, min(n, bytesChunk))
	if err := dec.ReadFull(b); err != nil {
		return nil, err
	}
	for len(b) < n {
		have := len(b)
		b = append(b, make([]byte, min(n-have, have))...)
		if err := dec.ReadFull(b[have:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeDigests(dec *msgpack.Decoder) ([]uint64, error) {
	b, err := decBytes(dec, 8<<maxBits)
	if err != nil {
		return nil, err
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("digests of %d bytes, not a multiple of 8", len(b))
	}
	if len(b) == 0 {
		return nil, nil
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// bitmapLen is the size of a bitmap of 1<<bits buckets.
func bitmapLen(bits uint) int { return (1<<bits + 7) / 8 }

// sizer measures encodings without keeping them: the Machine bounds
// batches and counts bytes sent by what the transport will write.
type sizer struct {
	n   int
	enc *msgpack.Encoder
}

func newSizer() *sizer {
	s := &sizer{enc: msgpack.NewEncoder(nil)}
	s.enc.Reset(s)
	return s
}

func (s *sizer) Write(p []byte) (int, error)       { s.n += len(p); return len(p), nil }
func (s *sizer) WriteByte(byte) error              { s.n++; return nil }
func (s *sizer) WriteString(p string) (int, error) { s.n += len(p); return len(p), nil }

func (s *sizer) message(m *Message) int {
	s.n = 0
	_ = m.EncodeMsgpack(s.enc)
	return s.n
}

func (s *sizer) record(r *KeyRecord) int {
	s.n = 0
	_ = encodeKeyRecord(s.enc, r)
	return s.n
}
