package crdt

import (
	"errors"
	"math"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

func TestNodeIDStringParse(t *testing.T) {
	tests := []struct {
		s       string
		want    NodeID
		wantErr bool
	}{
		{"0000000000000000", 0, false},
		{"0123456789abcdef", 0x0123456789abcdef, false},
		{"ffffffffffffffff", math.MaxUint64, false},
		{"0123456789ABCDEF", 0x0123456789abcdef, false}, // upper case accepted; String gives lower
		{"", 0, true},
		{"123456789abcdef", 0, true},   // 15 digits
		{"00123456789abcdef", 0, true}, // 17 digits
		{"0x23456789abcdef", 0, true},
		{"+123456789abcdef", 0, true},
		{"-123456789abcdef", 0, true},
		{" 123456789abcdef", 0, true},
		{"0123456789abcdeg", 0, true},
		{"0123_56789abcdef", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseNodeID(tt.s)
		if tt.wantErr {
			if !errors.Is(err, ErrBadNodeID) {
				t.Errorf("ParseNodeID(%q) = %v, %v; want ErrBadNodeID", tt.s, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseNodeID(%q) = %v, %v; want %v", tt.s, got, err, tt.want)
		}
	}
	if s := NodeID(0xab).String(); s != "00000000000000ab" {
		t.Errorf("String = %q", s)
	}
	rapid.Check(t, func(t *rapid.T) {
		n := NodeID(rapid.Uint64().Draw(t, "id"))
		s := n.String()
		back, err := ParseNodeID(s)
		if err != nil || back != n || len(s) != 16 {
			t.Fatalf("%d -> %q -> %d, %v", n, s, back, err)
		}
	})
}

func TestTimestampParts(t *testing.T) {
	tests := []struct {
		ms      int64
		logical uint16
	}{
		{0, 0}, {0, 1}, {1, 0}, {1_700_000_000_123, 0}, {1_700_000_000_123, math.MaxUint16}, {1<<48 - 1, 42},
	}
	for _, tt := range tests {
		ts := MakeTimestamp(tt.ms, tt.logical)
		if ts.Millis() != tt.ms || ts.Logical() != tt.logical {
			t.Errorf("MakeTimestamp(%d, %d) -> %d, %d", tt.ms, tt.logical, ts.Millis(), ts.Logical())
		}
	}
	// The physical part dominates the order; the logical part breaks ties.
	if !(MakeTimestamp(5, math.MaxUint16) < MakeTimestamp(6, 0) && MakeTimestamp(5, 1) < MakeTimestamp(5, 2)) {
		t.Error("timestamps do not order by (ms, logical)")
	}
}

func TestHLC(t *testing.T) {
	var c HLC
	steps := []struct {
		name    string
		wall    int64 // Now(wall); 0 with observe set means Observe instead
		observe Timestamp
		want    Timestamp
	}{
		{"first reading is the wall clock", 1000, 0, MakeTimestamp(1000, 0)},
		{"same millisecond ticks the logical part", 1000, 0, MakeTimestamp(1000, 1)},
		{"wall clock going back does not", 990, 0, MakeTimestamp(1000, 2)},
		{"wall clock ahead resets the logical part", 1005, 0, MakeTimestamp(1005, 0)},
		{"observing the past changes nothing", 0, MakeTimestamp(900, 9), MakeTimestamp(1005, 0)},
		{"observing the future moves the clock", 0, MakeTimestamp(2000, 3), MakeTimestamp(2000, 3)},
		{"later readings follow the observed one", 1006, 0, MakeTimestamp(2000, 4)},
		{"the wall clock takes over again", 2001, 0, MakeTimestamp(2001, 0)},
	}
	for _, s := range steps {
		if s.observe != 0 {
			c.Observe(s.observe)
			if got := c.Last(); got != s.want {
				t.Fatalf("%s: Last = %v, want %v", s.name, got, s.want)
			}
			continue
		}
		if got := c.Now(s.wall); got != s.want {
			t.Fatalf("%s: Now(%d) = %v, want %v", s.name, s.wall, got, s.want)
		}
		if c.Last() != s.want {
			t.Fatalf("%s: Last = %v", s.name, c.Last())
		}
	}
}

// TestHLCConcurrent: readings taken concurrently, while other goroutines
// observe remote timestamps, are unique and increase within each goroutine.
// Run it with -race.
func TestHLCConcurrent(t *testing.T) {
	const (
		readers = 4
		perG    = 5000
	)
	var c HLC
	var wg sync.WaitGroup
	got := make([][]Timestamp, readers)
	for g := range readers {
		wg.Go(func() {
			for i := range perG {
				// A wall clock that stalls and jumps back now and then.
				got[g] = append(got[g], c.Now(int64(1000+i/100-(i%7))))
			}
		})
	}
	wg.Go(func() {
		for i := range perG {
			c.Observe(MakeTimestamp(int64(1000+i/50), uint16(i)))
		}
	})
	wg.Wait()
	seen := make(map[Timestamp]bool, readers*perG)
	for g, ts := range got {
		for i, x := range ts {
			if seen[x] {
				t.Fatalf("timestamp %v issued twice", x)
			}
			seen[x] = true
			if i > 0 && x <= ts[i-1] {
				t.Fatalf("goroutine %d: %v after %v", g, x, ts[i-1])
			}
		}
	}
	if last := c.Last(); last < MakeTimestamp(1000+(perG-1)/50, uint16(perG-1)) {
		t.Fatalf("clock %v behind an observed timestamp", last)
	}
}
