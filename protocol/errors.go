package protocol

import (
	"errors"
	"fmt"
)

// Framing errors. A connection that produces one of these cannot be trusted to
// stay in sync: the server answers with an error frame and closes it.
var (
	ErrShortHeader   = errors.New("upu: short frame header")
	ErrBadMagic      = errors.New("upu: bad frame magic")
	ErrBadVersion    = errors.New("upu: unsupported protocol version")
	ErrUnknownOpcode = errors.New("upu: unknown opcode")
	ErrFrameTooLarge = errors.New("upu: frame too large")
	ErrBadBody       = errors.New("upu: malformed message body")
)

// Code is the type of an error carried in an Error frame. Values are part of
// the wire format: never renumber.
type Code uint16

const (
	CodeInternal     Code = 1  // the server failed; not the caller's fault
	CodeNotFound     Code = 2  // no live value under the key
	CodeTooLarge     Code = 3  // key, value or frame over a configured limit
	CodeBadRequest   Code = 4  // malformed or invalid request
	CodeUnavailable  Code = 5  // the node cannot serve now (shutting down, overloaded)
	CodeTimeout      Code = 6  // the server gave up on the operation
	CodeWrongType    Code = 7  // e.g. incr on a key holding a non-counter value
	CodeUnauthorized Code = 8  // the connection's role may not do this
	CodeUnknownOp    Code = 9  // opcode not understood
	CodeProtocol     Code = 10 // framing error; the connection will be closed
	// CodeScopeUnavailable: a read asked beyond this node (scope up or
	// root) and the node has no parent domain to ask.
	CodeScopeUnavailable Code = 11
	// CodeBadContext: a write's causal-context token was not signed by a
	// key of the domain for its key (forged, altered or another key's).
	CodeBadContext Code = 12
)

var codeNames = map[Code]string{
	CodeInternal:         "internal",
	CodeNotFound:         "not found",
	CodeTooLarge:         "too large",
	CodeBadRequest:       "bad request",
	CodeBadContext:       "bad context",
	CodeUnavailable:      "unavailable",
	CodeTimeout:          "timeout",
	CodeWrongType:        "wrong type",
	CodeUnauthorized:     "unauthorized",
	CodeUnknownOp:        "unknown operation",
	CodeProtocol:         "protocol error",
	CodeScopeUnavailable: "scope unavailable",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Error is the body of an OpError frame, and an error value.
type Error struct {
	Code    Code   `msgpack:"c"`
	Message string `msgpack:"m,omitempty"`
	// ReqID is the node's request ID (see internal/reqid), for finding the
	// request in the node's logs.
	ReqID string `msgpack:"r,omitempty"`
}

func (e *Error) Error() string {
	s := "upu: " + e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.ReqID != "" {
		s += " (req_id " + e.ReqID + ")"
	}
	return s
}

// CodeOf maps a framing error from this package to the code sent back.
func CodeOf(err error) Code {
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrUnknownOpcode):
		return CodeUnknownOp
	case errors.Is(err, ErrBadBody):
		return CodeBadRequest
	case errors.Is(err, ErrShortHeader), errors.Is(err, ErrBadMagic), errors.Is(err, ErrBadVersion):
		return CodeProtocol
	}
	return CodeInternal
}
