package clock

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	_ Clock = (*Fake)(nil)
	_ Clock = Real()
)

var epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// received returns the value waiting on ch, if any, without blocking.
func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresExactlyWhenDue(t *testing.T) {
	f := NewFake(epoch)
	tm := f.NewTimer(time.Second)

	f.Advance(time.Second - time.Nanosecond)
	if v, ok := received(tm.C()); ok {
		t.Fatalf("fired early, at %v", v)
	}
	f.Advance(time.Nanosecond)
	v, ok := received(tm.C())
	if !ok {
		t.Fatal("did not fire when due")
	}
	if want := epoch.Add(time.Second); !v.Equal(want) {
		t.Fatalf("fired with %v, want %v", v, want)
	}
	f.Advance(time.Hour)
	if _, ok := received(tm.C()); ok {
		t.Fatal("one-shot timer fired twice")
	}
	if f.Pending() != 0 {
		t.Fatalf("Pending = %d after firing, want 0", f.Pending())
	}
}

func TestFakeTimerZeroDurationDeliversAtOnce(t *testing.T) {
	f := NewFake(epoch)
	for _, d := range []time.Duration{0, -time.Second} {
		tm := f.NewTimer(d)
		if v, ok := received(tm.C()); !ok || !v.Equal(epoch) {
			t.Fatalf("NewTimer(%v): got %v, %v; want %v at once", d, v, ok, epoch)
		}
	}
}

func TestFakeFiresInDeadlineOrderAndNowMatches(t *testing.T) {
	f := NewFake(epoch)
	type firing struct {
		name string
		now  time.Duration
	}
	var got []firing
	record := func(name string) func() {
		return func() { got = append(got, firing{name, f.Now().Sub(epoch)}) }
	}
	f.AfterFunc(3*time.Second, record("c"))
	f.AfterFunc(time.Second, record("a"))
	f.AfterFunc(2*time.Second, record("b1"))
	f.AfterFunc(2*time.Second, record("b2")) // same deadline: armed later, fires later
	f.AfterFunc(10*time.Second, record("late"))

	f.Advance(5 * time.Second)

	want := []firing{{"a", time.Second}, {"b1", 2 * time.Second}, {"b2", 2 * time.Second}, {"c", 3 * time.Second}}
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if now := f.Now(); !now.Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("Now after Advance = %v, want %v", now, epoch.Add(5*time.Second))
	}
}

func TestFakeAfterFuncMayArmTimersThatFireInSameAdvance(t *testing.T) {
	f := NewFake(epoch)
	var fired []time.Duration
	var step func()
	step = func() {
		fired = append(fired, f.Now().Sub(epoch))
		if len(fired) < 3 {
			f.AfterFunc(time.Second, step)
		}
	}
	f.AfterFunc(time.Second, step)
	f.Advance(10 * time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if !slices.Equal(fired, want) {
		t.Fatalf("chained callbacks fired at %v, want %v", fired, want)
	}
}

func TestFakeAfterFuncZeroDurationRunsOnNextAdvance(t *testing.T) {
	f := NewFake(epoch)
	ran := false
	f.AfterFunc(0, func() { ran = true })
	if ran {
		t.Fatal("ran inside AfterFunc")
	}
	f.Advance(0)
	if !ran {
		t.Fatal("did not run on Advance(0)")
	}
}

func TestFakeTickerRepeats(t *testing.T) {
	f := NewFake(epoch)
	tk := f.NewTicker(time.Second)
	for i := 1; i <= 3; i++ {
		f.Advance(time.Second)
		v, ok := received(tk.C())
		if !ok {
			t.Fatalf("tick %d missing", i)
		}
		if want := epoch.Add(time.Duration(i) * time.Second); !v.Equal(want) {
			t.Fatalf("tick %d = %v, want %v", i, v, want)
		}
	}

	// Several periods in one Advance deliver one tick, the first due.
	f.Advance(5 * time.Second)
	if v, ok := received(tk.C()); !ok || !v.Equal(epoch.Add(4*time.Second)) {
		t.Fatalf("after a long advance got %v, %v; want the tick at 4s", v, ok)
	}
	if _, ok := received(tk.C()); ok {
		t.Fatal("missed ticks were queued, want dropped")
	}
	// The schedule keeps its phase: next tick at 9s.
	f.Advance(time.Second)
	if v, ok := received(tk.C()); !ok || !v.Equal(epoch.Add(9*time.Second)) {
		t.Fatalf("next tick %v, %v; want 9s", v, ok)
	}
}

func TestFakeTimerStopAndReset(t *testing.T) {
	tests := []struct {
		name      string
		do        func(f *Fake, tm Timer) bool
		wantArmed bool
		advance   time.Duration
		wantFire  bool
	}{
		{"stop armed", func(_ *Fake, tm Timer) bool { return tm.Stop() }, true, time.Hour, false},
		{"stop fired", func(f *Fake, tm Timer) bool { f.Advance(time.Second); return tm.Stop() }, false, time.Hour, false},
		{"reset armed later", func(_ *Fake, tm Timer) bool { return tm.Reset(3 * time.Second) }, true, 2 * time.Second, false},
		{"reset armed earlier", func(_ *Fake, tm Timer) bool { return tm.Reset(time.Millisecond) }, true, time.Millisecond, true},
		{"reset fired", func(f *Fake, tm Timer) bool { f.Advance(time.Second); return tm.Reset(time.Second) }, false, time.Second, true},
		{"reset stopped", func(_ *Fake, tm Timer) bool { tm.Stop(); return tm.Reset(time.Second) }, false, time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake(epoch)
			tm := f.NewTimer(time.Second)
			if got := tc.do(f, tm); got != tc.wantArmed {
				t.Fatalf("returned %v, want %v", got, tc.wantArmed)
			}
			// A value delivered before Stop or Reset must not leak out.
			if v, ok := received(tm.C()); ok {
				t.Fatalf("stale value %v after Stop/Reset", v)
			}
			f.Advance(tc.advance)
			if _, ok := received(tm.C()); ok != tc.wantFire {
				t.Fatalf("fired = %v after advancing %v, want %v", ok, tc.advance, tc.wantFire)
			}
		})
	}
}

