package replication

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/upu/upu/internal/appendbuf"
	"github.com/upu/upu/replication/crdt"
	"github.com/upu/upu/store"
)

// MsgType says what a Message is. Values are part of the wire format: never
// renumber.
type MsgType uint8

const (
	// MsgProbe carries the sender's applied vector and asks for the
	// receiver's, which comes back in an Ack with ID 0. Both sides then
	// repair what the other lacks.
	MsgProbe MsgType = 1
	// MsgAck answers a probe (ID 0, the full applied vector) or a push or
	// snapshot chunk (its ID; for a push only the counters of the origins
	// it carried, for a chunk the full vector).
	MsgAck MsgType = 2
	// MsgPush carries log entries, each origin's in sequence order.
	MsgPush MsgType = 3
	// MsgSnap carries a chunk of a snapshot: records in key order. The last
	// chunk has Done set and Applied holding the vector the whole snapshot
	// covers; the receiver raises its applied vector to it.
	MsgSnap MsgType = 4
)

var msgTypeNames = [...]string{MsgProbe: "probe", MsgAck: "ack", MsgPush: "push", MsgSnap: "snapshot"}

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
	// ID numbers pushes and snapshot chunks per receiver; an Ack echoes
	// it. Zero in a probe and in its ack.
	ID uint64
	// Applied is the sender's applied vector (probe, ack) or the vector a
	// finished snapshot covers (the last snapshot chunk).
	Applied crdt.VersionVector
	// Entries are a push's log entries.
	Entries []store.LogEntry
	// Records are a snapshot chunk's records, in key order.
	Records []KeyRecord
	// Done marks a snapshot's last chunk.
	Done bool
}

// KeyRecord is one key's record in a snapshot.
type KeyRecord struct {
	Key    []byte
	Record crdt.Record
}

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
	maxItems     = 1 << 16 // entries, records, vector entries
	maxKeyLen    = 64 << 10
	maxReqIDLen  = 1 << 10
	entryFields  = 6
	recordFields = 2
)

// Map keys of the wire format.
const (
	keyType    = "t"
	keyID      = "i"
	keyApplied = "a"
	keyEntries = "e"
	keyRecords = "r"
	keyDone    = "d"
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

// EncodeMsgpack writes m as a map holding only the fields its type uses
// that are not zero: {t: type, i: id, a: [node, counter, …], e: [entry…],
// r: [record…], d: true}. An entry is [origin, seq, key, hlc, req_id,
// delta]; a record is [key, record]; deltas and records use crdt's
// encoding.
func (m *Message) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 1
	for _, present := range [...]bool{m.ID != 0, len(m.Applied) > 0, len(m.Entries) > 0, len(m.Records) > 0, m.Done} {
		if present {
			n++
		}
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeKey(enc, keyType); err != nil {
		return err
	}
	if err := enc.EncodeUint(uint64(m.Type)); err != nil {
		return err
	}
	if m.ID != 0 {
		if err := encodeKey(enc, keyID); err != nil {
			return err
		}
		if err := enc.EncodeUint(m.ID); err != nil {
			return err
		}
	}
	if len(m.Applied) > 0 {
		if err := encodeKey(enc, keyApplied); err != nil {
			return err
		}
		if err := encodeVector(enc, m.Applied); err != nil {
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
		if err := encodeKey(enc, keyDone); err != nil {
			return err
		}
		if err := enc.EncodeBool(true); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack is the inverse of EncodeMsgpack. It checks what it reads
// (vectors sorted without zero counters, entries with an origin, a
// sequence number and a key, records valid as crdt decodes them) and its
// errors wrap ErrBadMessage. It does not check the type: Step does.
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
		default:
			err = dec.Skip()
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
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
	for _, err := range [...]error{
		enc.EncodeArrayLen(entryFields),
		enc.EncodeUint(uint64(e.Origin)),
		enc.EncodeUint(e.Seq),
		enc.EncodeBytes(e.Key),
		enc.EncodeUint(uint64(e.TS)),
		enc.EncodeString(e.ReqID),
	} {
		if err != nil {
			return err
		}
	}
	return e.Delta.EncodeMsgpack(enc)
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
	if err := e.Delta.DecodeMsgpack(dec); err != nil {
		return err
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
	if err := enc.EncodeArrayLen(recordFields); err != nil {
		return err
	}
	if err := enc.EncodeBytes(r.Key); err != nil {
		return err
	}
	return r.Record.EncodeMsgpack(enc)
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

func (s *sizer) entry(e *store.LogEntry) int {
	s.n = 0
	_ = encodeEntry(s.enc, e)
	return s.n
}

func (s *sizer) record(r *KeyRecord) int {
	s.n = 0
	_ = encodeKeyRecord(s.enc, r)
	return s.n
}
