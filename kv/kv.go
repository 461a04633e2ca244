package kv

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/ctxkey"
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

// Upstream reaches the parent domain for the reads that look beyond this
// node (ScopeUp, ScopeRoot); the cascade implements it.
type Upstream interface {
	// Domain is this node's domain: it names the answers made here.
	Domain() string
	// ReadUp asks a member of the parent domain for key's record, carrying
	// the request ID rid. With root false the parent answers as to a read
	// of scope up (its own record, or on a miss its parent's), with root
	// true as to scope root; it returns the record and the domain that
	// answered. An error wrapping cascade.ErrNoParent says this domain is a
	// root.
	ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error)
}

// Answer is what a read found: the visible value and the key's record
// (as merged from every level asked), and for a read of scope up or root
// the domain that answered.
type Answer struct {
	View   crdt.View
	Record crdt.Record
	Domain string // empty for a local read
}

// Deps are the service's collaborators. Upstream may be nil: reads beyond
// this node then fail with ErrScopeUnavailable. Registerer, when set,
// exports the service's metrics. Tokens signs the causal-context tokens
// handed to clients; nil: a random key of this process's own (a node gives
// its domain's keyring, so that its members take each other's tokens).
type Deps struct {
	Store      Store
	Clock      clock.Clock
	Upstream   Upstream
	Tokens     *ctxkey.Keyring
	Registerer prometheus.Registerer
}

// Service is the data API of a node.
type Service struct {
	cfg      Config
	store    Store
	clk      clock.Clock
	upstream Upstream
	tokens   *ctxkey.Keyring
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
	if deps.Tokens == nil {
		var err error
		if deps.Tokens, err = ctxkey.Random(); err != nil {
			return nil, err
		}
	}
	return &Service{
		cfg:      cfg.withDefaults(),
		store:    deps.Store,
		clk:      deps.Clock,
		upstream: deps.Upstream,
		tokens:   deps.Tokens,
		ids:      reqid.NewGenerator(uint64(cfg.NodeID), deps.Clock),
		metrics:  newMetrics(deps.Registerer),
	}, nil
}

// Token is the signed causal-context token a client gets for key, whose
// causal context is c, to hand back with a later write of key.
func (s *Service) Token(key []byte, c crdt.Context) []byte { return s.tokens.Seal(key, c) }

// ParseToken returns the causal context of a token Token made for key, on
// any member of the domain; anything else is ErrBadContext.
func (s *Service) ParseToken(ctx context.Context, key, token []byte) (crdt.Context, error) {
	return s.tokens.Verify(ctx, key, token)
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

// read returns the key's visible value and its record, as far as scope
// looks; rid is the request's ID, which travels up the tree with it. A
// miss is ErrNotFound, with the Answer still naming the domain that
// answered. Batch.Read is its metered form.
func (s *Service) read(ctx context.Context, key []byte, scope Scope, rid reqid.ID) (Answer, error) {
	if err := s.CheckKey(key); err != nil {
		return Answer{}, err
	}
	switch scope {
	case ScopeLocal:
		v, r, err := s.store.Read(key)
		return Answer{View: v, Record: r}, err
	case ScopeUp, ScopeRoot:
		r, domain, err := s.readUp(ctx, key, scope == ScopeRoot, rid)
		if err != nil {
			return Answer{}, err
		}
		a := Answer{View: r.Read(s.clk.Now().UnixMilli()), Record: r, Domain: domain}
		if !a.View.Found {
			return a, ErrNotFound
		}
		return a, nil
	}
	return Answer{}, ErrUnknownScope
}

// ReadUp answers a read that looks beyond this node, for a client or for a
// child domain's member: with root false (scope up) this node's record, or
// on a miss the parent's answer, recursively; with root true (scope root)
// the root's record merged with this node's. It returns the record and the
// domain that answered; at a root, this domain. A parent that cannot be
// reached is an error: the answer would not be what the scope promises.
func (s *Service) ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error) {
	if err := s.CheckKey(key); err != nil {
		return crdt.Record{}, "", err
	}
	return s.readUp(ctx, key, root, rid)
}

// readUp is ReadUp for a key already checked.
func (s *Service) readUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error) {
	if s.upstream == nil {
		return crdt.Record{}, "", ErrScopeUnavailable
	}
	v, local, err := s.store.Read(key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return crdt.Record{}, "", err
	}
	own := s.upstream.Domain()
	if !root && v.Found {
		return local, own, nil
	}
	up, domain, err := s.upstream.ReadUp(ctx, key, root, rid)
	switch {
	case errors.Is(err, cascade.ErrNoParent):
		return local, own, nil // this domain is the root
	case err != nil:
		return crdt.Record{}, "", err
	}
	return crdt.Merge(local, up), domain, nil
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
