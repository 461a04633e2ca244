package store

import (
	"encoding/binary"
	"fmt"

	"github.com/upu/upu/crdt"
)

// Key prefixes; see doc.go for the layout.
const (
	prefixRecord = 'r'
	prefixLog    = 'l'
	prefixIndex  = 'x'
	prefixDead   = 'd'
	prefixMeta   = 'm'
	prefixSystem = 's'
)

const (
	metaApplied = 'a'
	metaHLC     = 'h'
	metaContact = 'c'
)

// appendRecordKey appends 'r'+key.
func appendRecordKey(dst, key []byte) []byte {
	return append(append(dst, prefixRecord), key...)
}

// appendSystemKey appends 's'+key.
func appendSystemKey(dst, key []byte) []byte {
	return append(append(dst, prefixSystem), key...)
}

// appendLogKey appends 'l'+origin+seq.
func appendLogKey(dst []byte, origin crdt.NodeID, seq uint64) []byte {
	dst = append(dst, prefixLog)
	dst = binary.BigEndian.AppendUint64(dst, uint64(origin))
	return binary.BigEndian.AppendUint64(dst, seq)
}

// parseLogKey is the inverse of appendLogKey.
func parseLogKey(k []byte) (crdt.NodeID, uint64, bool) {
	if len(k) != 17 || k[0] != prefixLog {
		return 0, 0, false
	}
	return crdt.NodeID(binary.BigEndian.Uint64(k[1:])), binary.BigEndian.Uint64(k[9:]), true
}

// appendIndexKey appends 'x'+ms+key.
func appendIndexKey(dst []byte, ms int64, key []byte) []byte {
	dst = append(dst, prefixIndex)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ms))
	return append(dst, key...)
}

// parseIndexKey returns the time and record key of an index key; key
// aliases k.
func parseIndexKey(k []byte) (int64, []byte, bool) {
	if len(k) < 10 || k[0] != prefixIndex {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(k[1:])), k[9:], true
}

// appendDeadKey appends 'd'+key.
func appendDeadKey(dst, key []byte) []byte {
	return append(append(dst, prefixDead), key...)
}

// parseDeadKey returns the record key of a dead-index key; key aliases k.
func parseDeadKey(k []byte) ([]byte, bool) {
	if len(k) < 2 || k[0] != prefixDead {
		return nil, false
	}
	return k[1:], true
}

func appendAppliedKey(dst []byte, origin crdt.NodeID) []byte {
	dst = append(dst, prefixMeta, metaApplied)
	return binary.BigEndian.AppendUint64(dst, uint64(origin))
}

var (
	hlcKey     = []byte{prefixMeta, metaHLC}
	contactKey = []byte{prefixMeta, metaContact}
)

// LogEntry is one delta of the replication log: the Seq-th delta that node
// Origin made.
//
// Delta is the delta's encoding (crdt.AppendRecord) as the log holds it, not
// the record: ReadLog copies it, replication puts it on the wire as it is,
// and the receiving store's ApplyRemote decodes it, once per hop.
type LogEntry struct {
	Origin crdt.NodeID
	Seq    uint64
	Key    []byte
	Delta  []byte
	ReqID  string
	TS     crdt.Timestamp
	// System says the entry writes a system key (see system.go), not data.
	System bool
}

// Record decodes the entry's delta.
func (e *LogEntry) Record() (crdt.Record, error) { return crdt.UnmarshalRecord(e.Delta) }

// logFormat is the first byte of a stored log entry; bump it when the
// layout changes. Format 1 had no flags byte; it is still read.
const (
	logFormat   byte = 2
	logFormatV1 byte = 1
)

// Log entry flags.
const logFlagSystem byte = 1

// appendLogHead appends the head of a log entry's value: format, flags,
// uvarint TS, uvarint length and key, uvarint length and request ID. The
// delta's encoding (crdt.AppendRecord) follows it to the end of the value.
// Origin and Seq are in the Badger key.
func appendLogHead(dst []byte, key []byte, reqID string, ts crdt.Timestamp, system bool) []byte {
	var flags byte
	if system {
		flags |= logFlagSystem
	}
	dst = append(dst, logFormat, flags)
	dst = binary.AppendUvarint(dst, uint64(ts))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(reqID)))
	return append(dst, reqID...)
}

// decodeLogValue fills e's other fields from a stored value, leaving the
// delta encoded; nothing in e aliases b.
func decodeLogValue(b []byte, e *LogEntry) error {
	bad := func(what string) error {
		return fmt.Errorf("%w: log entry %s", crdt.ErrBadEncoding, what)
	}
	var flags byte
	switch {
	case len(b) >= 2 && b[0] == logFormat:
		flags, b = b[1], b[2:]
	case len(b) >= 1 && b[0] == logFormatV1:
		b = b[1:]
	default:
		return bad("format")
	}
	if flags&^logFlagSystem != 0 {
		return bad("flags")
	}
	ts, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("timestamp")
	}
	b = b[n:]
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, false
		}
		f := b[n : n+int(l)]
		b = b[n+int(l):]
		return f, true
	}
	key, ok := field()
	if !ok {
		return bad("key")
	}
	reqID, ok := field()
	if !ok {
		return bad("request id")
	}
	if len(b) == 0 {
		return bad("delta")
	}
	// One allocation for key and delta; the delta stays encoded.
	buf := make([]byte, 0, len(key)+len(b))
	buf = append(append(buf, key...), b...)
	e.TS = crdt.Timestamp(ts)
	e.Key = buf[:len(key):len(key)]
	e.ReqID = string(reqID)
	e.Delta = buf[len(key):]
	e.System = flags&logFlagSystem != 0
	return nil
}
