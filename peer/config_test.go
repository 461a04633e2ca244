package peer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string // every field the error must name; none: valid
	}{
		{"defaults", Config{Self: "a"}, nil},
		{"no self", Config{}, []string{"Self"}},
		{"negative durations", Config{Self: "a", DialTimeout: -1, WriteTimeout: -1, RedialMin: -1}, []string{"DialTimeout", "WriteTimeout", "RedialMin"}},
		{"dead before a keepalive", Config{Self: "a", KeepAlive: 5 * time.Second, DeadAfter: 5 * time.Second}, []string{"DeadAfter"}},
		{"dead after the default keepalive", Config{Self: "a", DeadAfter: time.Second}, []string{"DeadAfter"}},
		{"redial bounds crossed", Config{Self: "a", RedialMin: time.Minute}, []string{"RedialMax"}},
		{"sizes", Config{Self: "a", MaxMessage: -1, MaxStreams: -1}, []string{"MaxMessage", "MaxStreams"}},
		{"all at once", Config{MaxMessage: maxMessageLimit + 1, KeepAlive: -1}, []string{"Self", "MaxMessage", "KeepAlive"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f+"=") {
					t.Errorf("Validate = %v: does not name %s", err, f)
				}
			}
			if _, err := New(tc.cfg, Deps{}); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
