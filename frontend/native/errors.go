package native

import (
	"errors"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
)

// refusal words the data service's refusals as the binary protocol has
// always worded them; ok is false for any other error, sent as its own
// text.
func refusal(err error) (msg string, ok bool) {
	switch err {
	case kv.ErrEmptyKey:
		return "empty key", true
	case kv.ErrKeyTooLarge:
		return "key over max-key-size", true
	case kv.ErrValueTooLarge:
		return "value over max-value-size", true
	case kv.ErrUnknownScope:
		return "unknown scope", true
	case kv.ErrNegativeTTL:
		return "negative ttl", true
	}
	return "", false
}

// wireError maps an error of the data service to its wire code and
// message. Only CodeInternal means the server failed the caller; a miss
// carries no message.
func wireError(err error) (protocol.Code, string) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code, pe.Message
	}
	if errors.Is(err, kv.ErrBadContext) {
		return protocol.CodeBadContext, err.Error()
	}
	var code protocol.Code
	switch kv.KindOf(err) {
	case kv.KindNotFound:
		return protocol.CodeNotFound, ""
	case kv.KindTooLarge:
		code = protocol.CodeTooLarge
	case kv.KindBadRequest:
		code = protocol.CodeBadRequest
	case kv.KindWrongType:
		code = protocol.CodeWrongType
	case kv.KindUnavailable:
		code = protocol.CodeUnavailable
	case kv.KindTimeout:
		code = protocol.CodeTimeout
	case kv.KindScopeUnavailable:
		code = protocol.CodeScopeUnavailable
	default:
		code = protocol.CodeInternal
	}
	if msg, ok := refusal(err); ok {
		return code, msg
	}
	return code, err.Error()
}

// adminError maps the error of an admin request, a setting's change or
// the cascade's: a value the setting refuses is a bad request, with the
// reason; a parent domain that cannot be reached, or a cascade closing,
// is unavailable; the rest map as the data service's errors do.
func adminError(err error) (protocol.Code, string) {
	switch {
	case errors.Is(err, cascade.ErrBadParent), errors.Is(err, cascade.ErrCycle), errors.Is(err, cascade.ErrNoParent),
		errors.Is(err, logging.ErrUnknownLevel), errors.Is(err, logging.ErrInvalidConfig):
		return protocol.CodeBadRequest, err.Error()
	case errors.Is(err, cascade.ErrParentUnreachable), errors.Is(err, cascade.ErrClosed):
		return protocol.CodeUnavailable, err.Error()
	}
	return wireError(err)
}
