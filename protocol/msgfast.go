package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// The hot messages — everything a get, set, del or incr sends, and Error —
// are encoded and decoded by hand here, the one place this package writes
// msgpack itself. The project's rule is to use the library except on a hot
// path where it costs measurable speed, and it does here: its reflection
// (field iteration, omitempty checks, the type-cache lookup) and per-call
// allocations were a top cost per request on the server and on the clients.
// BenchmarkAppendFrame and BenchmarkDecodeBody measure the difference.
//
// The encoders produce exactly the bytes the library produces with
// UseCompactInts(true): fields in declaration order, omitempty fields left
// out when zero, a nil []byte as msgpack nil, integers in their smallest
// format. The decoders accept exactly what the library accepts when
// decoding into these structs — keys in any order, unknown keys skipped,
// any integer width, str or bin for both strings and bytes, nil for zero, a
// Sibling as a map, an array of its five fields or nil — and give the same
// values, down to empty versus nil slices. The tests check both against the
// library. Every other message, and a nil pointer, goes to the library.
// A field added to a hot message must be added here too, or it is lost;
// TestHotFieldsCoverStructs is the reminder.

// appendBodyFast appends msg's body to b if msg is a hot message.
func appendBodyFast(b []byte, msg any) ([]byte, bool) {
	switch m := msg.(type) {
	case *GetRequest:
		if m != nil {
			return appendGetRequest(b, m), true
		}
	case *GetResponse:
		if m != nil {
			return appendGetResponse(b, m), true
		}
	case *SetRequest:
		if m != nil {
			return appendSetRequest(b, m), true
		}
	case *WriteResponse:
		if m != nil {
			return appendWriteResponse(b, m), true
		}
	case *DelRequest:
		if m != nil {
			return appendDelRequest(b, m), true
		}
	case *IncrRequest:
		if m != nil {
			return appendIncrRequest(b, m), true
		}
	case *IncrResponse:
		if m != nil {
			return appendIncrResponse(b, m), true
		}
	case *Error:
		if m != nil {
			return appendError(b, m), true
		}
	}
	return b, false
}

// decodeBodyFast decodes body into msg if msg is a hot message. body must
// have passed checkBody. With clone, no decoded []byte or string shares
// memory with body; without, []byte fields alias it.
func decodeBodyFast(body []byte, msg any, clone bool) (handled bool, err error) {
	r := bodyReader{b: body, clone: clone}
	switch m := msg.(type) {
	case *GetRequest:
		if m != nil {
			return true, r.getRequest(m)
		}
	case *GetResponse:
		if m != nil {
			return true, r.getResponse(m)
		}
	case *SetRequest:
		if m != nil {
			return true, r.setRequest(m)
		}
	case *WriteResponse:
		if m != nil {
			return true, r.writeResponse(m)
		}
	case *DelRequest:
		if m != nil {
			return true, r.delRequest(m)
		}
	case *IncrRequest:
		if m != nil {
			return true, r.incrRequest(m)
		}
	case *IncrResponse:
		if m != nil {
			return true, r.incrResponse(m)
		}
	case *Error:
		if m != nil {
			return true, r.errorBody(m)
		}
	}
	return false, nil
}

// Encoders. Each map has under 16 entries, so its header is one fixmap
// byte, patched with the count once the fields are written.

func appendGetRequest(b []byte, m *GetRequest) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(1)
	b = appendBin(append(b, 0xa1, 'k'), m.Key)
	if m.Scope != 0 {
		b = appendUint(append(b, 0xa1, 's'), uint64(m.Scope))
		n++
	}
	if m.Siblings {
		b = append(b, 0xa2, 's', 'b', 0xc3)
		n++
	}
	if m.ReqID != "" {
		b = appendStr(append(b, 0xa1, 'r'), m.ReqID)
		n++
	}
	b[at] |= n
	return b
}

func appendGetResponse(b []byte, m *GetResponse) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(1)
	b = appendBin(append(b, 0xa1, 'v'), m.Value)
	if m.Counter {
		b = append(b, 0xa2, 'c', 'n', 0xc3)
		n++
	}
	if m.ExpiryMS != 0 {
		b = appendInt(append(b, 0xa1, 'x'), m.ExpiryMS)
		n++
	}
	if len(m.Context) != 0 {
		b = appendBin(append(b, 0xa1, 'c'), m.Context)
		n++
	}
	if len(m.Siblings) != 0 {
		b = appendArrayLen(append(b, 0xa2, 's', 'b'), len(m.Siblings))
		for i := range m.Siblings {
			b = appendSibling(b, &m.Siblings[i])
		}
		n++
	}
	if m.Domain != "" {
		b = appendStr(append(b, 0xa2, 'd', 'm'), m.Domain)
		n++
	}
	b[at] |= n
	return b
}

