package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	cases := []struct{ in, want string }{
		{"upu set k v --ttl 30s", "upu set --ttl 30s k v"},
		{"upu set k v --ttl=30s", "upu set --ttl=30s k v"},
		{"upu --nodes a:1 get k --scope up", "upu --nodes a:1 get --scope up k"},
		{"upu get --scope up k", "upu get --scope up k"},
		{"upu incr k -5", "upu incr k -5"},
		{"upu set k -- --ttl", "upu set k -- --ttl"},
		{"upu status --json", "upu status --json"},
		{"upu reqid decode abc", "upu reqid decode abc"},
		{"upu serve --addr x:1 --join a,b", "upu serve --addr x:1 --join a,b"},
		{"upu", "upu"},
		{"upu nosuch --x", "upu nosuch --x"},
	}
	for _, tc := range cases {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
	}
	if args := strings.Fields("upu set k v --ttl 1s"); !slices.Equal(interspersed(app, args), strings.Fields("upu set --ttl 1s k v")) {
		t.Fatal("slice form differs")
	}
}
