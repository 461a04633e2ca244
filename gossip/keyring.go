package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// ErrBadKeyring is wrapped by errors about the content of a keyring file.
var ErrBadKeyring = errors.New("upu: bad gossip keyring")

// loadKeyring reads a keyring file: base64 keys, either as a JSON list
// (what serf writes) or one per line, blank lines ignored. The first key is
// the primary one. Errors never quote a key.
func loadKeyring(path string) (*memberlist.Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip: keyring: %w", err)
	}
	encoded, err := keyringEntries(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKeyring, path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("%w: %s: no keys", ErrBadKeyring, path)
	}
	keys := make([][]byte, len(encoded))
	for i, e := range encoded {
		key, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %d is not base64", ErrBadKeyring, path, i+1)
		}
		if err := memberlist.ValidateKey(key); err != nil {
			return nil, fmt.Errorf("%w: %s: key %d is %d bytes, want 16, 24 or 32", ErrBadKeyring, path, i+1, len(key))
		}
		keys[i] = key
	}
	ring, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKeyring, path, err)
	}
	return ring, nil
}

func keyringEntries(b []byte) ([]string, error) {
	trimmed := bytes.TrimSpace(b)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		var list []string
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, errors.New("not a JSON list of strings")
		}
		return list, nil
	}
	var entries []string
	for line := range strings.Lines(string(trimmed)) {
		if line = strings.TrimSpace(line); line != "" {
			entries = append(entries, line)
		}
	}
	return entries, nil
}
