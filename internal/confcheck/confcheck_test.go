package confcheck

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

var errBad = errors.New("upu: invalid test config")

func TestListErr(t *testing.T) {
	var l List
	if err := l.Err(errBad); err != nil {
		t.Fatalf("empty list: Err = %v, want nil", err)
	}
	l.Add("Size", -1, "must not be negative")
	l.Add("Addr", "x", "want host:port")
	err := l.Err(errBad)
	if !errors.Is(err, errBad) {
		t.Fatalf("Err = %v, does not wrap the sentinel", err)
	}
	want := "upu: invalid test config: Size=-1: must not be negative\nupu: invalid test config: Addr=\"x\": want host:port"
	if err.Error() != want {
		t.Fatalf("Err = %q, want %q", err, want)
	}
}

func TestFields(t *testing.T) {
	var a, b List
	a.Add("A", 1, "one")
	b.Add("B", 2, "two")
	b.Add("C", 3, "three")
	tree := fmt.Errorf("outer: %w", errors.Join(a.Err(errBad), errors.New("not a field"), b.Err(errBad)))
	var got []string
	for _, fe := range Fields(tree) {
		got = append(got, fe.Field)
	}
	if want := []string{"A", "B", "C"}; !slices.Equal(got, want) {
		t.Fatalf("Fields = %v, want %v", got, want)
	}
	if Fields(nil) != nil || Fields(errBad) != nil {
		t.Fatal("Fields of an error without fields is not empty")
	}
}
