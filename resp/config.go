package resp

import "errors"

// Config bounds what a Reader accepts. Zero fields mean the default.
type Config struct {
	// MaxBulkLen is the largest argument of a multibulk command, like redis'
	// proto-max-bulk-len. The node sets it to its value limit plus slack.
	MaxBulkLen int
	// MaxArgs is the most arguments a multibulk command may declare.
	MaxArgs int
	// MaxInlineLen is the longest inline command line, and the longest
	// '*' or '$' count line, like redis' PROTO_INLINE_MAX_SIZE.
	MaxInlineLen int
}

// DefaultConfig returns the defaults, which are redis' own.
func DefaultConfig() Config {
	return Config{
		MaxBulkLen:   512 << 20,
		MaxArgs:      1 << 20,
		MaxInlineLen: 64 << 10,
	}
}

// Validate reports the first invalid field. Zero fields are valid (they mean
// the default).
func (c Config) Validate() error {
	if c.MaxBulkLen < 0 || c.MaxArgs < 0 || c.MaxInlineLen < 0 {
		return errors.New("resp: limits must not be negative")
	}
	return nil
}

// withDefaults fills zero (and, for a config that skipped Validate, negative)
// fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.MaxBulkLen, d.MaxBulkLen)
	set(&c.MaxArgs, d.MaxArgs)
	set(&c.MaxInlineLen, d.MaxInlineLen)
	return c
}