func TestFakeAfterFuncStop(t *testing.T) {
	f := NewFake(epoch)
	ran := false
	tm := f.AfterFunc(time.Second, func() { ran = true })
	if tm.C() != nil {
		t.Fatal("AfterFunc timer has a channel")
	}
	if !tm.Stop() {
		t.Fatal("Stop of an armed AfterFunc returned false")
	}
	f.Advance(time.Hour)
	if ran {
		t.Fatal("stopped AfterFunc ran")
	}
}

func TestFakeTickerStopAndReset(t *testing.T) {
	f := NewFake(epoch)
	tk := f.NewTicker(time.Second)
	f.Advance(time.Second)
	tk.Stop()
	if _, ok := received(tk.C()); ok {
		t.Fatal("tick left in channel after Stop")
	}
	f.Advance(time.Hour)
	if _, ok := received(tk.C()); ok {
		t.Fatal("stopped ticker ticked")
	}

	tk.Reset(time.Minute)
	f.Advance(time.Minute - time.Nanosecond)
	if _, ok := received(tk.C()); ok {
		t.Fatal("reset ticker ticked before its new period")
	}
	f.Advance(time.Nanosecond)
	if _, ok := received(tk.C()); !ok {
		t.Fatal("reset ticker did not tick after its new period")
	}
}

func TestFakeTickerPanicsOnNonPositivePeriod(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewTicker(0) did not panic")
		}
	}()
	NewFake(epoch).NewTicker(0)
}

func TestFakeSet(t *testing.T) {
	f := NewFake(epoch)
	tm := f.NewTimer(time.Minute)

	f.Set(epoch.Add(-time.Hour))
	if _, ok := received(tm.C()); ok {
		t.Fatal("moving time back fired a timer")
	}
	if !f.Now().Equal(epoch.Add(-time.Hour)) {
		t.Fatalf("Now = %v after Set back", f.Now())
	}
	f.Set(epoch.Add(time.Minute))
	if v, ok := received(tm.C()); !ok || !v.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("after Set to the deadline got %v, %v", v, ok)
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := NewFake(epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)

	got := make(chan time.Time, 1)
	go func() {
		tm := f.NewTimer(time.Second)
		got <- <-tm.C()
	}()
	if err := f.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("BlockUntil: %v", err)
	}
	f.Advance(time.Second)
	select {
	case v := <-got:
		if !v.Equal(epoch.Add(time.Second)) {
			t.Fatalf("goroutine's timer fired with %v", v)
		}
	case <-ctx.Done():
		t.Fatal("goroutine's timer never fired")
	}

	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := f.BlockUntil(short, 5); err == nil {
		t.Fatal("BlockUntil with a cancelled context returned nil")
	}
}

// TestFakeConcurrentUse is for the race detector: timers are armed, reset,
// stopped and read while another goroutine advances time.
func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake(epoch)
	const workers, rounds = 4, 200
	var wg sync.WaitGroup
	var fired sync.Map
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				tm := f.NewTimer(time.Duration(i%5) * time.Millisecond)
				f.AfterFunc(time.Millisecond, func() { fired.Store(w*rounds+i, true) })
				if i%3 == 0 {
					tm.Reset(time.Millisecond)
				}
				_ = f.Now()
				tm.Stop()
			}
		})
	}
	wg.Go(func() {
		for range rounds {
			f.Advance(time.Millisecond)
		}
	})
	wg.Wait()
	f.Advance(time.Second) // flush callbacks armed after the last step

	n := 0
	fired.Range(func(any, any) bool { n++; return true })
	if n != workers*rounds {
		t.Fatalf("%d AfterFunc callbacks ran, want %d", n, workers*rounds)
	}
	if f.Pending() != 0 {
		t.Fatalf("Pending = %d, want 0", f.Pending())
	}
}
