package kv

import (
	"context"
	"errors"
	"fmt"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/ctxkey"
	"github.com/upu/upu/store"
)

// Errors of the service. Each wraps the store's or the CRDT layer's error
// for the same failure, so errors.Is matches either; a front end maps these
// to its wire codes (see Kind).
var (
	ErrNotFound      = store.ErrNotFound
	ErrTooLarge      = store.ErrTooLarge
	ErrKeyTooLarge   = fmt.Errorf("upu: key too large: %w", store.ErrTooLarge)
	ErrValueTooLarge = fmt.Errorf("upu: value too large: %w", store.ErrTooLarge)
	ErrBadRequest    = store.ErrBadRequest
	ErrEmptyKey      = fmt.Errorf("upu: empty key: %w", store.ErrBadRequest)
	ErrNegativeTTL   = fmt.Errorf("upu: negative ttl: %w", store.ErrBadRequest)
	ErrUnknownScope  = fmt.Errorf("upu: unknown scope: %w", store.ErrBadRequest)
	ErrWrongType     = crdt.ErrWrongType
	ErrOverflow      = crdt.ErrOverflow // an increment past int64, a bad request
	ErrClosed        = store.ErrClosed
	// ErrScopeUnavailable is a read asking beyond this node of a service
	// without an Upstream (one that is not part of a domain tree).
	ErrScopeUnavailable = errors.New("upu: scope unavailable: this node reads nothing beyond itself")
	// ErrBadContext is a write's causal-context token that no key of the
	// domain signed for its key; a bad request.
	ErrBadContext = ctxkey.ErrBadToken
)

// Kind classifies an error into the few outcomes every protocol knows.
type Kind uint8

const (
	KindOK Kind = iota
	KindInternal
	KindNotFound
	KindTooLarge
	KindBadRequest
	KindWrongType
	KindUnavailable
	KindTimeout
	KindScopeUnavailable
)

// KindOf says which outcome err is. Only KindInternal means the server
// failed the caller.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return KindOK
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrTooLarge):
		return KindTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrOverflow), errors.Is(err, crdt.ErrBadEncoding), errors.Is(err, ErrBadContext):
		return KindBadRequest
	case errors.Is(err, ErrWrongType):
		return KindWrongType
	case errors.Is(err, ErrClosed):
		return KindUnavailable
	case errors.Is(err, ErrScopeUnavailable):
		return KindScopeUnavailable
	case errors.Is(err, cascade.ErrParentUnreachable):
		return KindUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	return KindInternal
}

var kindNames = [...]string{
	KindOK:               "ok",
	KindInternal:         "internal",
	KindNotFound:         "not found",
	KindTooLarge:         "too large",
	KindBadRequest:       "bad request",
	KindWrongType:        "wrong type",
	KindUnavailable:      "unavailable",
	KindTimeout:          "timeout",
	KindScopeUnavailable: "scope unavailable",
}

// String names the kind as the binary protocol names its error code, so
// that metrics read the same whichever protocol a request came by.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}
