package clock

import (
	"testing"
	"time"
)

func TestRealClock(t *testing.T) {
	c := Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real().Now() = %v, before time.Now() %v", now, before)
	}

	const limit = 10 * time.Second
	tm := c.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(limit):
		t.Fatal("real timer did not fire")
	}

	tk := c.NewTicker(time.Millisecond)
	t.Cleanup(tk.Stop)
	for i := range 2 {
		select {
		case <-tk.C():
		case <-time.After(limit):
			t.Fatalf("real ticker: tick %d missing", i)
		}
	}

	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatal("real AfterFunc did not run")
	}

	stopped := c.NewTimer(time.Hour)
	if !stopped.Stop() {
		t.Fatal("Stop of an armed real timer returned false")
	}
}