func appendSibling(b []byte, s *Sibling) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(3)
	b = appendBin(append(b, 0xa1, 'v'), s.Value)
	if s.ExpiryMS != 0 {
		b = appendInt(append(b, 0xa1, 'x'), s.ExpiryMS)
		n++
	}
	if s.Deleted {
		b = append(b, 0xa1, 'd', 0xc3)
		n++
	}
	b = appendStr(append(b, 0xa1, 'n'), s.Node)
	b = appendInt(append(b, 0xa1, 't'), s.TimeMS)
	b[at] |= n
	return b
}

func appendSetRequest(b []byte, m *SetRequest) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(2)
	b = appendBin(append(b, 0xa1, 'k'), m.Key)
	b = appendBin(append(b, 0xa1, 'v'), m.Value)
	if m.TTLMS != 0 {
		b = appendInt(append(b, 0xa3, 't', 't', 'l'), m.TTLMS)
		n++
	}
	if len(m.Context) != 0 {
		b = appendBin(append(b, 0xa1, 'c'), m.Context)
		n++
	}
	if m.ReqID != "" {
		b = appendStr(append(b, 0xa1, 'r'), m.ReqID)
		n++
	}
	b[at] |= n
	return b
}

func appendWriteResponse(b []byte, m *WriteResponse) []byte {
	if len(m.Context) == 0 {
		return append(b, 0x80)
	}
	return appendBin(append(b, 0x81, 0xa1, 'c'), m.Context)
}

func appendDelRequest(b []byte, m *DelRequest) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(1)
	b = appendBin(append(b, 0xa1, 'k'), m.Key)
	if len(m.Context) != 0 {
		b = appendBin(append(b, 0xa1, 'c'), m.Context)
		n++
	}
	if m.ReqID != "" {
		b = appendStr(append(b, 0xa1, 'r'), m.ReqID)
		n++
	}
	b[at] |= n
	return b
}

func appendIncrRequest(b []byte, m *IncrRequest) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(2)
	b = appendBin(append(b, 0xa1, 'k'), m.Key)
	b = appendInt(append(b, 0xa1, 'd'), m.Delta)
	if m.ReqID != "" {
		b = appendStr(append(b, 0xa1, 'r'), m.ReqID)
		n++
	}
	b[at] |= n
	return b
}

func appendIncrResponse(b []byte, m *IncrResponse) []byte {
	return appendInt(append(b, 0x81, 0xa1, 'v'), m.Value)
}

func appendError(b []byte, m *Error) []byte {
	at, b := len(b), append(b, 0x80)
	n := byte(1)
	b = appendUint(append(b, 0xa1, 'c'), uint64(m.Code))
	if m.Message != "" {
		b = appendStr(append(b, 0xa1, 'm'), m.Message)
		n++
	}
	if m.ReqID != "" {
		b = appendStr(append(b, 0xa1, 'r'), m.ReqID)
		n++
	}
	b[at] |= n
	return b
}

