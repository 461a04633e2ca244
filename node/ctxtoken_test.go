package node

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/upu/upu/client"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/protocol"
)

// TestContextTokensAcrossDomain: a token made on one member is good on
// another member of its domain; forged, altered and foreign tokens are
// refused with the typed error; the keys outlive a restart.
func TestContextTokensAcrossDomain(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	a := startMember(t, Config{Domain: "dc1", DataDir: dirA})
	b := startMember(t, Config{Domain: "dc1"}, a)
	other := startNode(t, Config{Domain: "dc1"}) // same name, not a member: keys of its own
	ca, cb, co := newClient(t, a, protocol.RoleClient, ""), newClient(t, b, protocol.RoleClient, ""), newClient(t, other, protocol.RoleClient, "")

	key := []byte("k")
	tokA, err := ca.Set(ctx, key, []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "A's token good on B", func() bool {
		_, err := cb.Set(ctx, key, []byte("v2"), client.WithContext(tokA))
		return err == nil
	})

	tokO, err := co.Set(ctx, key, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(tokA)
	flipped[len(flipped)/2] ^= 1
	// The vector widened to cover writes the client never saw, with the
	// genuine token's tag.
	wide := crdt.EncodeToken(key, crdt.Context{VV: crdt.VersionVector{{Node: b.ID(), Counter: 1 << 40}}})
	altered := append(wide, tokA[len(tokA)-16:]...)
	cases := []struct {
		name  string
		token []byte
	}{
		{"random bytes", bytes.Repeat([]byte{0x5a}, len(tokA))},
		{"another domain's key", tokO},
		{"a flipped byte", flipped},
		{"an altered vector", altered},
		{"unsigned", wide},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, cl := range []*client.Client{ca, cb} {
				if _, err := cl.Set(ctx, key, []byte("forged"), client.WithContext(tc.token)); !errors.Is(err, client.ErrBadContext) {
					t.Fatalf("Set = %v, want ErrBadContext", err)
				}
				if err := cl.Del(ctx, key, client.WithContext(tc.token)); !errors.Is(err, client.ErrBadContext) {
					t.Fatalf("Del = %v, want ErrBadContext", err)
				}
			}
		})
	}
	if got := valueOn(ca, "k"); got == "forged" {
		t.Fatal("a forged write landed")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2 := startNode(t, Config{Domain: "dc1", DataDir: dirA})
	if _, err := newClient(t, a2, protocol.RoleClient, "").Set(ctx, key, []byte("v3"), client.WithContext(tokA)); err != nil {
		t.Fatalf("A's token after A restarted: %v", err)
	}
}
