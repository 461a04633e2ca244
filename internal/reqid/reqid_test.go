package reqid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/upu/upu/internal/clock"
)

func TestNewLayout(t *testing.T) {
	now := time.UnixMilli(0x0123456789ab)
	id := New(now, 0x1122334455667788, 0xdeadbeef)
	const want = "0123456789ab" + "112233445566" + "deadbeef"
	if got := id.String(); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
}

func TestDecode(t *testing.T) {
	now := time.Date(2013, 11, 21, 3, 6, 12, 345678901, time.UTC)
	id := New(now, 0x4b2c009a0a780000, 0x42b8ca96)
	if got, want := id.Time(), now.Truncate(time.Millisecond); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Time() = %v, want %v in UTC", got, want)
	}
	if got := id.NodePrefix(); got != "4b2c009a0a78" {
		t.Errorf("NodePrefix() = %s, want 4b2c009a0a78", got)
	}
	if got := id.Random(); got != 0x42b8ca96 {
		t.Errorf("Random() = %#x, want 0x42b8ca96", got)
	}
}

// Laws: the text form has 32 lowercase hex digits and parses back; the
// parts decode to what went in.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ms := rapid.Int64Range(0, 1<<48-1).Draw(t, "ms")
		node := rapid.Uint64().Draw(t, "node")
		rnd := rapid.Uint32().Draw(t, "rnd")
		id := New(time.UnixMilli(ms), node, rnd)

		s := id.String()
		if len(s) != TextLen || strings.ToLower(s) != s {
			t.Fatalf("text form %q is not %d lowercase hex digits", s, TextLen)
		}
		back, err := Parse(s)
		if err != nil || back != id {
			t.Fatalf("Parse(%q) = %v, %v; want %v", s, back, err, id)
		}
		if upper, err := Parse(strings.ToUpper(s)); err != nil || upper != id {
			t.Fatalf("Parse(upper case) = %v, %v", upper, err)
		}
		if got := id.Time().UnixMilli(); got != ms {
			t.Fatalf("Time() = %d ms, want %d", got, ms)
		}
		if got, want := id.NodePrefix(), fmt.Sprintf("%016x", node)[:12]; got != want {
			t.Fatalf("NodePrefix() = %s, want %s", got, want)
		}
		if id.Random() != rnd {
			t.Fatalf("Random() = %#x, want %#x", id.Random(), rnd)
		}
	})
}

func TestParseErrors(t *testing.T) {
	valid := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "0 characters"},
		{"short", valid[:31], "31 characters"},
		{"long", valid + "0", "33 characters"},
		{"non-hex first", "x" + valid[1:], `'x'`},
		{"non-hex second of pair", "0g" + valid[2:], `'g'`},
		{"non-hex last", valid[:31] + "z", `'z'`},
		{"space", " " + valid[1:], `' '`},
		{"dashes", "01234567-89ab-cdef-0123-456789ab", `'-'`},
		{"multibyte", "é" + valid[2:], "U+00C3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Parse(tc.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error = %v, want ErrInvalid", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if !id.IsZero() {
				t.Errorf("Parse returned %v with an error, want the zero ID", id)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	id := New(time.UnixMilli(1_700_000_000_000), 42, 7)
	b, err := json.Marshal(map[string]ID{"req_id": id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"req_id":"` + id.String() + `"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back map[string]ID
	if err := json.Unmarshal(b, &back); err != nil || back["req_id"] != id {
		t.Fatalf("unmarshal = %v, %v; want %v", back, err, id)
	}
	if err := json.Unmarshal([]byte(`"nope"`), new(ID)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unmarshal of bad text: %v, want ErrInvalid", err)
	}
}

func TestGeneratorUnique(t *testing.T) {
	// A frozen clock is the hardest case: every ID shares the millisecond.
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const node = 0xabcdef0123456789
	g := NewGenerator(node, clock.NewFake(start))

	const workers, perWorker = 8, 12_500
	results := make([][]ID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ids := make([]ID, perWorker)
			for i := range ids {
				ids[i] = g.Next()
			}
			results[w] = ids
		})
	}
	wg.Wait()

	seen := make(map[ID]struct{}, workers*perWorker)
	for _, ids := range results {
		for _, id := range ids {
			if _, dup := seen[id]; dup {
				t.Fatalf("duplicate ID %v after %d IDs", id, len(seen))
			}
			seen[id] = struct{}{}
			if !id.Time().Equal(start) || id.NodePrefix() != "abcdef012345" {
				t.Fatalf("ID %v decodes to %v on %s", id, id.Time(), id.NodePrefix())
			}
		}
	}
	if len(seen) != workers*perWorker {
		t.Fatalf("%d IDs, want %d", len(seen), workers*perWorker)
	}
}

func TestGeneratorUsesClockAndDefaultsToReal(t *testing.T) {
	fake := clock.NewFake(time.UnixMilli(1_000))
	g := NewGenerator(1, fake)
	fake.Advance(1500 * time.Millisecond)
	if got := g.Next().Time().UnixMilli(); got != 2_500 {
		t.Fatalf("ID time = %d ms, want 2500", got)
	}

	at := time.UnixMilli(123_456)
	if got := g.NextAt(at).Time(); !got.Equal(at) {
		t.Fatalf("NextAt(%v).Time() = %v", at, got)
	}

	before := time.Now().Truncate(time.Millisecond)
	id := NewGenerator(1, nil).Next()
	if id.Time().Before(before) || id.Time().After(time.Now()) {
		t.Fatalf("nil clock: ID time %v not within the call", id.Time())
	}
}

func TestScrambleIsInjectiveOnSample(t *testing.T) {
	// Consecutive counters (the generator's inputs) must never collide.
	seen := make(map[uint32]struct{}, 1<<16)
	for x := uint32(0xffff_8000); x != 0x0000_8000; x++ { // wraps through zero
		y := scramble(x)
		if _, dup := seen[y]; dup {
			t.Fatalf("scramble(%#x) = %#x collides", x, y)
		}
		seen[y] = struct{}{}
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	g := NewGenerator(1, nil)
	buf := make([]byte, 0, TextLen)
	if n := testing.AllocsPerRun(1000, func() { buf = g.Next().AppendText(buf[:0]) }); n != 0 {
		t.Fatalf("Next().AppendText allocates %v times per call, want 0", n)
	}
}

func BenchmarkGeneratorNextString(b *testing.B) {
	g := NewGenerator(0x0123456789abcdef, nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next().String()
	}
}

func BenchmarkGeneratorNextAppendText(b *testing.B) {
	g := NewGenerator(0x0123456789abcdef, nil)
	buf := make([]byte, 0, TextLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Next().AppendText(buf[:0])
	}
}

func BenchmarkGeneratorNextParallel(b *testing.B) {
	g := NewGenerator(0x0123456789abcdef, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = g.Next()
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s := New(time.Now(), 1, 2).String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}
