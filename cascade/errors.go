package cascade

import "errors"

// Errors of the cascade.
var (
	// ErrNoParent: this domain has no parent; it is a root.
	ErrNoParent = errors.New("upu: this domain has no parent")
	// ErrParentUnreachable: no member of the parent domain answered.
	ErrParentUnreachable = errors.New("upu: parent domain unreachable")
	// ErrCycle: the parent asked for would make the tree a cycle.
	ErrCycle = errors.New("upu: the parent would make a cycle")
	// ErrBadParent: the parent setting is invalid (no domain, no seed, a
	// seed that is no host:port, this domain itself).
	ErrBadParent = errors.New("upu: bad parent")
	// ErrClosed: the cascade was closed.
	ErrClosed = errors.New("upu: cascade closed")
)
