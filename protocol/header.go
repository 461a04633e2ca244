package protocol

import (
	"encoding/binary"
	"fmt"
)

// Frame header layout. Every field has a fixed width; all integers are big
// endian. See SPEC.md for the prose version.
const (
	magicSize   = 1
	versionSize = 1
	opcodeSize  = 1
	flagsSize   = 1
	reqIDSize   = 8
	lengthSize  = 4

	// HeaderSize is the size of every frame header in bytes.
	HeaderSize = magicSize + versionSize + opcodeSize + flagsSize + reqIDSize + lengthSize
)

const (
	// Magic is the first byte of every frame.
	Magic byte = 0xC5
	// Version is the protocol version this package speaks.
	Version byte = 1

	// DefaultMaxBody bounds a frame body: a 1 MiB value, a 1 KiB key and a
	// causal context fit with room to spare.
	DefaultMaxBody = 4 << 20
)

// Flags are bits in the header's flags byte.
type Flags uint8

const (
	// FlagResponse marks a frame sent in answer to a request; it carries the
	// request's ID and opcode (or OpError).
	FlagResponse Flags = 1 << iota
)

// Header is a decoded frame header.
type Header struct {
	Opcode Opcode
	Flags  Flags
	// ReqID correlates a response with its request on one connection. The
	// sender picks it; responses may arrive in any order.
	ReqID uint64
	// Len is the length of the body that follows the header.
	Len uint32
}

// IsResponse reports whether the frame answers a request.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// AppendHeader appends the 16-byte encoding of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Magic, Version, byte(h.Opcode), byte(h.Flags))
	dst = binary.BigEndian.AppendUint64(dst, h.ReqID)
	return binary.BigEndian.AppendUint32(dst, h.Len)
}

// ParseHeader decodes a header from the first HeaderSize bytes of b. It checks
// the magic, the version, the opcode and the body length against maxBody.
// On a length error the header is still returned, so the caller can answer
// with the request ID.
func ParseHeader(b []byte, maxBody uint32) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d of %d header bytes", ErrShortHeader, len(b), HeaderSize)
	}
	if b[0] != Magic {
		return Header{}, fmt.Errorf("%w: got 0x%02x, want 0x%02x", ErrBadMagic, b[0], Magic)
	}
	if b[1] != Version {
		return Header{}, fmt.Errorf("%w: got %d, want %d", ErrBadVersion, b[1], Version)
	}
	h := Header{
		Opcode: Opcode(b[2]),
		Flags:  Flags(b[3]),
		ReqID:  binary.BigEndian.Uint64(b[4:12]),
		Len:    binary.BigEndian.Uint32(b[12:16]),
	}
	if !h.Opcode.Known() {
		return h, fmt.Errorf("%w: %d", ErrUnknownOpcode, b[2])
	}
	if h.Len > maxBody {
		return h, fmt.Errorf("%w: body of %d bytes, limit %d", ErrFrameTooLarge, h.Len, maxBody)
	}
	return h, nil
}

// SetBodyLen sets the length field of the header that starts frame to the
// bytes after it, for callers that append a body with an encoder of their
// own after AppendHeader.
func SetBodyLen(frame []byte) {
	binary.BigEndian.PutUint32(frame[12:16], uint32(len(frame)-HeaderSize))
}
