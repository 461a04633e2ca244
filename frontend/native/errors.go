package native

import (
	"errors"

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
