package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCallBothWays: one link carries requests both ways; the node that
// was dialed answers over it without dialing back, and without knowing
// the dialer's address.
func TestCallBothWays(t *testing.T) {
	a := startTestNode(t, "a", "tok", Config{}, Deps{})
	b := startTestNode(t, "b", "tok", Config{}, Deps{})
	registerEcho(a)
	registerEcho(b)
	tests := []struct {
		name string
		from *testNode
		to   Node
		want string
	}{
		{"dialer to dialed", a, b.node(), "b to a: ping"},
		{"dialed to dialer, no address", b, Node{ID: "a"}, "a to b: ping"},
		{"dialer again", a, b.node(), "b to a: ping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(t, tc.from.pool, tc.to, kindEcho, "ping")
			if err != nil || got != tc.want {
				t.Fatalf("Call = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if n := a.accepted.Load(); n != 0 {
		t.Errorf("a accepted %d links: b dialed back", n)
	}
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("b accepted %d links, want 1", n)
	}
}

// TestNoRoute: a node with no link and no address cannot be called.
func TestNoRoute(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	if _, err := call(t, a.pool, Node{ID: "b"}, kindEcho, "x"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("Call = %v, want ErrNoRoute", err)
	}
}

// TestConcurrentCalls: many streams at once in both directions share one
// link, and each gets its own answer.
func TestConcurrentCalls(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	registerEcho(a)
	registerEcho(b)
	if _, err := call(t, a.pool, b.node(), kindEcho, "first"); err != nil {
		t.Fatal(err)
	}
	const workers, calls = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range 2 * workers {
		from, to, want := a, b.node(), "b to a: "
		if w%2 == 1 {
			from, to, want = b, Node{ID: "a"}, "a to b: "
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				req := fmt.Sprintf("%d/%d %s", w, i, strings.Repeat("x", i*100))
				got, err := call(t, from.pool, to, kindEcho, req)
				if err != nil || got != want+req {
					errs <- fmt.Errorf("worker %d call %d: %.40q, %v", w, i, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := a.accepted.Load() + b.accepted.Load(); n != 1 {
		t.Errorf("%d links, want 1", n)
	}
}

// TestHandlers: a request reaches the handler registered for its kind; an
// unknown kind and a failing handler come back as typed errors.
func TestHandlers(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{MaxMessage: 1 << 10}, Deps{})
	registerEcho(b)
	b.pool.Register(KindReplicate, func(_ context.Context, _ string, req []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(req))), nil
	})
	tests := []struct {
		name    string
		kind    Kind
		req     string
		want    string
		wantErr error
	}{
		{"echo", kindEcho, "hi", "b to a: hi", nil},
		{"another kind", KindReplicate, "hi", "HI", nil},
		{"unknown kind", 99, "hi", "", ErrUnknownKind},
		{"handler fails", kindFail, "hi", "", ErrRemote},
		{"over the remote bound", kindEcho, strings.Repeat("x", 2<<10), "", ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(t, a.pool, b.node(), tc.kind, tc.req)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("Call = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	_, err := call(t, a.pool, b.node(), kindFail, "")
	if re := (*RemoteError)(nil); !errors.As(err, &re) || re.Message != "handler says no" || re.Kind != kindFail {
		t.Fatalf("handler error = %v, want its message", err)
	}
}

// TestDialRefused: a bad token is refused; Calls then fail at once until
// the redial backoff passes, which doubles with each failure up to
// RedialMax, and starts anew once no Call ran into it for RedialMax.
func TestDialRefused(t *testing.T) {
	clk := fakeClock()
	b := startTestNode(t, "b", "right", Config{}, Deps{})
	var dials countingDial
	cfg := Config{RedialMin: time.Second, RedialMax: 3 * time.Second}
	a := startTestNode(t, "a", "wrong", cfg, Deps{Clock: clk, Dial: dials.dial})
	steps := []struct {
		advance time.Duration
		wantErr error
		dials   int32
	}{
		{0, ErrRefused, 1},
		{0, ErrUnreachable, 1},
		{time.Second, ErrRefused, 2}, // backoff 1s passed
		{time.Second, ErrUnreachable, 2},
		{time.Second, ErrRefused, 3}, // backoff 2s passed
		{3 * time.Second, ErrRefused, 4},
		{3 * time.Second, ErrRefused, 5},  // capped at RedialMax
		{10 * time.Second, ErrRefused, 6}, // quiet for long: forgotten
		{time.Second, ErrRefused, 7},      // so back to RedialMin
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		_, err := call(t, a.pool, b.node(), kindEcho, "x")
		if !errors.Is(err, s.wantErr) || dials.n.Load() != s.dials {
			t.Fatalf("step %d: Call = %v after %d dials; want %v after %d", i, err, dials.n.Load(), s.wantErr, s.dials)
		}
	}
	if n := b.accepted.Load(); n != 0 {
		t.Fatalf("%d links accepted with a bad token", n)
	}
}

// TestWrongNode: a node answering at the address with another ID is not
// linked to.
func TestWrongNode(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	registerEcho(b)
	if _, err := call(t, a.pool, Node{ID: "c", Addr: b.node().Addr}, kindEcho, "x"); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("Call = %v, want ErrWrongNode", err)
	}
}

// TestRedialAfterLinkDies: when a link's connection dies, the next Call
// (or the one after, if the first was under way on the dead link) dials a
// new one.
func TestRedialAfterLinkDies(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	registerEcho(b)
	for round := 1; round <= 3; round++ {
		var err error
		for range 2 {
			if _, err = call(t, a.pool, b.node(), kindEcho, "x"); err == nil {
				break
			}
			if !errors.Is(err, ErrLinkLost) {
				t.Fatalf("round %d: Call = %v, want ErrLinkLost at worst", round, err)
			}
		}
		if err != nil {
			t.Fatalf("round %d: no new link: %v", round, err)
		}
		if n := b.accepted.Load(); n != int32(round) {
			t.Fatalf("round %d: %d links accepted", round, n)
		}
		b.kill()
	}
}

// TestSilentLinkClosed: a link on which nothing arrives for DeadAfter is
// closed, and the Call waiting on it fails.
func TestSilentLinkClosed(t *testing.T) {
	clk := fakeClock()
	cfg := Config{KeepAlive: time.Second, DeadAfter: 3 * time.Second, WriteTimeout: time.Minute}
	a := startTestNode(t, "a", "", cfg, Deps{Clock: clk})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	b.silent = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.pool.Call(context.Background(), b.node(), kindEcho, []byte(silentProbe))
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil { // the link's monitor
		t.Fatal(err)
	}
	select { // the Call's request has left
	case <-b.silent:
	case <-ctx.Done():
		t.Fatal("no request reached the silent node")
	}
	clk.Advance(cfg.DeadAfter + cfg.KeepAlive)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLinkLost) {
			t.Fatalf("Call = %v, want ErrLinkLost", err)
		}
	case <-ctx.Done():
		t.Fatal("silent link not closed")
	}
}

// TestCloseWaits: Close ends the Calls under way and the handlers running,
// and returns only once every goroutine the pools started has ended.
func TestCloseWaits(t *testing.T) {
	before := runtime.NumGoroutine()
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	registerEcho(b)
	entered := make(chan struct{}, 4)
	b.pool.Register(KindReplicate, func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done() // until the link closes
		return nil, ctx.Err()
	})
	if _, err := call(t, a.pool, b.node(), kindEcho, "x"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := a.pool.Call(context.Background(), b.node(), KindReplicate, nil)
			errc <- err
		}()
	}
	for range 4 {
		<-entered
	}
	b.pool.Close()
	for range 4 {
		if err := <-errc; !errors.Is(err, ErrLinkLost) {
			t.Errorf("Call under way at Close = %v, want ErrLinkLost", err)
		}
	}
	a.pool.Close()
	if _, err := call(t, a.pool, b.node(), kindEcho, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close = %v, want ErrClosed", err)
	}
	a.ln.Close()
	b.ln.Close()
	a.kill()
	b.kill()
	a.wg.Wait()
	b.wg.Wait()
	// yamux's keepalive goroutine notices a closed session on its own,
	// just after Close: allow it that moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

// inbox records the messages a node's handler for KindReplicate takes.
type inbox struct {
	ch chan string
}

func newInbox(n *testNode) *inbox {
	in := &inbox{ch: make(chan string, 1024)}
	n.pool.Register(KindReplicate, func(_ context.Context, from string, msg []byte) ([]byte, error) {
		in.ch <- from + ": " + string(msg)
		return nil, errors.New("the answer to a Send goes nowhere")
	})
	return in
}

func (in *inbox) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message arrived")
		return ""
	}
}

