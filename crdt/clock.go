package crdt

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// NodeID identifies a node across the fleet. It is random, made once, and
// kept in the node's data directory.
type NodeID uint64

// String returns the ID as 16 lowercase hex digits.
func (n NodeID) String() string {
	var b [16]byte
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = hex[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// ParseNodeID parses the 16-hex-digit form.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: %q is not 16 hex digits", ErrBadNodeID, s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadNodeID, s)
	}
	return NodeID(v), nil
}

// Timestamp is a hybrid logical clock reading: Unix milliseconds in the high
// 48 bits and a logical counter in the low 16. Timestamps order events
// consistently with causality even when wall clocks disagree.
type Timestamp uint64

const logicalBits = 16

// MakeTimestamp builds a timestamp from its parts.
func MakeTimestamp(ms int64, logical uint16) Timestamp {
	return Timestamp(uint64(ms)<<logicalBits | uint64(logical))
}

// Millis returns the physical part in Unix milliseconds.
func (t Timestamp) Millis() int64 { return int64(t >> logicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t) }

func (t Timestamp) String() string {
	return strconv.FormatInt(t.Millis(), 10) + "." + strconv.Itoa(int(t.Logical()))
}

// HLC is a hybrid logical clock. Now and Observe are safe for concurrent use.
// The zero value is ready.
type HLC struct {
	last atomic.Uint64
}

// Now returns a timestamp greater than every timestamp this clock has returned
// or observed, and not behind wallMS.
func (c *HLC) Now(wallMS int64) Timestamp {
	wall := MakeTimestamp(wallMS, 0)
	for {
		last := c.last.Load()
		next := uint64(wall)
		if next <= last {
			next = last + 1
		}
		if c.last.CompareAndSwap(last, next) {
			return Timestamp(next)
		}
	}
}

// Observe advances the clock past a timestamp received from another node, so
// that later local events order after it.
func (c *HLC) Observe(remote Timestamp) {
	for {
		last := c.last.Load()
		if uint64(remote) <= last || c.last.CompareAndSwap(last, uint64(remote)) {
			return
		}
	}
}

// Last returns the latest timestamp issued or observed.
func (c *HLC) Last() Timestamp { return Timestamp(c.last.Load()) }
