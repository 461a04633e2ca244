package crdt

import "errors"

var (
	// ErrWrongType is returned by Incr when the key holds a value that is not
	// an integer.
	ErrWrongType = errors.New("upu: wrong type")
	// ErrOverflow is returned by Incr when the result would not fit in int64.
	ErrOverflow = errors.New("upu: increment would overflow")
	// ErrBadNodeID is returned by ParseNodeID.
	ErrBadNodeID = errors.New("upu: invalid node id")
	// ErrBadEncoding is returned when a stored or received value cannot be
	// decoded.
	ErrBadEncoding = errors.New("upu: bad crdt encoding")
)
