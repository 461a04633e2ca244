package kv

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/reqid"
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
	Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, r crdt.Record) bool) error
}

// Upstream answers the reads that look beyond this node (ScopeUp,
// ScopeRoot): the cascade to the parent domain implements it.
type Upstream interface {
	Read(ctx context.Context, key []byte, scope Scope) (crdt.View, crdt.Record, error)
}

// Deps are the service's collaborators. Upstream may be nil: reads beyond
// this node then fail with ErrScopeUnavailable. Registerer, when set,
// exports the service's metrics.
type Deps struct {
	Store      Store
	Clock      clock.Clock
	Upstream   Upstream
	Registerer prometheus.Registerer
}

// Service is the data API of a node.
type Service struct {
	cfg      Config
	store    Store
	clk      clock.Clock
	upstream Upstream
	ids      *reqid.Generator
	metrics  *metrics
}

// New makes a service over deps.Store.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real()
	}
	return &Service{
		cfg:      cfg.withDefaults(),
		store:    deps.Store,
		clk:      deps.Clock,
		upstream: deps.Upstream,
		ids:      reqid.NewGenerator(uint64(cfg.NodeID), deps.Clock),
		metrics:  newMetrics(deps.Registerer),
	}, nil
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
	start := s.clk.Now()
	v, r, err := s.read(ctx, key, scope)
	s.metrics.time(opGet, s.clk.Now().Sub(start))
	s.metrics.observe(opGet, err)
	return v, r, err
}

func (s *Service) read(ctx context.Context, key []byte, scope Scope) (crdt.View, crdt.Record, error) {
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

// Scan calls fn with every record's key and its view at the service's
// time, dead records included (View.Found is false for them), in key order
// from start, until fn returns false, limit records have been seen (limit
// <= 0: no limit) or ctx ends. fn may keep key.
func (s *Service) Scan(ctx context.Context, start []byte, limit int, fn func(key []byte, v crdt.View) bool) error {
	begin := s.clk.Now()
	now := begin.UnixMilli()
	err := s.store.Scan(ctx, start, limit, func(key []byte, r crdt.Record) bool { return fn(key, r.Read(now)) })
	s.metrics.time(opScan, s.clk.Now().Sub(begin))
	s.metrics.observe(opScan, err)
	return err
}

// Now is the service clock's time.
func (s *Service) Now() time.Time { return s.clk.Now() }

// NewRequestID makes a request ID stamped with at, the time the request
// was read (callers read the clock once per batch of requests).
func (s *Service) NewRequestID(at time.Time) reqid.ID { return s.ids.NextAt(at) }

// RequestID adopts the caller's request ID when it is one of ours (made by
// another node or by the client library), so that a request can be
// followed across hops; otherwise it makes a new one stamped with at.
func (s *Service) RequestID(caller string, at time.Time) reqid.ID {
	if caller != "" {
		if id, err := reqid.Parse(caller); err == nil {
			return id
		}
	}
	return s.ids.NextAt(at)
}