// appendBin appends v as msgpack bin, or nil when v is nil, as the library
// does for a []byte.
func appendBin(b, v []byte) []byte {
	switch n := len(v); {
	case v == nil:
		return append(b, 0xc0)
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendUint appends n in the smallest msgpack integer format.
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= 0x7f:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0xcc, byte(n))
	case n <= 0xffff:
		return append(b, 0xcd, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, 0xce, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0xcf, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendInt appends n in the smallest msgpack integer format; like the
// library, it uses the unsigned formats for n >= 0.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= -1<<7:
		return append(b, 0xd0, byte(n))
	case n >= -1<<15:
		return append(b, 0xd1, byte(n>>8), byte(n))
	case n >= -1<<31:
		return append(b, 0xd2, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0xd3, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Decoders.

var errSiblingFields = errors.New("a sibling encoded as an array must have 5 fields")

// bodyReader reads msgpack values from a body that passed checkBody. It
// still checks every bound, so that malformed input is an error, never a
// panic.
type bodyReader struct {
	b     []byte // the body; once owned, a private copy of it
	pos   int
	clone bool // payloads must not alias the caller's body
	owned bool
}

func typeError(c byte, want string) error {
	return fmt.Errorf("invalid msgpack type byte 0x%02x for %s", c, want)
}

func (r *bodyReader) next() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errBodyTruncated
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// bigEndian reads an n-byte (1, 2, 4 or 8) big-endian number.
func (r *bodyReader) bigEndian(n int) (uint64, error) {
	if n > len(r.b)-r.pos {
		return 0, errBodyTruncated
	}
	p := r.b[r.pos:]
	r.pos += n
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// mapLen reads a map header; c is its type byte, already read.
func (r *bodyReader) mapLen(c byte) (int, error) {
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == 0xde:
		n, err := r.bigEndian(2)
		return int(n), err
	case c == 0xdf:
		n, err := r.bigEndian(4)
		return int(n), err
	}
	return 0, typeError(c, "map")
}

// arrayLen reads an array header; c is its type byte, already read.
func (r *bodyReader) arrayLen(c byte) (int, error) {
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == 0xdc:
		n, err := r.bigEndian(2)
		return int(n), err
	case c == 0xdd:
		n, err := r.bigEndian(4)
		return int(n), err
	}
	return 0, typeError(c, "array")
}

// strLen reads the header of a str or bin value, as the library accepts
// for strings, []byte and map keys alike, and returns its length, or -1
// for nil.
func (r *bodyReader) strLen() (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var width int
	switch {
	case c&0xe0 == 0xa0:
		return int(c & 0x1f), nil
	case c == 0xc0:
		return -1, nil
	case c == 0xc4 || c == 0xd9:
		width = 1
	case c == 0xc5 || c == 0xda:
		width = 2
	case c == 0xc6 || c == 0xdb:
		width = 4
	default:
		return 0, typeError(c, "str or bin")
	}
	n, err := r.bigEndian(width)
	return int(n), err
}

// raw returns the next n bytes of the body, aliasing it.
func (r *bodyReader) raw(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, errBodyTruncated
	}
	p := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return p, nil
}

// own switches to a private copy of the body before the first payload
// that must not alias the caller's. One copy holds every []byte and string
// of the message: one allocation, however many fields.
func (r *bodyReader) own() {
	if r.clone && !r.owned {
		r.b = bytes.Clone(r.b)
		r.owned = true
	}
}

// key reads a map key without copying it. A nil key reads as "", which no
// field has, so its value is skipped, as the library does.
func (r *bodyReader) key() ([]byte, error) {
	n, err := r.strLen()
	if err != nil || n < 0 {
		return nil, err
	}
	return r.raw(n)
}

// bytes reads a []byte field: nil for msgpack nil and a non-nil empty slice
// for an empty str or bin, as the library gives.
func (r *bodyReader) bytes() ([]byte, error) {
	n, err := r.strLen()
	switch {
	case err != nil || n < 0:
		return nil, err
	case n == 0:
		return []byte{}, nil
	}
	r.own()
	return r.raw(n)
}

func (r *bodyReader) string() (string, error) {
	n, err := r.strLen()
	if err != nil || n <= 0 {
		return "", err
	}
	if !r.clone {
		p, err := r.raw(n)
		return string(p), err
	}
	r.own()
	p, err := r.raw(n)
	if err != nil {
		return "", err
	}
	// The private copy is never written again, and the []byte fields cut
	// from it cover other bytes and have no spare capacity, so no one can
	// change the string's bytes.
	return unsafe.String(&p[0], n), nil
}

// int reads an integer in any msgpack format, or nil as 0. Unsigned fields
// take its low-order bits, as the library's do.
func (r *bodyReader) int() (int64, error) {
	c, err := r.next()
	switch {
	case err != nil:
		return 0, err
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c)), nil
	case c == 0xc0:
		return 0, nil
	case c >= 0xcc && c <= 0xcf: // uint 8, 16, 32, 64
		n, err := r.bigEndian(1 << (c - 0xcc))
		return int64(n), err
	case c >= 0xd0 && c <= 0xd3: // int 8, 16, 32, 64
		width := 1 << (c - 0xd0)
		n, err := r.bigEndian(width)
		shift := 64 - 8*width // sign-extend
		return int64(n<<shift) >> shift, err
	}
	return 0, typeError(c, "integer")
}

func (r *bodyReader) bool() (bool, error) {
	c, err := r.next()
	switch {
	case err != nil:
		return false, err
	case c == 0xc0 || c == 0xc2:
		return false, nil
	case c == 0xc3:
		return true, nil
	}
	return false, typeError(c, "bool")
}

// skip steps over one value of any type. A container only adds to the
// count of values still to step over, so this needs no recursion.
func (r *bodyReader) skip() error {
	for left := uint64(1); left > 0; left-- {
		c, err := r.next()
		if err != nil {
			return err
		}
		payload, items, err := msgpackSizes(c, r.b[r.pos:])
		if err != nil {
			return err
		}
		if payload > uint64(len(r.b)-r.pos) {
			return errBodyTruncated
		}
		r.pos += int(payload)
		left += items
	}
	return nil
}

