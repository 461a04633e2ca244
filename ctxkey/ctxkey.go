package ctxkey

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/store"
)

// ErrBadToken is a context token that no key of the domain signed for its
// key: forged, altered, truncated, or made for another key.
var ErrBadToken = errors.New("upu: bad context token")

const (
	keySize = 32 // bytes of an HMAC-SHA256 key
	tagSize = 16 // bytes of the truncated tag
	idSize  = 8  // random bytes of a key's name, written in hex
)

// Store is what the keyring needs of the store: its system keyspace.
type Store interface {
	ScanSystem(ctx context.Context, fn func(key []byte, r crdt.Record) bool) error
	ApplyBatch(ctx context.Context, ws []store.Write, out []store.Result)
}

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("upu: ctxkey: invalid config")

// Config names the domain whose keys the keyring uses.
type Config struct {
	Domain string // zero: "default"
}

// DefaultConfig is the configuration of a node of the default domain.
func DefaultConfig() Config { return Config{Domain: "default"} }

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var l confcheck.List
	if n := len(keyPrefix(c.Domain)) + 2*idSize; n > store.MaxKeySizeLimit {
		l.Add("Domain", c.Domain, fmt.Sprintf("too long: its key names take %d bytes, limit %d", n, store.MaxKeySizeLimit))
	}
	return l.Err(ErrInvalidConfig)
}

func keyPrefix(domain string) []byte { return []byte("ctxkey/" + domain + "/") }

// Keyring signs and verifies context tokens with the domain's keys.
type Keyring struct {
	prefix []byte
	store  Store // nil: a keyring of fixed keys (Fixed)

	mu   sync.RWMutex
	keys [][]byte // every key, by name; the last one signs
}

// Open loads the domain's keys from st, creating one when there is none.
func Open(ctx context.Context, cfg Config, st Store) (*Keyring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := &Keyring{prefix: keyPrefix(cmp.Or(cfg.Domain, DefaultConfig().Domain)), store: st}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	if len(k.keys) > 0 {
		return k, nil
	}
	if err := k.create(ctx); err != nil {
		return nil, err
	}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	if len(k.keys) == 0 {
		return nil, errors.New("upu: ctxkey: the key written is not in the store")
	}
	return k, nil
}

// Fixed is a keyring of the given keys that reads no store, for a service
// that is not a node of a domain; the last key signs. It keeps its own
// copies.
func Fixed(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("upu: ctxkey: no key")
	}
	k := &Keyring{}
	for _, key := range keys {
		if len(key) < keySize {
			return nil, fmt.Errorf("upu: ctxkey: a key of %d bytes, want at least %d", len(key), keySize)
		}
		k.keys = append(k.keys, bytes.Clone(key))
	}
	return k, nil
}

// Random is a keyring of one new random key, good for this process only.
func Random() (*Keyring, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("upu: ctxkey: random key: %w", err)
	}
	return Fixed(key)
}

// Len is the number of keys the keyring verifies with.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// Seal returns the signed token for a write of key with causal context c.
func (k *Keyring) Seal(key []byte, c crdt.Context) []byte {
	tok := crdt.EncodeToken(key, c)
	k.mu.RLock()
	signer := k.keys[len(k.keys)-1]
	k.mu.RUnlock()
	return tag(tok, signer, key, tok)
}

// Verify returns the causal context of a token Seal made for key with any
// key of the domain; anything else is ErrBadToken.
func (k *Keyring) Verify(ctx context.Context, key, token []byte) (crdt.Context, error) {
	if len(token) < tagSize {
		return crdt.Context{}, fmt.Errorf("%w: %d bytes", ErrBadToken, len(token))
	}
	body, got := token[:len(token)-tagSize], token[len(token)-tagSize:]
	ok := k.check(key, body, got)
	if !ok && k.store != nil {
		// A key a member created may have arrived since the last load.
		if err := k.reload(ctx); err != nil {
			return crdt.Context{}, err
		}
		ok = k.check(key, body, got)
	}
	if !ok {
		return crdt.Context{}, fmt.Errorf("%w: no key of the domain signed it for this key", ErrBadToken)
	}
	c, err := crdt.DecodeToken(key, body)
	if err != nil {
		// Signed but unreadable: not a token of this version.
		return crdt.Context{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	return c, nil
}

func (k *Keyring) check(key, body, got []byte) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var want [tagSize]byte
	for _, hk := range k.keys {
		if hmac.Equal(tag(want[:0], hk, key, body), got) {
			return true
		}
	}
	return false
}

// tag appends to dst the truncated HMAC of key and body under hk; the
// key's length comes first so that no (key, body) pair reads as another.
func tag(dst, hk, key, body []byte) []byte {
	m := hmac.New(sha256.New, hk)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	m.Write(n[:])
	m.Write(key)
	m.Write(body)
	var sum [sha256.Size]byte
	return append(dst, m.Sum(sum[:0])[:tagSize]...)
}

// reload reads every key of the domain from the store.
func (k *Keyring) reload(ctx context.Context) error {
	type named struct{ name, key []byte }
	var found []named
	err := k.store.ScanSystem(ctx, func(name []byte, r crdt.Record) bool {
		if !k.isKeyName(name) {
			return true
		}
		if v := r.Read(0); v.Found && len(v.Value) == keySize {
			found = append(found, named{name: bytes.Clone(name), key: bytes.Clone(v.Value)})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("upu: ctxkey: read the domain's keys: %w", err)
	}
	slices.SortFunc(found, func(a, b named) int { return bytes.Compare(a.name, b.name) })
	keys := make([][]byte, len(found))
	for i, f := range found {
		keys[i] = f.key
	}
	if len(keys) == 0 {
		return nil // Open creates one; a later reload never loses keys this way
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// isKeyName reports whether name is a key of this domain's keyring and not
// of a domain whose name extends this one's (dc1/x beside dc1).
func (k *Keyring) isKeyName(name []byte) bool {
	id, ok := bytes.CutPrefix(name, k.prefix)
	if !ok || len(id) != 2*idSize {
		return false
	}
	_, err := hex.DecodeString(string(id))
	return err == nil
}

// create writes a new random key under a new random name.
func (k *Keyring) create(ctx context.Context) error {
	var raw [keySize + idSize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("upu: ctxkey: random key: %w", err)
	}
	name := hex.AppendEncode(bytes.Clone(k.prefix), raw[keySize:])
	out := make([]store.Result, 1)
	k.store.ApplyBatch(ctx, []store.Write{{Op: store.OpSet, Key: name, Value: raw[:keySize], System: true}}, out)
	if out[0].Err != nil {
		return fmt.Errorf("upu: ctxkey: write the domain's key: %w", out[0].Err)
	}
	return nil
}