func send(t *testing.T, p *Pool, to Node, kind Kind, msg string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Send(ctx, to, kind, []byte(msg))
}

// TestSendInOrder: messages Sent either way over one link arrive in the
// order sent, each once; one of a kind nobody serves, or one over the
// receiver's bound, is dropped without garbling what follows it.
func TestSendInOrder(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{MaxMessage: 1 << 10}, Deps{})
	inA, inB := newInbox(a), newInbox(b)
	const n = 200
	for i := range n {
		if err := send(t, a.pool, b.node(), KindReplicate, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			if err := send(t, a.pool, b.node(), 99, "nobody serves this"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range n {
		if got, want := inB.next(t), fmt.Sprintf("a: %d", i); got != want {
			t.Fatalf("b took %q, want %q", got, want)
		}
	}
	if err := send(t, b.pool, Node{ID: "a"}, KindReplicate, "back"); err != nil {
		t.Fatal(err)
	}
	if got := inA.next(t); got != "b: back" {
		t.Fatalf("a took %q", got)
	}
	if err := send(t, a.pool, b.node(), KindReplicate, strings.Repeat("x", 2<<10)); err != nil {
		t.Fatalf("a Send the sender's bound allows = %v", err)
	}
	if err := send(t, a.pool, b.node(), KindReplicate, "after"); err != nil {
		t.Fatal(err)
	}
	if got := inB.next(t); got != "a: after" {
		t.Fatalf("after an oversized message b took %q", got)
	}
	if n := a.accepted.Load() + b.accepted.Load(); n != 1 {
		t.Errorf("%d links, want 1", n)
	}
}

// TestSendRedials: a Send after its link died goes over a new one.
func TestSendRedials(t *testing.T) {
	a := startTestNode(t, "a", "", Config{}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	in := newInbox(b)
	for round := 1; round <= 3; round++ {
		var err error
		for range 2 {
			if err = send(t, a.pool, b.node(), KindReplicate, fmt.Sprint(round)); err == nil {
				break
			}
			if !errors.Is(err, ErrLinkLost) {
				t.Fatalf("round %d: Send = %v, want ErrLinkLost at worst", round, err)
			}
		}
		if err != nil {
			t.Fatalf("round %d: no new link: %v", round, err)
		}
		if got, want := in.next(t), fmt.Sprintf("a: %d", round); got != want {
			t.Fatalf("round %d: b took %q, want %q", round, got, want)
		}
		b.kill()
	}
}

// TestSendToStalledReceiver: a receiver that stops taking messages holds
// a Send for at most WriteTimeout; once it takes them again, Sends go
// through on a new message stream.
func TestSendToStalledReceiver(t *testing.T) {
	a := startTestNode(t, "a", "", Config{WriteTimeout: 200 * time.Millisecond}, Deps{})
	b := startTestNode(t, "b", "", Config{}, Deps{})
	release := make(chan struct{})
	took := make(chan string, 64)
	b.pool.Register(KindReplicate, func(_ context.Context, _ string, msg []byte) ([]byte, error) {
		<-release
		took <- string(msg[:1])
		return nil, nil
	})
	big := strings.Repeat("x", 256<<10)
	var err error
	for range 64 { // far more than the stream's window
		if err = send(t, a.pool, b.node(), KindReplicate, big); err != nil {
			break
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a stalled receiver = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := send(t, a.pool, b.node(), KindReplicate, "y"); err != nil {
		t.Fatalf("Send once the receiver takes messages again = %v", err)
	}
	for timeout := time.After(5 * time.Second); ; {
		select {
		case got := <-took:
			if got == "y" {
				return
			}
		case <-timeout:
			t.Fatal("the Send after the stall never arrived")
		}
	}
}

// TestDialAbandoned: a Call whose context ends while it dials fails with
// its context's error, and neither a Call waiting on that dial nor the
// next one is held back by it.
func TestDialAbandoned(t *testing.T) {
	b := startTestNode(t, "b", "", Config{}, Deps{})
	registerEcho(b)
	entered := make(chan struct{})
	var first sync.Once
	var d countingDial
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		stuck := false
		first.Do(func() { stuck = true })
		if stuck {
			close(entered)
			<-ctx.Done() // a dial into a black hole
			return nil, ctx.Err()
		}
		return d.dial(ctx, network, addr)
	}
	a := startTestNode(t, "a", "", Config{}, Deps{Dial: dial})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.pool.Call(ctx, b.node(), kindEcho, []byte("x"))
		errc <- err
	}()
	<-entered
	waiting := make(chan error, 1)
	go func() {
		_, err := call(t, a.pool, b.node(), kindEcho, "y")
		waiting <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Call = %v, want context.Canceled", err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("Call beside the abandoned one = %v", err)
	}
	if got, err := call(t, a.pool, b.node(), kindEcho, "z"); err != nil || got != "b to a: z" {
		t.Fatalf("next Call = %q, %v", got, err)
	}
}

// TestIdentify: a node known only by its address is linked to and named;
// later Calls by that name use the same link, and identifying it again
// opens no second one.
func TestIdentify(t *testing.T) {
	a := startTestNode(t, "a", "tok", Config{}, Deps{})
	b := startTestNode(t, "b", "tok", Config{}, Deps{})
	registerEcho(b)
	for range 2 {
		id, err := a.pool.Identify(context.Background(), b.node().Addr)
		if err != nil || id != "b" {
			t.Fatalf("Identify = %q, %v; want b", id, err)
		}
	}
	if got, err := call(t, a.pool, Node{ID: "b"}, kindEcho, "ping"); err != nil || got != "b to a: ping" {
		t.Fatalf("Call by the identified name = %q, %v", got, err)
	}
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("b accepted %d links, want 1", n)
	}
	if _, err := a.pool.Identify(context.Background(), ""); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Identify of no address = %v, want ErrNoRoute", err)
	}
}
