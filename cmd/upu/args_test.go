package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	cases := []struct{ in, want string }{
		{"upu set k v --ttl 30s", "upu set --ttl 30s k v"},
		{"upu set k v --ttl=30s", "upu set --ttl=30s k v"},
		{"upu --nodes a:1 get k --scope up", "upu --nodes a:1 get --scope up k"},
		{"upu get --scope up k", "upu get --scope up k"},
		{"upu incr k -5", "upu incr k -5"},
		{"upu set k -- --ttl", "upu set k -- --ttl"},
		{"upu status --json", "upu status --json"},
		{"upu reqid decode abc", "upu reqid decode abc"},
		{"upu cascade set-parent r a:1 --json --nodes b:2", "upu --nodes b:2 cascade set-parent --json r a:1"},
		{"upu serve --addr x:1 --join a,b", "upu serve --addr x:1 --join a,b"},
		{"upu", "upu"},
		{"upu nosuch --x", "upu nosuch --x"},
		{"upu get k --bogus", "upu get --bogus k"},
		{"upu set k -", "upu set k -"},
		{"upu incr k -5 --nodes a:1", "upu --nodes a:1 incr k -5"},
		{"upu --timeout 1s get k --nodes a:1 --scope up", "upu --timeout 1s --nodes a:1 get --scope up k"},
	}
	for _, tc := range cases {
		args, err := interspersed(app, strings.Fields(tc.in))
		if got := strings.Join(args, " "); err != nil || got != tc.want {
			t.Errorf("%q -> %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if args, _ := interspersed(app, strings.Fields("upu set k v --ttl 1s")); !slices.Equal(args, strings.Fields("upu set --ttl 1s k v")) {
		t.Fatal("slice form differs")
	}
	for _, in := range []string{"upu get k --scope", "upu set k v --ttl"} {
		if _, err := interspersed(app, strings.Fields(in)); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: err = %v, want ErrUsage (a flag without its value)", in, err)
		}
	}
}
