package replication

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
)

// Config tunes replication. The zero value of each field means its default
// (DefaultConfig); Self has none and must be set. Timeouts are counted in
// ticks, as raft counts them: the Machine never reads a clock, and the
// Replicator turns TickInterval into calls of Tick.
type Config struct {
	// Self is this node's ID, as the store knows it.
	Self crdt.NodeID
	// TickInterval is how often the Replicator ticks the Machine. Default
	// 50ms. The Machine itself ignores it.
	TickInterval time.Duration
	// RetransmitTicks is how long a push, sync chunk, digest request or
	// probe waits for its answer before it is sent again (go-back:
	// everything not yet acknowledged is resent). It should exceed a few
	// round trips. A peer that let one pass unanswered counts as
	// unresponsive until it is heard from again. Default 20 (1s at the
	// default tick).
	RetransmitTicks int
	// ProbeTicks is the anti-entropy period: every ProbeTicks the node
	// sends its applied vector to its ring predecessor and to one random
	// member, and repairs what they lack that it has held for at least one
	// period. Lower repairs partitions sooner; each round costs two small
	// messages each way. Default 20 (1s at the default tick).
	ProbeTicks int
	// MaxBatchEntries bounds the log entries of one push and the records of
	// one sync chunk. Default 512.
	MaxBatchEntries int
	// MaxBatchBytes bounds the encoded size of one push or sync chunk;
	// a single entry or record over it still travels, alone. Keep it well
	// under the protocol's frame limit. Default 1 MiB.
	MaxBatchBytes int
	// MaxInflight is how many pushes may await their ack per peer. One is
	// stop-and-wait; more hides round trips at the cost of resending more
	// after a loss. Default 4.
	MaxInflight int
	// SendQueue is how many messages the Replicator queues per peer for the
	// transport; past it messages are dropped (the Machine retransmits), so
	// that a slow peer never blocks replication to the others. Default 64.
	SendQueue int
	// InboxSize is how many received messages the Replicator queues before
	// Deliver refuses more, and how many pushes and sync chunks it holds
	// for the store before it refuses more (unacknowledged, they come
	// again). Default 1024.
	InboxSize int
	// DigestBits is log2 of the number of buckets a digest sync compares:
	// a peer whose log no longer reaches back is sent the records of the
	// buckets whose digests differ. More buckets send fewer needless
	// records and cost 8 bytes each in the digest answer. Default 10; at
	// most 16.
	DigestBits int
	// ResyncAfter is how long this node may go without an answer from any
	// peer before it must resync (Machine.Resync): the node sets it to the
	// store's tombstone horizon, past which peers may have dropped
	// tombstones this node never saw. Default 24h.
	ResyncAfter time.Duration
	// Seed seeds the choice of random anti-entropy partners and the phase
	// of the probe rounds. Zero: derived from Self, so that nodes differ
	// and runs repeat.
	Seed uint64
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("upu: invalid replication config")

// DefaultConfig returns the configuration used for zero fields, with Self
// unset.
func DefaultConfig() Config {
	return Config{
		TickInterval:    50 * time.Millisecond,
		RetransmitTicks: 20,
		ProbeTicks:      20,
		MaxBatchEntries: 512,
		MaxBatchBytes:   1 << 20,
		MaxInflight:     4,
		SendQueue:       64,
		InboxSize:       1024,
		DigestBits:      10,
		ResyncAfter:     24 * time.Hour,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.TickInterval = cmp.Or(c.TickInterval, d.TickInterval)
	c.RetransmitTicks = cmp.Or(c.RetransmitTicks, d.RetransmitTicks)
	c.ProbeTicks = cmp.Or(c.ProbeTicks, d.ProbeTicks)
	c.MaxBatchEntries = cmp.Or(c.MaxBatchEntries, d.MaxBatchEntries)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, d.MaxBatchBytes)
	c.MaxInflight = cmp.Or(c.MaxInflight, d.MaxInflight)
	c.SendQueue = cmp.Or(c.SendQueue, d.SendQueue)
	c.InboxSize = cmp.Or(c.InboxSize, d.InboxSize)
	c.DigestBits = cmp.Or(c.DigestBits, d.DigestBits)
	c.ResyncAfter = cmp.Or(c.ResyncAfter, d.ResyncAfter)
	if c.Seed == 0 {
		c.Seed = uint64(c.Self)*0x9e3779b97f4a7c15 | 1
	}
	return c
}

// Validate reports every problem with c in one error wrapping
// ErrInvalidConfig. Zero fields are valid, except Self.
func (c Config) Validate() error {
	var l confcheck.List
	bad := l.Add
	if c.Self == 0 {
		bad("Self", c.Self, "is required")
	}
	if c.TickInterval < 0 {
		bad("TickInterval", c.TickInterval, "is negative")
	}
	if c.ResyncAfter < 0 {
		bad("ResyncAfter", c.ResyncAfter, "is negative")
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"RetransmitTicks", c.RetransmitTicks},
		{"ProbeTicks", c.ProbeTicks},
		{"MaxBatchEntries", c.MaxBatchEntries},
		{"MaxBatchBytes", c.MaxBatchBytes},
		{"MaxInflight", c.MaxInflight},
		{"SendQueue", c.SendQueue},
		{"InboxSize", c.InboxSize},
		{"DigestBits", c.DigestBits},
	} {
		if f.v < 0 {
			bad(f.name, f.v, "is negative")
		}
	}
	if c.DigestBits > maxBits {
		bad("DigestBits", c.DigestBits, fmt.Sprintf("is over %d", maxBits))
	}
	if c.MaxBatchEntries > maxItems {
		bad("MaxBatchEntries", c.MaxBatchEntries, fmt.Sprintf("is over %d, the most a message may hold", maxItems))
	}
	return l.Err(ErrInvalidConfig)
}
