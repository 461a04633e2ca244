package client

import (
	"time"

	"github.com/upu/upu/protocol"
)

// GetOption changes a Get.
type GetOption interface{ applyGet(*protocol.GetRequest) }

// SetOption changes a Set.
type SetOption interface{ applySet(*protocol.SetRequest) }

// DelOption changes a Del.
type DelOption interface{ applyDel(*protocol.DelRequest) }

// IncrOption changes an Incr or Decr.
type IncrOption interface{ applyIncr(*protocol.IncrRequest) }

type scopeOption protocol.Scope

func (o scopeOption) applyGet(r *protocol.GetRequest) { r.Scope = protocol.Scope(o) }

// WithScope says how far a Get may look (default protocol.ScopeLocal).
func WithScope(s protocol.Scope) GetOption { return scopeOption(s) }

type siblingsOption struct{}

func (siblingsOption) applyGet(r *protocol.GetRequest) { r.Siblings = true }

// WithSiblings asks a Get for every live concurrent value (Item.Siblings).
func WithSiblings() GetOption { return siblingsOption{} }

type ttlOption time.Duration

func (o ttlOption) applySet(r *protocol.SetRequest) {
	d := time.Duration(o)
	r.TTLMS = d.Milliseconds()
	if d > 0 && r.TTLMS == 0 {
		r.TTLMS = 1 // a TTL under a millisecond must not mean "never expires"
	}
	if d < 0 {
		r.TTLMS = -1 // rejected with ErrBadRequest
	}
}

// WithTTL makes a Set expire after d (rounded down to milliseconds, at
// least one). Zero means no expiry; a negative d is ErrBadRequest.
func WithTTL(d time.Duration) SetOption { return ttlOption(d) }

type contextOption []byte

func (o contextOption) applySet(r *protocol.SetRequest) { r.Context = o }
func (o contextOption) applyDel(r *protocol.DelRequest) { r.Context = o }

// WithContext makes a Set or Del supersede only what the read that returned
// token (Item.Context, or the context a Set returned) had seen; concurrent
// writes survive as siblings. A write with a context is also repeated on
// another node when its connection breaks, since applying it twice has the
// effect of applying it once.
func WithContext(token []byte) WriteOption { return contextOption(token) }

// WriteOption is an option of both Set and Del.
type WriteOption interface {
	SetOption
	DelOption
}

type reqIDOption string

func (o reqIDOption) applyGet(r *protocol.GetRequest)   { r.ReqID = string(o) }
func (o reqIDOption) applySet(r *protocol.SetRequest)   { r.ReqID = string(o) }
func (o reqIDOption) applyDel(r *protocol.DelRequest)   { r.ReqID = string(o) }
func (o reqIDOption) applyIncr(r *protocol.IncrRequest) { r.ReqID = string(o) }

// ReqIDOption is an option of every keyed call.
type ReqIDOption interface {
	GetOption
	SetOption
	DelOption
	IncrOption
}

// WithReqID sends the caller's request ID (32 hex digits, see
// internal/reqid), which the node adopts and logs instead of making one, so
// one ID follows a request across systems. A string the node cannot parse
// is ignored by it.
func WithReqID(id string) ReqIDOption { return reqIDOption(id) }
