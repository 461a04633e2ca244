package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	sentinel := errors.New("upu: invalid config")
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"},
		{fmt.Errorf("%w: port", sentinel), "invalid config: port"},
		{errors.Join(fmt.Errorf("%w: a", sentinel), fmt.Errorf("%w: b", sentinel)), "invalid config: a; invalid config: b"},
		{errors.New("line one\nupu: line two\r\n"), "line one; line two"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.err); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestServeBadConfig: every bad flag of serve is named on one stderr line,
// prefixed once, with exit status 2, before anything is opened.
func TestServeBadConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"upu", "serve", "--data-dir", t.TempDir(), "--tombstone-horizon", "-1s", "--max-log-entries", "-5"}, strings.NewReader(""), &stdout, &stderr)
	want := "upu: invalid config: tombstone-horizon=-1s: must not be negative; invalid config: max-log-entries=-5: must not be negative\n"
	if code != exitFailure || stderr.String() != want {
		t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), exitFailure, want)
	}
}
