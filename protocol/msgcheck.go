package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxBodyDepth bounds the levels of maps and arrays in a body, the body's own
// map included. UPU's messages nest three deep (map, sibling array, sibling
// map); the rest is room for fields added later. The msgpack decoder recurses
// once per level, so an unbounded depth would let a 4 MiB body grow a
// goroutine's stack by gigabytes.
const maxBodyDepth = 16

var (
	errBodyNotMap    = errors.New("body is not a msgpack map")
	errBodyTruncated = errors.New("body ends inside a value")
	errBodyTrailing  = errors.New("bytes after the body's map")
	errBodyTooDeep   = fmt.Errorf("body nests deeper than %d", maxBodyDepth)
)

// checkBody reports whether b is exactly one well-formed msgpack map, with at
// most maxBodyDepth levels of maps and arrays (itself included), in which
// every array and map claims no more items than there are bytes left. The
// msgpack decoder allocates a slice of the claimed length before reading its
// items, so without this check a 9-byte body could make it allocate
// gigabytes. It walks b once without recursing or allocating.
func checkBody(b []byte) error {
	if len(b) == 0 || !isMapCode(b[0]) {
		return errBodyNotMap
	}
	var open [maxBodyDepth]uint64 // items still to read in each enclosing array or map
	depth := 0
	left := uint64(1) // items still to read at the current depth
	pos := 0
	for {
		for left == 0 {
			if depth == 0 {
				if pos != len(b) {
					return errBodyTrailing
				}
				return nil
			}
			depth--
			left = open[depth]
		}
		if pos >= len(b) {
			return errBodyTruncated
		}
		c := b[pos]
		pos++
		left--
		payload, items, err := msgpackSizes(c, b[pos:])
		if err != nil {
			return err
		}
		if payload > uint64(len(b)-pos) {
			return errBodyTruncated
		}
		pos += int(payload)
		if !isContainerCode(c) {
			continue
		}
		if depth == maxBodyDepth {
			return errBodyTooDeep
		}
		// Every item takes at least one byte.
		if items > uint64(len(b)-pos) {
			return fmt.Errorf("body claims %d items with %d bytes left", items, len(b)-pos)
		}
		open[depth] = left
		depth++
		left = items
	}
}

func isMapCode(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

func isContainerCode(c byte) bool { return c&0xe0 == 0x80 || (c >= 0xdc && c <= 0xdf) }

// msgpackSizes returns, for a value starting with type byte c followed by
// rest, how many bytes follow c before its items (length fields included) and
// how many items (values; a map entry counts two) it contains.
func msgpackSizes(c byte, rest []byte) (payload, items uint64, err error) {
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return 0, 0, nil
	case c <= 0x8f: // fixmap
		return 0, 2 * uint64(c&0x0f), nil
	case c <= 0x9f: // fixarray
		return 0, uint64(c & 0x0f), nil
	case c <= 0xbf: // fixstr
		return uint64(c & 0x1f), 0, nil
	}
	var lenBytes, extra int // width of the length field; fixed bytes after it
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 0, 0, nil
	case 0xcc, 0xd0: // uint8, int8
		return 1, 0, nil
	case 0xcd, 0xd1: // uint16, int16
		return 2, 0, nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 4, 0, nil
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return 8, 0, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
		return 1 + 1<<(c-0xd4), 0, nil
	case 0xc4, 0xd9: // bin8, str8
		lenBytes = 1
	case 0xc5, 0xda: // bin16, str16
		lenBytes = 2
	case 0xc6, 0xdb: // bin32, str32
		lenBytes = 4
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, type byte, data
		lenBytes, extra = 1<<(c-0xc7), 1
	case 0xdc, 0xdd, 0xde, 0xdf: // array16, array32, map16, map32
		n, ok := readLen(rest, 2<<(c&1))
		if !ok {
			return 0, 0, errBodyTruncated
		}
		if c >= 0xde {
			n *= 2
		}
		return uint64(2 << (c & 1)), n, nil
	default: // 0xc1 is never used
		return 0, 0, fmt.Errorf("invalid msgpack type byte 0x%02x", c)
	}
	n, ok := readLen(rest, lenBytes)
	if !ok {
		return 0, 0, errBodyTruncated
	}
	return uint64(lenBytes+extra) + n, 0, nil
}

// readLen reads an n-byte (1, 2 or 4) big-endian length at the start of b.
func readLen(b []byte, n int) (uint64, bool) {
	if len(b) < n {
		return 0, false
	}
	switch n {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	}
	return uint64(binary.BigEndian.Uint32(b)), true
}
