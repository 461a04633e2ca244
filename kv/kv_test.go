package kv

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(store.Config{InMemory: true, MaxKeySize: 8, MaxValueSize: 16}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{MaxKeySize: 8, MaxValueSize: 16}, Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{MaxKeySize: store.MaxKeySizeLimit + 1}, "MaxKeySize"},
		{Config{MaxValueSize: MaxValueSizeLimit + 1}, "MaxValueSize"},
		{Config{WriteTimeout: -1}, "WriteTimeout"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: Validate() = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	if err := (Config{MaxKeySize: store.MaxKeySizeLimit}).Validate(); err != nil {
		t.Errorf("the store's own key limit refused: %v", err)
	}
}

func TestReadScopesAndLimits(t *testing.T) {
	s := newService(t)
	for _, tc := range []struct {
		key   string
		scope Scope
		want  error
		kind  Kind
	}{
		{"k", ScopeLocal, ErrNotFound, KindNotFound},
		{"k", ScopeUp, ErrScopeUnavailable, KindScopeUnavailable},
		{"k", ScopeRoot, ErrScopeUnavailable, KindScopeUnavailable},
		{"k", 9, ErrUnknownScope, KindBadRequest},
		{"", ScopeLocal, ErrEmptyKey, KindBadRequest},
		{"123456789", ScopeLocal, ErrKeyTooLarge, KindTooLarge},
	} {
		_, _, err := s.Read(context.Background(), []byte(tc.key), tc.scope)
		if !errors.Is(err, tc.want) || KindOf(err) != tc.kind {
			t.Errorf("Read(%q, %d) = %v (kind %d), want %v (kind %d)", tc.key, tc.scope, err, KindOf(err), tc.want, tc.kind)
		}
	}
}

func TestBatchAppliesInOrderAndReadSeesIt(t *testing.T) {
	s := newService(t)
	b := s.NewBatch()
	for _, w := range []Write{
		{Op: OpSet, Key: []byte("a"), Value: []byte("1")},
		{Op: OpSet, Key: []byte("a"), Value: []byte("2"), Cond: CondAbsent},
		{Op: OpIncr, Key: []byte("n"), Delta: 5},
	} {
		if err := b.Add(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(Write{Op: OpSet, Key: []byte("a"), Value: []byte(strings.Repeat("v", 17))}); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized value: %v, want ErrValueTooLarge", err)
	}
	res := b.Apply(context.Background())
	if len(res) != 3 || res[0].Err != nil || !res[1].Skipped || res[2].Counter != 5 {
		t.Fatalf("results %+v", res)
	}
	b.Reset()
	v, _, err := s.Read(context.Background(), []byte("a"), ScopeLocal)
	if err != nil || string(v.Value) != "1" {
		t.Fatalf("read after batch: %q %v", v.Value, err)
	}
}
