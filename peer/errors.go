package peer

import (
	"errors"
	"fmt"
)

// Errors of Call. Each is wrapped with the remote node and the kind.
var (
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("upu: peer pool closed")
	// ErrNoRoute is a Call to a node with no link up and no address to
	// dial.
	ErrNoRoute = errors.New("upu: peer no link and no address")
	// ErrUnreachable is a Call to a node whose last dial failed less than
	// the redial backoff ago; it wraps nothing of that dial but its text.
	ErrUnreachable = errors.New("upu: peer unreachable")
	// ErrRefused is a dial the remote node turned down: a bad peer token,
	// or a node that does not link.
	ErrRefused = errors.New("upu: peer link refused")
	// ErrWrongNode is a dial answered by another node than the one asked
	// for: the address is stale.
	ErrWrongNode = errors.New("upu: peer wrong node at address")
	// ErrLinkLost is a link that died while a Call was under way: the
	// request may or may not have been handled.
	ErrLinkLost = errors.New("upu: peer link lost")
	// ErrUnknownKind is a Call the remote node has no handler for.
	ErrUnknownKind = errors.New("upu: peer unknown message kind")
	// ErrTooLarge is a request or response over Config.MaxMessage.
	ErrTooLarge = errors.New("upu: peer message too large")
	// ErrRemote is a Call whose handler failed on the remote node; it is
	// wrapped in a *RemoteError carrying the handler's message.
	ErrRemote = errors.New("upu: peer handler failed")
	// ErrBadFrame is a stream whose bytes are not the link format.
	ErrBadFrame = errors.New("upu: peer bad frame")
)

// RemoteError is a handler's failure on the remote node, as its message.
type RemoteError struct {
	Kind    Kind
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrRemote, e.Kind, e.Message)
}

// Unwrap makes errors.Is(err, ErrRemote) hold.
func (e *RemoteError) Unwrap() error { return ErrRemote }
