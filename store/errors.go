package store

import "errors"

var (
	// ErrNotFound is returned by reads of a key with no visible value.
	ErrNotFound = errors.New("upu: not found")
	// ErrTooLarge is returned for a key or value over the configured limit.
	ErrTooLarge = errors.New("upu: too large")
	// ErrBadRequest is returned for a malformed write (empty key, unknown op,
	// negative expiry).
	ErrBadRequest = errors.New("upu: bad request")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("upu: store closed")
	// ErrLogTrimmed is returned by ReadLog when the entries asked for have
	// been trimmed; LogStart says where the log now begins.
	ErrLogTrimmed = errors.New("upu: replication log trimmed")
)
