package kv

import (
	"context"
	"time"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/store"
)

// Scope says how far a read may look.
type Scope uint8

const (
	ScopeLocal Scope = iota // this node only
	ScopeUp                 // on a local miss, ask the parent domain, recursively
	ScopeRoot               // ask the root domain and merge with the local answer
)

// Store is what the service needs of the store.
type Store interface {
	Read(key []byte) (crdt.View, crdt.Record, error)
	ApplyBatch(ctx context.Context, ws []store.Write, out []store.Result)
}

// Upstream answers the reads that look beyond this node (ScopeUp,
// ScopeRoot): the cascade to the parent domain implements it.
type Upstream interface {
	Read(ctx context.Context, key []byte, scope Scope) (crdt.View, crdt.Record, error)
}

// Deps are the service's collaborators. Upstream may be nil: reads beyond
// this node then fail with ErrScopeUnavailable.
type Deps struct {
	Store    Store
	Clock    clock.Clock
	Upstream Upstream
}

// Service is the data API of a node.
type Service struct {
	cfg      Config
	store    Store
	clk      clock.Clock
	upstream Upstream
}

// New makes a service over deps.Store.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real()
	}
	return &Service{cfg: cfg.withDefaults(), store: deps.Store, clk: deps.Clock, upstream: deps.Upstream}, nil
}

// MaxKeySize and MaxValueSize are the limits in force.
func (s *Service) MaxKeySize() int   { return s.cfg.MaxKeySize }
func (s *Service) MaxValueSize() int { return s.cfg.MaxValueSize }

// CheckKey refuses an empty key or one over the limit.
func (s *Service) CheckKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > s.cfg.MaxKeySize:
		return ErrKeyTooLarge
	}
	return nil
}

// CheckValue refuses a value over the limit.
func (s *Service) CheckValue(value []byte) error {
	if len(value) > s.cfg.MaxValueSize {
		return ErrValueTooLarge
	}
	return nil
}

// Read returns the key's visible value and its record. A caller with
// writes queued on a Batch applies them first, so the read sees them.
func (s *Service) Read(ctx context.Context, key []byte, scope Scope) (crdt.View, crdt.Record, error) {
	if err := s.CheckKey(key); err != nil {
		return crdt.View{}, crdt.Record{}, err
	}
	switch scope {
	case ScopeLocal:
		return s.store.Read(key)
	case ScopeUp, ScopeRoot:
		if s.upstream == nil {
			return crdt.View{}, crdt.Record{}, ErrScopeUnavailable
		}
		return s.upstream.Read(ctx, key, scope)
	}
	return crdt.View{}, crdt.Record{}, ErrUnknownScope
}

// Now is the service clock's time.
func (s *Service) Now() time.Time { return s.clk.Now() }
