package kv

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/store"
)

// MaxKeySizeLimit is the largest Config.MaxKeySize: what the store can hold.
// MaxValueSizeLimit is the largest Config.MaxValueSize, below the store's
// own bound so that a value always fits a protocol frame.
const (
	MaxKeySizeLimit   = store.MaxKeySizeLimit
	MaxValueSizeLimit = min(64<<20, store.MaxValueSizeLimit)
)

// The default limits, which the node's configuration takes as its own.
const (
	DefaultMaxKeySize   = 1 << 10
	DefaultMaxValueSize = 1 << 20
)

// Config configures a Service. Zero fields take their defaults.
type Config struct {
	// MaxKeySize and MaxValueSize bound keys and values in bytes; the store
	// is opened with the same limits.
	MaxKeySize   int
	MaxValueSize int
	// WriteTimeout bounds how long one batch may wait for its commit.
	WriteTimeout time.Duration
	// NodeID stamps the request IDs the service makes.
	NodeID crdt.NodeID
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxKeySize: DefaultMaxKeySize, MaxValueSize: DefaultMaxValueSize, WriteTimeout: 30 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxKeySize = cmp.Or(c.MaxKeySize, d.MaxKeySize)
	c.MaxValueSize = cmp.Or(c.MaxValueSize, d.MaxValueSize)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	return c
}

// Validate reports every invalid field. Zero fields are valid (defaults).
func (c Config) Validate() error {
	var errs []error
	if c.MaxKeySize < 0 || c.MaxKeySize > MaxKeySizeLimit {
		errs = append(errs, fmt.Errorf("kv: MaxKeySize=%d: must be between 1 and %d", c.MaxKeySize, MaxKeySizeLimit))
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > MaxValueSizeLimit {
		errs = append(errs, fmt.Errorf("kv: MaxValueSize=%d: must be between 1 and %d", c.MaxValueSize, MaxValueSizeLimit))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("kv: WriteTimeout=%v: must not be negative", c.WriteTimeout))
	}
	return errors.Join(errs...)
}
