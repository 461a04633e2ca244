package clock

import "time"

// Clock tells the time and makes timers. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed. A d of zero or less fires at once.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that sends the time on its channel every
	// d, dropping ticks a slow reader misses. It panics if d <= 0.
	NewTicker(d time.Duration) Ticker
	// AfterFunc calls f once d has passed. The returned timer has a nil
	// channel; Stop cancels the call if it has not started.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a one-shot timer, as [time.Timer].
type Timer interface {
	// C returns the channel the timer fires on; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop disarms the timer and reports whether it was armed. No stale
	// value is received from C after Stop returns.
	Stop() bool
	// Reset re-arms the timer to fire after d and reports whether it was
	// armed. No stale value is received from C after Reset returns.
	Reset(d time.Duration) bool
}

// Ticker is a periodic timer, as [time.Ticker].
type Ticker interface {
	// C returns the channel the ticks arrive on.
	C() <-chan time.Time
	// Stop turns the ticker off; no more ticks are sent.
	Stop()
	// Reset stops the ticker and restarts it with period d. It panics if
	// d <= 0.
	Reset(d time.Duration)
}

// Real returns the system clock, backed by the time package.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
