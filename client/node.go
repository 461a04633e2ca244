package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// node is one server address: its connection slots, the dial in progress
// and the backoff after failures.
type node struct {
	c    *Client
	addr string

	// conns are ConnsPerNode slots, nil when not connected; read without
	// n.mu, stored under it.
	conns []atomic.Pointer[conn]
	next  atomic.Uint32 // spreads calls over the slots

	mu       sync.Mutex
	dialing  *dial // at most one dial per node at a time
	failures int   // consecutive dial failures (or connections that never served)
	retryAt  time.Time
	lastErr  error
}

// dial is a connection attempt that callers may wait for.
type dial struct {
	done   chan struct{} // closed when cn or err is set
	cancel context.CancelFunc
	cn     *conn
	err    error
}

// conn returns a connection for one call, dialling when the chosen slot is
// empty and the node's backoff has elapsed. A dial it starts fills the slot
// in the background when another live connection can serve the call.
func (n *node) conn(ctx context.Context, expire <-chan time.Time) (*conn, error) {
	slot := int(n.next.Add(1) % uint32(len(n.conns)))
	if cn := n.conns[slot].Load(); cn != nil && !cn.dead.Load() {
		return cn, nil
	}
	n.mu.Lock()
	if n.c.closed.Load() {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if cn := n.conns[slot].Load(); cn != nil && !cn.dead.Load() {
		n.mu.Unlock() // a dial into this slot just finished
		return cn, nil
	}
	var live *conn
	for i := range n.conns {
		if cn := n.conns[i].Load(); cn != nil && !cn.dead.Load() {
			live = cn
			break
		}
	}
	d := n.dialing
	if d == nil {
		if wait := time.Until(n.retryAt); wait > 0 {
			failures, lastErr := n.failures, n.lastErr
			n.mu.Unlock()
			if live != nil {
				return live, nil
			}
			return nil, &nodeDownError{addr: n.addr, failures: failures, wait: wait, cause: lastErr}
		}
		d = n.startDial(slot)
	}
	n.mu.Unlock()
	if live != nil {
		return live, nil
	}
	select {
	case <-d.done:
		return d.cn, d.err
	case <-ctx.Done():
		return nil, errExpired
	case <-expire:
		return nil, errExpired
	}
}

// startDial launches a dial into slot. n.mu is held and the client is open,
// so Close has not begun waiting.
func (n *node) startDial(slot int) *dial {
	ctx, cancel := context.WithTimeout(context.Background(), n.c.cfg.DialTimeout)
	d := &dial{done: make(chan struct{}), cancel: cancel}
	n.dialing = d
	n.c.stats.dials.Add(1)
	n.c.wg.Add(1)
	go func() {
		defer n.c.wg.Done()
		defer cancel()
		cn, err := n.c.connect(ctx, n, slot)
		n.mu.Lock()
		n.dialing = nil
		if n.c.closed.Load() {
			if cn != nil {
				_ = cn.nc.Close()
			}
			cn, err = nil, ErrClosed
		}
		switch {
		case err == ErrClosed:
		case err != nil:
			n.c.stats.dialFailures.Add(1)
			n.markDown(err)
		default:
			n.retryAt = time.Time{}
			n.conns[slot].Store(cn)
			n.c.stats.connsOpen.Add(1)
			cn.start()
		}
		d.cn, d.err = cn, err
		n.mu.Unlock()
		close(d.done)
	}()
	return d
}

// markDown starts or lengthens the backoff. n.mu is held.
func (n *node) markDown(err error) {
	n.failures++
	n.retryAt = time.Now().Add(n.c.backoff(n.failures))
	n.lastErr = err
}

// healthy resets the backoff: a connection to the node served a reply.
func (n *node) healthy() {
	n.mu.Lock()
	n.failures = 0
	n.mu.Unlock()
}

// drop removes a failed connection. One that never served a reply counts as
// a failed dial, so a node that accepts and then drops connections is
// backed off like one that refuses them; one that served may be redialled
// at once, which is what a node's restart needs.
func (n *node) drop(cn *conn, cause error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns[cn.slot].CompareAndSwap(cn, nil)
	if !cn.proven.Load() && !n.c.closed.Load() {
		n.markDown(cause)
	}
}

// close cancels the dial in progress and returns the connections, for
// Client.Close to fail outside n.mu.
func (n *node) close() []*conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dialing != nil {
		n.dialing.cancel()
	}
	var conns []*conn
	for i := range n.conns {
		if cn := n.conns[i].Load(); cn != nil {
			conns = append(conns, cn)
		}
	}
	return conns
}

// backoff is the wait after the given number of consecutive failures:
// uniform between MinBackoff and a ceiling that doubles per failure up to
// MaxBackoff.
func (c *Client) backoff(failures int) time.Duration {
	lo, hi := c.cfg.MinBackoff, c.cfg.MaxBackoff
	ceiling := hi
	if failures < 63 && lo <= hi>>failures {
		ceiling = lo << failures
	}
	if ceiling <= lo {
		return lo
	}
	return lo + rand.N(ceiling-lo+1)
}