// fields reads the header of the body's map and calls field for each
// entry, which must read the value of a key it knows and report whether it
// did; other values are skipped.
func (r *bodyReader) fields(field func(key []byte) (bool, error)) error {
	c, err := r.next()
	if err != nil {
		return err
	}
	n, err := r.mapLen(c)
	if err != nil {
		return err
	}
	return r.entries(n, field)
}

func (r *bodyReader) entries(n int, field func(key []byte) (bool, error)) error {
	for range n {
		k, err := r.key()
		if err != nil {
			return err
		}
		known, err := field(k)
		if err != nil {
			return err
		}
		if !known {
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *bodyReader) getRequest(m *GetRequest) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "k":
			m.Key, err = r.bytes()
		case "s":
			var n int64
			n, err = r.int()
			m.Scope = Scope(n)
		case "sb":
			m.Siblings, err = r.bool()
		case "r":
			m.ReqID, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *bodyReader) getResponse(m *GetResponse) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "v":
			m.Value, err = r.bytes()
		case "cn":
			m.Counter, err = r.bool()
		case "x":
			m.ExpiryMS, err = r.int()
		case "c":
			m.Context, err = r.bytes()
		case "sb":
			m.Siblings, err = r.siblings(m.Siblings)
		case "dm":
			m.Domain, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}

// siblings decodes an array of siblings the way the library decodes into
// the slice s: reusing its elements where it has room, so that, as there,
// a key missing from an element leaves what the element held.
func (r *bodyReader) siblings(s []Sibling) ([]Sibling, error) {
	c, err := r.next()
	if err != nil || c == 0xc0 {
		return nil, err
	}
	n, err := r.arrayLen(c)
	switch {
	case err != nil:
		return s, err
	case n == 0 && s == nil:
		return []Sibling{}, nil
	case n <= cap(s):
		s = s[:n]
	default:
		s = append(s[:cap(s)], make([]Sibling, n-cap(s))...)
	}
	for i := range s {
		if err := r.sibling(&s[i]); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (r *bodyReader) sibling(s *Sibling) error {
	c, err := r.next()
	if err != nil {
		return err
	}
	if c == 0xc0 {
		*s = Sibling{}
		return nil
	}
	n, err := r.mapLen(c)
	if err == nil {
		return r.entries(n, func(k []byte) (known bool, err error) {
			switch string(k) {
			case "v":
				s.Value, err = r.bytes()
			case "x":
				s.ExpiryMS, err = r.int()
			case "d":
				s.Deleted, err = r.bool()
			case "n":
				s.Node, err = r.string()
			case "t":
				s.TimeMS, err = r.int()
			default:
				return false, nil
			}
			return true, err
		})
	}
	// The library also takes a struct as an array of its fields in order.
	n, arrErr := r.arrayLen(c)
	switch {
	case arrErr != nil:
		return err
	case n == 0:
		*s = Sibling{}
		return nil
	case n != 5:
		return errSiblingFields
	}
	if s.Value, err = r.bytes(); err != nil {
		return err
	}
	if s.ExpiryMS, err = r.int(); err != nil {
		return err
	}
	if s.Deleted, err = r.bool(); err != nil {
		return err
	}
	if s.Node, err = r.string(); err != nil {
		return err
	}
	s.TimeMS, err = r.int()
	return err
}

func (r *bodyReader) setRequest(m *SetRequest) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "k":
			m.Key, err = r.bytes()
		case "v":
			m.Value, err = r.bytes()
		case "ttl":
			m.TTLMS, err = r.int()
		case "c":
			m.Context, err = r.bytes()
		case "r":
			m.ReqID, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *bodyReader) writeResponse(m *WriteResponse) error {
	return r.fields(func(k []byte) (known bool, err error) {
		if string(k) != "c" {
			return false, nil
		}
		m.Context, err = r.bytes()
		return true, err
	})
}

func (r *bodyReader) delRequest(m *DelRequest) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "k":
			m.Key, err = r.bytes()
		case "c":
			m.Context, err = r.bytes()
		case "r":
			m.ReqID, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *bodyReader) incrRequest(m *IncrRequest) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "k":
			m.Key, err = r.bytes()
		case "d":
			m.Delta, err = r.int()
		case "r":
			m.ReqID, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *bodyReader) incrResponse(m *IncrResponse) error {
	return r.fields(func(k []byte) (known bool, err error) {
		if string(k) != "v" {
			return false, nil
		}
		m.Value, err = r.int()
		return true, err
	})
}

func (r *bodyReader) errorBody(m *Error) error {
	return r.fields(func(k []byte) (known bool, err error) {
		switch string(k) {
		case "c":
			var n int64
			n, err = r.int()
			m.Code = Code(n)
		case "m":
			m.Message, err = r.string()
		case "r":
			m.ReqID, err = r.string()
		default:
			return false, nil
		}
		return true, err
	})
}
