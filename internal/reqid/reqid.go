package reqid

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/upu/upu/internal/clock"
)

// ErrInvalid is returned by Parse for text that is not a request ID.
var ErrInvalid = errors.New("upu: invalid request id")

// ID is a request ID. The zero ID means "none".
type ID [16]byte

const (
	// TextLen is the length of an ID's text form.
	TextLen = 2 * len(ID{})

	timeBytes = 6
	nodeBytes = 6
)

// New builds the ID of a request accepted at now by node, with the random
// part rnd. It is pure; use a Generator to make IDs for live requests.
func New(now time.Time, node uint64, rnd uint32) ID {
	var id ID
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(now.UnixMilli()))
	copy(id[:timeBytes], b[8-timeBytes:])
	binary.BigEndian.PutUint64(b[:], node)
	copy(id[timeBytes:], b[:nodeBytes])
	binary.BigEndian.PutUint32(id[timeBytes+nodeBytes:], rnd)
	return id
}

// Time returns when the request was accepted, to the millisecond, in UTC.
func (id ID) Time() time.Time {
	var b [8]byte
	copy(b[2:], id[:timeBytes])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:]))).UTC()
}

// NodePrefix returns the accepting node's ID as far as the request ID holds
// it: the first 12 of the 16 hex digits of the node ID.
func (id ID) NodePrefix() string {
	var buf [2 * nodeBytes]byte
	return string(hex.AppendEncode(buf[:0], id[timeBytes:timeBytes+nodeBytes]))
}

// Random returns the random part.
func (id ID) Random() uint32 {
	return binary.BigEndian.Uint32(id[timeBytes+nodeBytes:])
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String returns the 32 lowercase hex digits of id.
func (id ID) String() string {
	var buf [TextLen]byte
	return string(id.AppendText(buf[:0]))
}

// AppendText appends the text form of id to dst. Unlike
// encoding.TextAppender it cannot fail, so it returns no error.
func (id ID) AppendText(dst []byte) []byte { return hex.AppendEncode(dst, id[:]) }

// MarshalText implements encoding.TextMarshaler, so IDs render as text in
// JSON logs and documents.
func (id ID) MarshalText() ([]byte, error) { return id.AppendText(make([]byte, 0, TextLen)), nil }

// UnmarshalText implements encoding.TextUnmarshaler with the rules of Parse.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := Parse(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// Parse reads the text form of an ID. Hex digits may be of either case.
func Parse(s string) (ID, error) {
	var id ID
	if len(s) != TextLen {
		return id, fmt.Errorf("%w: %d characters, want %d hex digits", ErrInvalid, len(s), TextLen)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return id, nil
}

// Generator makes the IDs of one node. Next is safe for concurrent use.
type Generator struct {
	node    uint64
	clock   clock.Clock
	seed    uint32
	counter atomic.Uint32
}

// NewGenerator returns a generator for node reading time from clk; a nil
// clk means the system clock.
//
// The random part is a counter, started at a random seed and scrambled by a
// bijection: the 2³² IDs a generator makes in a row differ in it even
// within one millisecond, and two generators (two runs of a node) are
// unlikely to meet. IDs are unique, not secret.
func NewGenerator(node uint64, clk clock.Clock) *Generator {
	if clk == nil {
		clk = clock.Real()
	}
	return &Generator{node: node, clock: clk, seed: rand.Uint32()}
}

// Next returns a new ID stamped with the clock's time. It does not allocate
// and takes no lock.
func (g *Generator) Next() ID { return g.NextAt(g.clock.Now()) }

// NextAt returns a new ID stamped with now, for callers that have just read
// the clock anyway (to time the request): reading it costs more than the
// rest of Next.
func (g *Generator) NextAt(now time.Time) ID {
	return New(now, g.node, scramble(g.seed+g.counter.Add(1)))
}

// scramble is the 32-bit finaliser of MurmurHash3. Each step (xor-shift,
// multiplication by an odd constant) is invertible, so distinct inputs give
// distinct outputs.
func scramble(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x
}
