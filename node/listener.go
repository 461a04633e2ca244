package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// tracked is a connection that a listener owns: run serves it until it ends
// (and must call untrack), refuse answers a connection over the limit, wake
// interrupts a blocked read at shutdown, and forceClose cuts it off.
type tracked interface {
	comparable
	run()
	refuse()
	wake()
	forceClose()
}

// listener accepts connections of one protocol, holds them to MaxConns, and
// owns their goroutines: shutdown stops accepting, wakes every connection so
// that it answers what it has read, and waits for them. Both the binary and
// the Redis-protocol servers embed one.
type listener[C tracked] struct {
	ln       net.Listener
	log      *logrus.Entry
	maxConns int
	newConn  func(net.Conn) C

	closing atomic.Bool
	wg      sync.WaitGroup // accept loop and every connection

	mu    sync.Mutex
	conns map[C]struct{}
	open  atomic.Int64

	accepted atomic.Int64
	rejected atomic.Int64
}

func (l *listener[C]) serve(ln net.Listener) {
	l.ln = ln
	l.conns = make(map[C]struct{})
	l.wg.Add(1)
	go l.acceptLoop()
}

func (l *listener[C]) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning on a listener that keeps failing.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.WithError(err).WithField("retry_in", delay.String()).Warn("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		l.accepted.Add(1)
		c := l.newConn(nc)
		if !l.track(c) {
			l.rejected.Add(1)
			c.refuse()
			continue
		}
		go c.run()
	}
}

// track registers a connection, refusing it past MaxConns or during shutdown.
func (l *listener[C]) track(c C) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Load() || len(l.conns) >= l.maxConns {
		return false
	}
	l.conns[c] = struct{}{}
	l.open.Add(1)
	l.wg.Add(1)
	return true
}

func (l *listener[C]) untrack(c C) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.open.Add(-1)
	l.wg.Done()
}

// shutdown stops accepting, wakes every connection so it answers what it has
// read and exits, and waits for them until ctx ends; then it forces them shut.
func (l *listener[C]) shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closing.Store(true)
	l.ln.Close()
	for c := range l.conns {
		c.wake()
	}
	l.mu.Unlock()

	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		n := len(l.conns)
		for c := range l.conns {
			c.forceClose()
		}
		l.mu.Unlock()
		l.log.WithField("conns", n).Warn("shutdown timeout: closing connections with requests in flight")
		<-done
		return ctx.Err()
	}
}
