package gossip

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyring(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	k16, k24, k32 := b64(16), b64(24), b64(32)
	tests := []struct {
		name    string
		content string
		primary int // length of the primary key; 0 means an error
		count   int
	}{
		{"json list", `["` + k32 + `", "` + k16 + `"]`, 32, 2},
		{"json, one key", " [\"" + k24 + "\"]\n", 24, 1},
		{"lines", k16 + "\n" + k32 + "\n", 16, 2},
		{"blank lines and spaces", "\n  " + k24 + "  \n\n" + k16 + "\r\n", 24, 2},
		{"empty", "", 0, 0},
		{"empty json", "[]", 0, 0},
		{"bad json", `["` + k16 + `", 3]`, 0, 0},
		{"not base64", "secret key!\n", 0, 0},
		{"wrong size", b64(20), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ring, err := loadKeyring(writeFile(t, "keyring", tc.content))
			if tc.primary == 0 {
				if !errors.Is(err, ErrBadKeyring) {
					t.Fatalf("loadKeyring = %v, want ErrBadKeyring", err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error %q quotes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadKeyring: %v", err)
			}
			if got := len(ring.GetPrimaryKey()); got != tc.primary {
				t.Errorf("primary key is %d bytes, want %d", got, tc.primary)
			}
			if got := len(ring.GetKeys()); got != tc.count {
				t.Errorf("%d keys, want %d", got, tc.count)
			}
		})
	}
	if _, err := loadKeyring(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("loadKeyring of a missing file = %v, want fs.ErrNotExist", err)
	}
}
