package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upu/upu/protocol"
)

// Errors of the client. An error a node answered with is a *ServerError
// that matches the sentinel for its code with errors.Is.
var (
	ErrNotFound     = errors.New("upu: not found")
	ErrTooLarge     = errors.New("upu: too large")
	ErrBadRequest   = errors.New("upu: bad request")
	ErrUnavailable  = errors.New("upu: unavailable")
	ErrTimeout      = errors.New("upu: timeout")
	ErrWrongType    = errors.New("upu: wrong type")
	ErrUnauthorized = errors.New("upu: unauthorized")
	ErrClosed       = errors.New("upu: client closed")
	ErrInternal     = errors.New("upu: internal error")
	ErrProtocol     = errors.New("upu: protocol error")
	// ErrScopeUnavailable: the node cannot read beyond itself (no parent
	// domain to ask for scope up or root).
	ErrScopeUnavailable = errors.New("upu: scope unavailable")
	// ErrBadContext: a write's context token (WithContext) was refused, as
	// forged, altered or made for another key; read the key again.
	ErrBadContext = errors.New("upu: bad context token")
)

// ServerError is an error frame a node answered with. errors.Is matches it
// against the sentinel for its code (ErrNotFound for CodeNotFound, ...).
type ServerError struct {
	Code    protocol.Code
	Message string
	ReqID   string          // the node's request ID, to find the request in its logs
	Node    string          // address of the node that answered
	Op      protocol.Opcode // operation that failed
}

func (e *ServerError) Error() string {
	wire := protocol.Error{Code: e.Code, Message: e.Message, ReqID: e.ReqID}
	return wire.Error() + " [" + e.Op.String() + " at " + e.Node + "]"
}

// Unwrap returns the sentinel for the code.
func (e *ServerError) Unwrap() error { return sentinel(e.Code) }

func sentinel(c protocol.Code) error {
	switch c {
	case protocol.CodeNotFound:
		return ErrNotFound
	case protocol.CodeTooLarge:
		return ErrTooLarge
	case protocol.CodeBadRequest:
		return ErrBadRequest
	case protocol.CodeUnavailable:
		return ErrUnavailable
	case protocol.CodeTimeout:
		return ErrTimeout
	case protocol.CodeWrongType:
		return ErrWrongType
	case protocol.CodeUnauthorized:
		return ErrUnauthorized
	case protocol.CodeScopeUnavailable:
		return ErrScopeUnavailable
	case protocol.CodeBadContext:
		return ErrBadContext
	case protocol.CodeUnknownOp, protocol.CodeProtocol:
		return ErrProtocol
	}
	return ErrInternal
}

// errExpired ends a wait whose context or request timer ran out; the call
// turns it into its timeout error.
var errExpired = errors.New("upu: call expired")

// connFailure is why a call failed on a connection that broke.
type connFailure struct {
	addr string
	err  error
	// sent is false when the request never reached the socket, so that
	// repeating it elsewhere cannot apply it twice.
	sent bool
}

func (f *connFailure) Error() string { return f.addr + ": " + f.err.Error() }
func (f *connFailure) Unwrap() error { return f.err }

// expiredError is the error of a call whose context or RequestTimeout ran
// out. A deadline is ErrTimeout; a cancellation is only context.Canceled.
func expiredError(ctx context.Context, op protocol.Opcode) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("upu: %s canceled: %w", op, ctx.Err())
	}
	return fmt.Errorf("%w: %s: %w", ErrTimeout, op, context.DeadlineExceeded)
}

// nodeDownError says a node was skipped because its backoff runs. It is
// formatted only when printed: a caller looping on a dead cluster gets it
// cheaply.
type nodeDownError struct {
	addr     string
	failures int
	wait     time.Duration // until the next dial, when the error was made
	cause    error         // why the last dial failed
}

func (e *nodeDownError) Error() string {
	return fmt.Sprintf("%s down after %d failures, next dial in %v: %v", e.addr, e.failures, e.wait.Round(time.Millisecond), e.cause)
}

func (e *nodeDownError) Unwrap() error { return e.cause }

// unavailableError is ErrUnavailable with the last node's failure.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string { return ErrUnavailable.Error() + ": " + e.cause.Error() }

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }
