package kv

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/store"
)

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: invalid kv config")

// MaxKeySizeLimit is the largest Config.MaxKeySize: what the store can hold.
// MaxValueSizeLimit is the largest Config.MaxValueSize, below the store's
// own bound so that a value always fits a protocol frame.
const (
	MaxKeySizeLimit   = store.MaxKeySizeLimit
	MaxValueSizeLimit = min(64<<20, store.MaxValueSizeLimit)
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

// DefaultConfig returns the defaults: the store's limits, so that the two
// agree unless told otherwise.
func DefaultConfig() Config {
	sd := store.DefaultConfig()
	return Config{MaxKeySize: sd.MaxKeySize, MaxValueSize: sd.MaxValueSize, WriteTimeout: 30 * time.Second}
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
	var l confcheck.List
	if c.MaxKeySize < 0 || c.MaxKeySize > MaxKeySizeLimit {
		l.Add("MaxKeySize", c.MaxKeySize, fmt.Sprintf("must be between 1 and %d", MaxKeySizeLimit))
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > MaxValueSizeLimit {
		l.Add("MaxValueSize", c.MaxValueSize, fmt.Sprintf("must be between 1 and %d", MaxValueSizeLimit))
	}
	if c.WriteTimeout < 0 {
		l.Add("WriteTimeout", c.WriteTimeout, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}
