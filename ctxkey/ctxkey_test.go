package ctxkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/store"
)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	cfg := store.Config{InMemory: true}
	if dir != "" {
		cfg = store.Config{Dir: dir}
	}
	st, err := store.Open(cfg, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sampleContext() crdt.Context {
	return crdt.Context{VV: crdt.VersionVector{{Node: 7, Counter: 3}}}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	ctx := context.Background()
	k, err := Open(ctx, Config{Domain: "dc1"}, openStore(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Random()
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	good := k.Seal(key, sampleContext())
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	random := make([]byte, len(good))
	rand.Read(random)
	// A context that has seen nothing of node 7: sealed by nobody, but
	// with the good token's tag.
	wider := crdt.EncodeToken(key, crdt.Context{VV: crdt.VersionVector{{Node: 7, Counter: 1 << 40}}})
	altered := append(wider, good[len(good)-tagSize:]...)
	cases := []struct {
		name  string
		token []byte
		key   []byte
	}{
		{"random bytes", random, key},
		{"another key's signature", other.Seal(key, sampleContext()), key},
		{"a flipped byte", flipped, key},
		{"an altered vector", altered, key},
		{"unsigned", crdt.EncodeToken(key, sampleContext()), key},
		{"too short", good[:tagSize-1], key},
		{"another data key", good, []byte("k2")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := k.Verify(ctx, tc.key, tc.token); !errors.Is(err, ErrBadToken) {
				t.Fatalf("Verify = %v, want ErrBadToken", err)
			}
		})
	}
	c, err := k.Verify(ctx, key, good)
	if err != nil {
		t.Fatalf("the good token: %v", err)
	}
	if c.VV.Get(7) != 3 {
		t.Fatalf("context = %+v", c)
	}
}

// Members that create a key each verify each other's tokens once the keys
// have met, and every key is kept.
func TestConcurrentKeysVerifyEverywhere(t *testing.T) {
	ctx := context.Background()
	a, b := openStore(t, ""), openStore(t, "")
	ka, err := Open(ctx, Config{Domain: "dc1"}, a)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := Open(ctx, Config{Domain: "dc1"}, b)
	if err != nil {
		t.Fatal(err)
	}
	tokA := ka.Seal([]byte("k"), sampleContext())
	if _, err := kb.Verify(ctx, []byte("k"), tokA); !errors.Is(err, ErrBadToken) {
		t.Fatalf("before the keys met: %v, want ErrBadToken", err)
	}
	// What the ring would do: A's key reaches B's system keyspace.
	copySystem(t, a, b)
	if _, err := kb.Verify(ctx, []byte("k"), tokA); err != nil {
		t.Fatalf("after A's key reached B: %v", err)
	}
	if kb.Len() != 2 {
		t.Fatalf("B's keyring holds %d keys, want 2", kb.Len())
	}
}

func copySystem(t *testing.T, from, to *store.Store) {
	t.Helper()
	ctx := context.Background()
	var ws []store.Write
	err := from.ScanSystem(ctx, func(key []byte, r crdt.Record) bool {
		if v := r.Read(0); v.Found {
			ws = append(ws, store.Write{Op: store.OpSet, Key: bytes.Clone(key), Value: bytes.Clone(v.Value), System: true})
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.Result, len(ws))
	to.ApplyBatch(ctx, ws, out)
	for _, r := range out {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func TestKeySurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: dir}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(ctx, Config{Domain: "dc1"}, st)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	tok := k.Seal([]byte("k"), sampleContext())
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	k2, err := Open(ctx, Config{Domain: "dc1"}, openStore(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Verify(ctx, []byte("k"), tok); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if k2.Len() != 1 {
		t.Fatalf("keyring holds %d keys after a restart, want 1", k2.Len())
	}
}

// A domain whose name extends another's, and the data keyspace, never
// lend their keys.
func TestKeysAreTheDomains(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	child, err := Open(ctx, Config{Domain: "dc1/x"}, st)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := Open(ctx, Config{Domain: "dc1"}, st)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Len() != 1 {
		t.Fatalf("dc1's keyring holds %d keys, want its own only", parent.Len())
	}
	if _, err := parent.Verify(ctx, []byte("k"), child.Seal([]byte("k"), sampleContext())); !errors.Is(err, ErrBadToken) {
		t.Fatalf("dc1 took a token of dc1/x: %v", err)
	}
	n := 0
	if err := st.Scan(ctx, nil, 0, func([]byte, crdt.Record) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a data scan sees %d records, want none (the keys are system records)", n)
	}
}

func TestFixedRefusesShortKeys(t *testing.T) {
	cases := []struct {
		name string
		keys [][]byte
		ok   bool
	}{
		{"none", nil, false},
		{"short", [][]byte{make([]byte, keySize-1)}, false},
		{"one", [][]byte{make([]byte, keySize)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Fixed(tc.keys...); (err == nil) != tc.ok {
				t.Fatalf("Fixed = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Domain: string(make([]byte, store.MaxKeySizeLimit))}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a domain too long: %v", err)
	}
}
