package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Fake is a [Clock] for tests whose time moves only when the test says so.
//
// Timers and tickers fire inside [Fake.Advance] and [Fake.Set], in deadline
// order (ties in the order they were armed), each seeing Now equal to its
// deadline. Channels hold one value: a ticker that comes due several times
// in one Advance delivers the first tick and drops the rest, as a real
// ticker does for a slow reader. A timer made with a duration of zero or
// less delivers at once; an AfterFunc with such a duration runs at the next
// Advance (Advance(0) will do).
//
// AfterFunc callbacks run on the goroutine that called Advance or Set, with
// no lock held, so they may use the clock, but must not call Advance or Set.
type Fake struct {
	// advancing serialises Advance and Set, so callbacks run in deadline
	// order even when several goroutines move time.
	advancing sync.Mutex

	mu      sync.Mutex
	now     time.Time
	seq     uint64
	armed   waiters
	changed chan struct{} // closed and replaced whenever a waiter is armed
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake's current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves time forward by d, firing every timer and ticker that
// comes due. It panics if d < 0; use Set to move time back.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Fake.Advance with a negative duration")
	}
	f.advancing.Lock()
	defer f.advancing.Unlock()
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.runUntil(target)
}

// Set moves time to t, firing every timer and ticker due by then. Moving
// time back fires nothing; deadlines stay where they were.
func (f *Fake) Set(t time.Time) {
	f.advancing.Lock()
	defer f.advancing.Unlock()
	f.runUntil(t)
}

// Pending returns the number of armed timers and tickers.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.armed)
}

// BlockUntil waits until at least n timers and tickers are armed, so that a
// test can advance time only after the code under test has started waiting.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		armed, changed := len(f.armed), f.changed
		f.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// NewTimer implements [Clock].
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, w: &waiter{index: -1, ch: make(chan time.Time, 1)}}
	t.Reset(d)
	return t
}

// AfterFunc implements [Clock].
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, w: &waiter{index: -1, fn: fn}}
	t.Reset(d)
	return t
}

// NewTicker implements [Clock].
func (f *Fake) NewTicker(d time.Duration) Ticker {
	t := &fakeTicker{f: f, w: &waiter{index: -1, ch: make(chan time.Time, 1)}}
	t.Reset(d)
	return t
}

// runUntil fires everything due by target, one waiter at a time, then sets
// the time to target. The caller holds f.advancing.
func (f *Fake) runUntil(target time.Time) {
	for {
		f.mu.Lock()
		if len(f.armed) == 0 || f.armed[0].when.After(target) {
			f.now = target
			f.mu.Unlock()
			return
		}
		w := f.armed[0]
		due := w.when
		if due.After(f.now) {
			f.now = due
		}
		if w.period > 0 {
			f.seq++
			w.when, w.seq = due.Add(w.period), f.seq
			heap.Fix(&f.armed, 0)
		} else {
			heap.Pop(&f.armed)
		}
		if w.ch != nil {
			deliver(w.ch, due)
		}
		fn := w.fn
		f.mu.Unlock()
		if fn != nil {
			fn()
		}
	}
}

// arm schedules w at when. The caller holds f.mu.
func (f *Fake) arm(w *waiter, when time.Time) {
	f.seq++
	w.when, w.seq = when, f.seq
	heap.Push(&f.armed, w)
	close(f.changed)
	f.changed = make(chan struct{})
}

// disarm unschedules w and drops any value waiting in its channel,
// reporting whether it was armed. The caller holds f.mu.
func (f *Fake) disarm(w *waiter) bool {
	if w.ch != nil {
		select {
		case <-w.ch:
		default:
		}
	}
	if w.index < 0 {
		return false
	}
	heap.Remove(&f.armed, w.index)
	return true
}

// deliver sends without blocking; the channel holds one value.
func deliver(ch chan time.Time, t time.Time) {
	select {
	case ch <- t:
	default:
	}
}

type fakeTimer struct {
	f *Fake
	w *waiter
}

func (t *fakeTimer) C() <-chan time.Time {
	if t.w.ch == nil {
		return nil
	}
	return t.w.ch
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.f.disarm(t.w)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	wasArmed := t.f.disarm(t.w)
	if d <= 0 && t.w.ch != nil {
		deliver(t.w.ch, t.f.now)
		return wasArmed
	}
	t.f.arm(t.w, t.f.now.Add(max(d, 0)))
	return wasArmed
}

type fakeTicker struct {
	f *Fake
	w *waiter
}

func (t *fakeTicker) C() <-chan time.Time { return t.w.ch }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.f.disarm(t.w)
}

func (t *fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.f.disarm(t.w)
	t.w.period = d
	t.f.arm(t.w, t.f.now.Add(d))
}

// waiter is an armed timer, ticker or AfterFunc.
type waiter struct {
	when   time.Time
	seq    uint64        // arming order; breaks ties between equal deadlines
	period time.Duration // tickers only
	ch     chan time.Time
	fn     func()
	index  int // position in the heap; -1 when not armed
}

// waiters is a min-heap by (when, seq).
type waiters []*waiter

func (h waiters) Len() int { return len(h) }

func (h waiters) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h waiters) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *waiters) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}

func (h *waiters) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*h = old[:len(old)-1]
	return w
}
