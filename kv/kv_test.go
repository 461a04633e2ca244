package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(store.Config{InMemory: true, MaxKeySize: 8, MaxValueSize: 16}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{MaxKeySize: 8, MaxValueSize: 16}, Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{MaxKeySize: store.MaxKeySizeLimit + 1}, "MaxKeySize"},
		{Config{MaxValueSize: MaxValueSizeLimit + 1}, "MaxValueSize"},
		{Config{WriteTimeout: -1}, "WriteTimeout"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: Validate() = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	if err := (Config{MaxKeySize: store.MaxKeySizeLimit}).Validate(); err != nil {
		t.Errorf("the store's own key limit refused: %v", err)
	}
}

func TestReadScopesAndLimits(t *testing.T) {
	s := newService(t)
	for _, tc := range []struct {
		key   string
		scope Scope
		want  error
		kind  Kind
	}{
		{"k", ScopeLocal, ErrNotFound, KindNotFound},
		{"k", ScopeUp, ErrScopeUnavailable, KindScopeUnavailable},
		{"k", ScopeRoot, ErrScopeUnavailable, KindScopeUnavailable},
		{"k", 9, ErrUnknownScope, KindBadRequest},
		{"", ScopeLocal, ErrEmptyKey, KindBadRequest},
		{"123456789", ScopeLocal, ErrKeyTooLarge, KindTooLarge},
	} {
		_, err := s.NewBatch(ProtocolNative).Read(context.Background(), []byte(tc.key), tc.scope, reqid.ID{})
		if !errors.Is(err, tc.want) || KindOf(err) != tc.kind {
			t.Errorf("Read(%q, %d) = %v (kind %d), want %v (kind %d)", tc.key, tc.scope, err, KindOf(err), tc.want, tc.kind)
		}
	}
}

func TestBatchAppliesInOrderAndReadSeesIt(t *testing.T) {
	s := newService(t)
	b := s.NewBatch(ProtocolNative)
	for _, w := range []Write{
		{Op: OpSet, Key: []byte("a"), Value: []byte("1")},
		{Op: OpSet, Key: []byte("a"), Value: []byte("2"), Cond: CondAbsent},
		{Op: OpIncr, Key: []byte("n"), Delta: 5},
	} {
		if err := b.Add(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(Write{Op: OpSet, Key: []byte("a"), Value: []byte(strings.Repeat("v", 17))}); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized value: %v, want ErrValueTooLarge", err)
	}
	res := b.Apply(context.Background())
	if len(res) != 3 || res[0].Err != nil || !res[1].Skipped || res[2].Counter != 5 {
		t.Fatalf("results %+v", res)
	}
	b.Reset()
	a, err := s.NewBatch(ProtocolNative).Read(context.Background(), []byte("a"), ScopeLocal, reqid.ID{})
	v := a.View
	if err != nil || string(v.Value) != "1" {
		t.Fatalf("read after batch: %q %v", v.Value, err)
	}
}

func TestScanSeesDeadRecordsAsNotFound(t *testing.T) {
	s := newService(t)
	b := s.NewBatch(ProtocolNative)
	for _, w := range []Write{
		{Op: OpSet, Key: []byte("a"), Value: []byte("1")},
		{Op: OpSet, Key: []byte("b"), Value: []byte("2")},
		{Op: OpDel, Key: []byte("b")},
		{Op: OpSet, Key: []byte("c"), Value: []byte("3")},
	} {
		if err := b.Add(w); err != nil {
			t.Fatal(err)
		}
	}
	b.Apply(context.Background())
	b.Reset()
	for _, tc := range []struct {
		start string
		limit int
		want  string
	}{
		{"", 0, "a+ b- c+"},
		{"b", 0, "b- c+"},
		{"", 2, "a+ b-"},
	} {
		var got []string
		err := s.NewBatch(ProtocolNative).Scan(context.Background(), []byte(tc.start), tc.limit, func(key []byte, v crdt.View) bool {
			mark := "-"
			if v.Found {
				mark = "+"
			}
			got = append(got, string(key)+mark)
			return true
		})
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("Scan(%q, %d) = %q, %v; want %q", tc.start, tc.limit, got, err, tc.want)
		}
	}
}

func TestRequestIDAdoptsOnlyOurs(t *testing.T) {
	s := newService(t)
	at := time.UnixMilli(1_700_000_000_000)
	ours := s.NewRequestID(at)
	for _, tc := range []struct {
		caller string
		adopt  bool
	}{
		{ours.String(), true},
		{"", false},
		{"not-a-request-id", false},
	} {
		got := s.RequestID(tc.caller, at)
		if (got == ours) != tc.adopt || got.IsZero() || !got.Time().Equal(at) && !tc.adopt {
			t.Errorf("RequestID(%q) = %s, adopt %v", tc.caller, got, tc.adopt)
		}
	}
}

func TestMetricsCountEveryOperation(t *testing.T) {
	st, err := store.Open(store.Config{InMemory: true}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	s, err := New(Config{MaxKeySize: 4}, Deps{Store: st, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch(ProtocolRESP)
	b.Add(Write{Op: OpSet, Key: []byte("k"), Value: []byte("v")})
	b.Add(Write{Op: OpIncr, Key: []byte("k"), Delta: 1}) // wrong type
	b.Add(Write{Op: OpSet, Key: []byte("toolong")})      // refused by Add
	b.Apply(context.Background())
	b.Reset()
	b.Read(context.Background(), []byte("k"), ScopeLocal, reqid.ID{})
	nb := s.NewBatch(ProtocolNative)
	nb.Read(context.Background(), []byte("nope"), ScopeLocal, reqid.ID{})
	nb.Scan(context.Background(), nil, 0, func([]byte, crdt.View) bool { return true })
	got := gathered(t, reg)
	for _, want := range []string{
		`upu_requests_total{op="set",protocol="resp",result="ok"} 1`,
		`upu_requests_total{op="set",protocol="resp",result="too large"} 1`,
		`upu_requests_total{op="incr",protocol="resp",result="wrong type"} 1`,
		`upu_requests_total{op="get",protocol="resp",result="ok"} 1`,
		`upu_requests_total{op="get",protocol="native",result="not found"} 1`,
		`upu_requests_total{op="scan",protocol="native",result="ok"} 1`,
		`upu_request_seconds_count{op="set",protocol="resp"} 1`,
		`upu_request_seconds_count{op="incr",protocol="resp"} 1`,
		`upu_request_seconds_count{op="scan",protocol="native"} 1`,
		`upu_request_seconds_count{op="set",protocol="native"} 0`,
	} {
		if !got[want] {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// gathered renders reg's counters and histogram counts as name{labels} value.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			series := "{" + strings.Join(labels, ",") + "}"
			if c := m.GetCounter(); c != nil {
				out[fmt.Sprintf("%s%s %v", f.GetName(), series, c.GetValue())] = true
			}
			if h := m.GetHistogram(); h != nil {
				out[fmt.Sprintf("%s_count%s %d", f.GetName(), series, h.GetSampleCount())] = true
			}
		}
	}
	return out
}

func TestBatchReadCountsEveryReadAndSamplesLatency(t *testing.T) {
	st, err := store.Open(store.Config{InMemory: true}, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	s, err := New(Config{}, Deps{Store: st, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch(ProtocolNative)
	for range 2 * readSample {
		if _, err := b.Read(context.Background(), []byte("k"), ScopeLocal, reqid.ID{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read of a missing key: %v", err)
		}
	}
	got := gathered(t, reg)
	for _, want := range []string{
		fmt.Sprintf(`upu_requests_total{op="get",protocol="native",result="not found"} %d`, 2*readSample),
		`upu_request_seconds_count{op="get",protocol="native"} 2`,
	} {
		if !got[want] {
			t.Errorf("metrics lack %s", want)
		}
	}
}
