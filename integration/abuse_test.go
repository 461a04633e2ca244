package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/client"
	"github.com/upu/upu/protocol"
)

// The abuse test's node and its load. Every abuser loop is bounded by a
// count and by abuseWindow.
const (
	abuseMaxConns         = 2000
	abuseIdleTimeout      = 2 * time.Second
	abuseHandshakeTimeout = time.Second
	abuseWindow           = 6 * time.Second

	abuseIdle      = 1000 // connect and never send
	abuseSlow      = 50   // of each kind: dribbled hello, dribbled request
	abuseHalfOpen  = 100  // of each kind: partial header before and after the hello
	abuseBigClaims = 100  // of each kind: a header claiming the largest body, then silence
	abuseChurners  = 6    // goroutines each resetting, sending malformed frames, sending garbage
	abuseRedis     = 4    // redis clients talking to the binary port
	abuseGood      = 8    // well-behaved callers

	abuseDribble   = 100 * time.Millisecond // a byte this often
	abuseMaxRSSKiB = 512 << 10
	abuseFDSlack   = 16
	// abuseCloseWait is how long an abuser waits for the server to close a
	// connection it should close: the timeouts plus room for a loaded box.
	abuseCloseWait = abuseIdleTimeout + 8*time.Second
)

// TestAbuse points every kind of misbehaving connection at one node at once
// and checks that well-behaved clients are served throughout, that the node
// closes silent and handshake-less connections by itself, and that its
// memory and file descriptors stay bounded and return to their baseline.
func TestAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("abuse: thousands of connections against a real process")
	}
	const needFDs = abuseIdle + 2*abuseSlow + 2*abuseHalfOpen + 2*abuseBigClaims + 3*abuseChurners + abuseRedis + 1000
	raiseFDLimit(t, needFDs)

	n := startNode(t, t.TempDir(), "127.0.0.1:0",
		"--max-conns", strconv.Itoa(abuseMaxConns),
		// Every abuser dials from loopback: one client address here.
		"--max-conns-per-client", strconv.Itoa(abuseMaxConns),
		"--heartbeat-interval", (abuseIdleTimeout / 4).String(),
		"--idle-timeout", abuseIdleTimeout.String(),
		"--handshake-timeout", abuseHandshakeTimeout.String())
	pid := n.cmd.Process.Pid

	cfg := client.DefaultConfig()
	cfg.Nodes = []string{n.addr}
	cfg.RequestTimeout = 5 * time.Second
	good, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { good.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 100 { // warm up: the good client's connections count in the baseline
		if _, err := good.Set(ctx, []byte(fmt.Sprintf("warm:%d", i)), []byte("x")); err != nil {
			t.Fatalf("warm-up set: %v", err)
		}
	}
	hello, err := rawHello(n.addr)
	if err != nil {
		t.Fatalf("raw handshake: %v", err)
	}
	baseFDs := mustProcFDs(t, pid)
	baseRSS, _ := procStatusKB(pid, "VmRSS")

	a := &abuser{addr: n.addr, maxBody: hello.MaxBody, end: time.Now().Add(abuseWindow)}
	mon := startFDMonitor(pid)
	goodDone := make(chan struct{})
	var goodRes goodResult
	go func() { goodRes = runGoodCallers(good, a.end); close(goodDone) }()
	a.run()
	<-goodDone

	// Once the abusers are gone, what the node holds must return to its
	// baseline on its own: abusers closed their ends, and the node times
	// out or notices every connection.
	fdsBack := time.Duration(-1)
	drained := time.Now()
	for deadline := drained.Add(abuseCloseWait); ; {
		fds := mustProcFDs(t, pid)
		if fds <= baseFDs+abuseFDSlack {
			fdsBack = time.Since(drained)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("node holds %d file descriptors %s after the abusers left, baseline %d", fds, abuseCloseWait, baseFDs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	peakFDs := mon.stop()
	peakRSS, err := procStatusKB(pid, "VmHWM") // the kernel's high-water mark of RSS
	if err != nil {
		t.Fatalf("reading the node's peak RSS: %v", err)
	}
	endFDs := mustProcFDs(t, pid)

	// The node still serves after all of that.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := good.Ping(ctx); err != nil {
		t.Errorf("ping after the abuse: %v", err)
	}
	n.stop()
	assertNoDamageInLog(t, n)

	t.Logf("abusers: %d connections opened; %d closed by the node (longest wait %s), %d left open past their deadline; "+
		"%d slow requests served, %d slow hellos cut off; %d malformed frames answered with an error, %d resets, %d garbage connections, %d redis calls refused",
		a.conns.Load(), a.closedByServer.Load(), time.Duration(a.maxCloseWait.Load()).Round(time.Millisecond), a.leftOpen.Load(),
		a.slowServed.Load(), a.slowCut.Load(), a.malformed.Load(), a.resets.Load(), a.garbage.Load(), a.redisRefused.Load())
	t.Logf("node: rss baseline %d MiB, peak %d MiB; fds baseline %d, peak %d, after %d (back %s after the abusers left)",
		baseRSS>>10, peakRSS>>10, baseFDs, peakFDs, endFDs, fdsBack.Round(time.Millisecond))
	t.Logf("good callers: %d ops, %d failed; latency p50 %s p99 %s max %s",
		goodRes.ops, goodRes.failed, goodRes.p50, goodRes.p99, goodRes.max)

	for _, f := range a.failures() {
		t.Error(f)
	}
	if goodRes.failed > 0 {
		t.Errorf("%d of %d well-behaved calls failed; first: %v", goodRes.failed, goodRes.ops, goodRes.firstErr)
	}
	if goodRes.ops == 0 {
		t.Error("well-behaved callers made no calls")
	}
	if peakRSS > abuseMaxRSSKiB {
		t.Errorf("node peak RSS %d MiB, bound %d MiB", peakRSS>>10, abuseMaxRSSKiB>>10)
	}
}

// raiseFDLimit makes sure this process may hold need descriptors (its
// children inherit the limit), or skips.
func raiseFDLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
		t.Skipf("needs %d file descriptors, RLIMIT_NOFILE allows %d (hard %d): raise it (ulimit -n) to run", need, lim.Cur, lim.Max)
	}
}

func mustProcFDs(t *testing.T, pid int) int {
	t.Helper()
	n, err := procFDCount(pid)
	if err != nil {
		t.Skipf("cannot count the node's file descriptors: %v", err)
	}
	return n
}

// fdMonitor samples how many descriptors a process holds until stopped.
type fdMonitor struct {
	done, stopped chan struct{}
	peak          int
}

func startFDMonitor(pid int) *fdMonitor {
	m := &fdMonitor{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(m.stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := procFDCount(pid); err == nil {
				m.peak = max(m.peak, n)
			}
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// stop ends the sampling and returns the peak.
func (m *fdMonitor) stop() int {
	close(m.done)
	<-m.stopped
	return m.peak
}

type goodResult struct {
	ops, failed   int
	firstErr      error
	p50, p99, max time.Duration
}

// runGoodCallers sets and reads back keys from several goroutines until end
// and reports every call's latency.
func runGoodCallers(cl *client.Client, end time.Time) goodResult {
	var (
		mu  sync.Mutex
		res goodResult
		lat []time.Duration
		wg  sync.WaitGroup
	)
	for g := range abuseGood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var failed int
			var firstErr error
			fail := func(err error) {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
			value := make([]byte, 100)
			for i := 0; i < 1_000_000 && time.Now().Before(end); i++ {
				key := []byte(fmt.Sprintf("good:%d:%d", g, i%1000))
				value[0] = byte(i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t0 := time.Now()
				_, err := cl.Set(ctx, key, value)
				t1 := time.Now()
				mine = append(mine, t1.Sub(t0))
				if err != nil {
					fail(fmt.Errorf("set %s: %w", key, err))
					cancel()
					continue
				}
				it, err := cl.Get(ctx, key)
				mine = append(mine, time.Since(t1))
				cancel()
				switch {
				case err != nil:
					fail(fmt.Errorf("get %s: %w", key, err))
				case len(it.Value) != len(value) || it.Value[0] != value[0]:
					fail(fmt.Errorf("get %s: read %d bytes, not the value just set", key, len(it.Value)))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
		}()
	}
	wg.Wait()
	res.ops = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res
}

// abuser runs the misbehaving connections and counts what came of them.
type abuser struct {
	addr    string
	maxBody uint32
	end     time.Time

	conns, closedByServer, leftOpen, maxCloseWait atomic.Int64
	slowServed, slowCut, malformed, resets        atomic.Int64
	garbage, redisRefused                         atomic.Int64

	mu    sync.Mutex
	fails map[string]*abuseFailure // by format
}

type abuseFailure struct {
	count int
	first string
}

func (a *abuser) failf(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fails == nil {
		a.fails = make(map[string]*abuseFailure)
	}
	f := a.fails[format]
	if f == nil {
		f = &abuseFailure{first: fmt.Sprintf(format, args...)}
		a.fails[format] = f
	}
	f.count++
}

// failures returns one line per kind of failure, with its count.
func (a *abuser) failures() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, f := range a.fails {
		out = append(out, fmt.Sprintf("%d times: %s", f.count, f.first))
	}
	slices.Sort(out)
	return out
}

// run starts every abuser at once and waits for all of them.
func (a *abuser) run() {
	var wg sync.WaitGroup
	spawn := func(count int, f func(i int)) {
		for i := range count {
			wg.Add(1)
			go func() { defer wg.Done(); f(i) }()
		}
	}
	spawn(abuseIdle, a.idle)
	spawn(abuseSlow, a.slowHello)
	spawn(abuseSlow, a.slowRequest)
	spawn(abuseHalfOpen, func(int) { a.halfOpen(false) })
	spawn(abuseHalfOpen, func(int) { a.halfOpen(true) })
	spawn(abuseBigClaims, func(int) { a.bigClaim(false) })
	spawn(abuseBigClaims, func(int) { a.bigClaim(true) })
	spawn(abuseChurners, a.reset)
	spawn(abuseChurners, a.malformedFrames)
	spawn(abuseChurners, a.garbageBytes)
	spawn(abuseRedis, a.redisClient)
	wg.Wait()
}

func (a *abuser) dial() (net.Conn, error) {
	a.conns.Add(1)
	return net.DialTimeout("tcp", a.addr, 5*time.Second)
}

// awaitClose reads and discards until the node closes c (closed) or limit
// passes, and says how many bytes came before.
func (a *abuser) awaitClose(c net.Conn, limit time.Duration) (closed bool, got int) {
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		got += n
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			a.leftOpen.Add(1)
			return false, got
		}
		a.closedByServer.Add(1)
		waited := int64(time.Since(start))
		for {
			cur := a.maxCloseWait.Load()
			if waited <= cur || a.maxCloseWait.CompareAndSwap(cur, waited) {
				break
			}
		}
		return true, got
	}
}

// expectClose is awaitClose that reports a connection left open.
func (a *abuser) expectClose(c net.Conn, what string) {
	if closed, _ := a.awaitClose(c, abuseCloseWait); !closed {
		a.failf("%s: the node left the connection open for %s", what, abuseCloseWait)
	}
}

// idle connects and never sends; the node must close it at its handshake
// timeout. It reconnects until the window ends.
func (a *abuser) idle(int) {
	for i := 0; i < 100 && time.Now().Before(a.end); i++ {
		c, err := a.dial()
		if err != nil {
			a.failf("idle: dial: %v", err)
			return
		}
		// Closed with no answer: an answer would be a refusal (MaxConns).
		switch closed, got := a.awaitClose(c, abuseCloseWait); {
		case !closed:
			a.failf("idle connection: the node left it open for %s", abuseCloseWait)
		case got > 0:
			a.failf("idle connection: the node answered with %d bytes before closing (refused?)", got)
		}
		c.Close()
	}
}

// slowHello dribbles a valid hello a byte at a time; it takes longer than
// the handshake timeout, which bounds the whole handshake, so the node must
// cut it off before answering.
func (a *abuser) slowHello(i int) {
	frame := rawHelloFrame(fmt.Sprintf("abuse-slow-hello-%d", i))
	for round := 0; round < 10 && time.Now().Before(a.end); round++ {
		c, err := a.dial()
		if err != nil {
			a.failf("slow hello: dial: %v", err)
			return
		}
		// Cut off means closed with no answer: a hello reply followed by
		// an idle close would mean the slow handshake was accepted.
		cutOff := make(chan bool, 1)
		go func() {
			closed, got := a.awaitClose(c, abuseCloseWait+time.Duration(len(frame))*abuseDribble)
			cutOff <- closed && got == 0
		}()
		stop := make(chan struct{})
		done := rawDribble(c, frame, stop)
		cut := <-cutOff
		close(stop)
		<-done
		if cut {
			a.slowCut.Add(1)
		} else {
			a.failf("slow hello: a hello dribbled over %s was not cut off at the %s handshake timeout", time.Duration(len(frame))*abuseDribble, abuseHandshakeTimeout)
		}
		c.Close()
	}
}

// rawDribble writes frame a byte every abuseDribble until it is all sent, a
// write fails or stop closes; the channel it returns closes when it is done.
func rawDribble(c net.Conn, frame []byte, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(abuseDribble)
		defer tick.Stop()
		for _, b := range frame {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	return done
}

// slowRequest shakes hands, then dribbles a valid set a byte at a time: each
// byte is activity, so the node must wait for the frame and answer it.
func (a *abuser) slowRequest(i int) {
	c, err := a.dial()
	if err != nil {
		a.failf("slow request: dial: %v", err)
		return
	}
	defer c.Close()
	if _, err := rawHandshake(c); err != nil {
		a.failf("slow request: handshake: %v", err)
		return
	}
	frame, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpSet, ReqID: 7},
		&protocol.SetRequest{Key: []byte(fmt.Sprintf("slow:%d", i)), Value: []byte("dribbled")})
	<-rawDribble(c, frame, nil)
	f, err := rawReadFrame(c, 10*time.Second)
	switch {
	case err != nil:
		a.failf("slow request: no answer: %v", err)
	case f.Opcode != protocol.OpSet || f.ReqID != 7:
		a.failf("slow request: answered with %s for request %d", f.Opcode, f.ReqID)
	default:
		a.slowServed.Add(1)
	}
}

// halfOpen sends part of a frame header and goes silent, before or after
// its hello; the node must close it at its handshake or idle timeout.
func (a *abuser) halfOpen(afterHello bool) {
	for round := 0; round < 10 && time.Now().Before(a.end); round++ {
		c, err := a.dial()
		if err != nil {
			a.failf("half-open: dial: %v", err)
			return
		}
		partial := rawHelloFrame("abuse-half-open")[:7]
		if afterHello {
			if _, err := rawHandshake(c); err != nil {
				a.failf("half-open: handshake: %v", err)
				c.Close()
				return
			}
			partial = protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpGet, ReqID: 1, Len: 10})[:7]
		}
		if _, err := c.Write(partial); err != nil {
			a.failf("half-open: write: %v", err)
		}
		a.expectClose(c, fmt.Sprintf("half-open (after hello %t)", afterHello))
		c.Close()
	}
}

// bigClaim sends a header claiming the largest body the node accepts, a
// little of that body, then nothing: the claim alone must not cost the node
// the claimed memory for long, nor keep the connection open.
func (a *abuser) bigClaim(afterHello bool) {
	for round := 0; round < 10 && time.Now().Before(a.end); round++ {
		c, err := a.dial()
		if err != nil {
			a.failf("big claim: dial: %v", err)
			return
		}
		op := protocol.OpHello
		if afterHello {
			if _, err := rawHandshake(c); err != nil {
				a.failf("big claim: handshake: %v", err)
				c.Close()
				return
			}
			op = protocol.OpSet
		}
		msg := protocol.AppendHeader(nil, protocol.Header{Opcode: op, ReqID: 3, Len: a.maxBody})
		msg = append(msg, make([]byte, 1024)...)
		if _, err := c.Write(msg); err != nil {
			a.failf("big claim: write: %v", err)
		}
		a.expectClose(c, fmt.Sprintf("big claim (after hello %t)", afterHello))
		c.Close()
	}
}

// reset opens connections and aborts them with a RST (SO_LINGER 0), at
// every stage of a conversation.
func (a *abuser) reset(i int) {
	for round := 0; round < 300 && time.Now().Before(a.end); round++ {
		c, err := a.dial()
		if err != nil {
			a.failf("reset: dial: %v", err)
			return
		}
		switch (i + round) % 4 {
		case 1:
			c.Write(rawHelloFrame("abuse-reset")[:5])
		case 2:
			if _, err := rawHandshake(c); err != nil {
				a.failf("reset: handshake: %v", err)
			}
		case 3:
			if _, err := rawHandshake(c); err == nil {
				c.Write(protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpSet, ReqID: 1, Len: 4096}))
			}
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		a.resets.Add(1)
	}
}

// malformedCase is a bad conversation and the error the node must answer
// it with.
type malformedCase struct {
	name       string
	afterHello bool
	frame      func(maxBody uint32) []byte
	code       protocol.Code
	stays      bool // the connection stays usable after the error
}

func malformedCases() []malformedCase {
	hdr := func(op protocol.Opcode, flags protocol.Flags, n uint32) []byte {
		return protocol.AppendHeader(nil, protocol.Header{Opcode: op, Flags: flags, ReqID: 9, Len: n})
	}
	withBody := func(op protocol.Opcode, body []byte) []byte {
		return append(hdr(op, 0, uint32(len(body))), body...)
	}
	return []malformedCase{
		{"bad magic", false, func(uint32) []byte { b := rawHelloFrame("x"); b[0] = 0x00; return b }, protocol.CodeProtocol, false},
		{"bad version", false, func(uint32) []byte { b := rawHelloFrame("x"); b[1] = 99; return b }, protocol.CodeProtocol, false},
		{"unknown opcode", false, func(uint32) []byte { return hdr(0x3E, 0, 0) }, protocol.CodeUnknownOp, false},
		{"oversized claim", false, func(m uint32) []byte { return hdr(protocol.OpHello, 0, m+1) }, protocol.CodeTooLarge, false},
		{"4 GiB claim", false, func(uint32) []byte { return hdr(protocol.OpHello, 0, 1<<32-1) }, protocol.CodeTooLarge, false},
		{"response flag", false, func(uint32) []byte { b := rawHelloFrame("x"); b[3] = byte(protocol.FlagResponse); return b }, protocol.CodeBadRequest, false},
		{"hello body not msgpack", false, func(uint32) []byte { return withBody(protocol.OpHello, []byte{0xc1, 0xff, 0x00}) }, protocol.CodeBadRequest, false},
		{"hello of another version", false, func(uint32) []byte {
			b, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello, ReqID: 9}, &protocol.Hello{Version: 9})
			return b
		}, protocol.CodeProtocol, false},
		{"request before hello", false, func(uint32) []byte {
			b, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpGet, ReqID: 9}, &protocol.GetRequest{Key: []byte("k")})
			return b
		}, protocol.CodeProtocol, false},
		{"second hello", true, func(uint32) []byte { return rawHelloFrame("again") }, protocol.CodeProtocol, false},
		{"oversized claim after hello", true, func(m uint32) []byte { return hdr(protocol.OpSet, 0, m+1) }, protocol.CodeTooLarge, false},
		{"set body not msgpack", true, func(uint32) []byte { return withBody(protocol.OpSet, []byte{0x92, 0xc1}) }, protocol.CodeBadRequest, true},
		{"set body of the wrong shape", true, func(uint32) []byte { return withBody(protocol.OpSet, []byte{0x81, 0xa1, 'k', 0x05}) }, protocol.CodeBadRequest, true},
		{"key over the limit", true, func(uint32) []byte {
			b, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpSet, ReqID: 9}, &protocol.SetRequest{Key: make([]byte, 4096), Value: []byte("v")})
			return b
		}, protocol.CodeTooLarge, true},
	}
}

// malformedFrames sends each malformed case in turn: the node must answer
// with the right error, then close the connection or, for a bad body in a
// good frame, keep serving it.
func (a *abuser) malformedFrames(i int) {
	cases := malformedCases()
	for round := 0; round < 200 && time.Now().Before(a.end); round++ {
		tc := cases[(i+round)%len(cases)]
		c, err := a.dial()
		if err != nil {
			a.failf("malformed: dial: %v", err)
			return
		}
		a.malformedOne(c, tc)
		c.Close()
	}
}

func (a *abuser) malformedOne(c net.Conn, tc malformedCase) {
	if tc.afterHello {
		if _, err := rawHandshake(c); err != nil {
			a.failf("malformed %s: handshake: %v", tc.name, err)
			return
		}
	}
	if _, err := c.Write(tc.frame(a.maxBody)); err != nil {
		a.failf("malformed %s: write: %v", tc.name, err)
		return
	}
	f, err := rawReadFrame(c, 10*time.Second)
	if err != nil {
		a.failf("malformed %s: no error frame: %v", tc.name, err)
		return
	}
	var e protocol.Error
	if f.Opcode != protocol.OpError || protocol.DecodeBody(f.Body, &e) != nil || e.Code != tc.code {
		a.failf("malformed %s: answered %s %+v, want error %s", tc.name, f.Opcode, e, tc.code)
		return
	}
	a.malformed.Add(1)
	if !tc.stays {
		a.expectClose(c, "malformed "+tc.name)
		return
	}
	ping := protocol.AppendHeader(nil, protocol.Header{Opcode: protocol.OpPing, ReqID: 10})
	if _, err := c.Write(ping); err != nil {
		a.failf("malformed %s: the connection did not stay usable: %v", tc.name, err)
		return
	}
	if f, err := rawReadFrame(c, 10*time.Second); err != nil || f.Opcode != protocol.OpPing || f.ReqID != 10 {
		a.failf("malformed %s: ping after it: %v %v", tc.name, f.Opcode, err)
	}
}

// garbageBytes sends random bytes; the node must close the connection, at
// once (bad magic) or at its handshake timeout (a header still incomplete).
func (a *abuser) garbageBytes(i int) {
	rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	buf := make([]byte, 4096)
	for round := 0; round < 200 && time.Now().Before(a.end); round++ {
		c, err := a.dial()
		if err != nil {
			a.failf("garbage: dial: %v", err)
			return
		}
		b := buf[:1+rng.IntN(len(buf))]
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		c.Write(b)
		a.expectClose(c, "garbage")
		a.garbage.Add(1)
		c.Close()
	}
}

// redisClient talks RESP to the binary port: every call must fail, and fail
// promptly, rather than hang or be taken for something else.
func (a *abuser) redisClient(i int) {
	rdb := redis.NewClient(&redis.Options{
		Addr: a.addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer rdb.Close()
	for round := 0; round < 50 && time.Now().Before(a.end); round++ {
		a.conns.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err := rdb.Set(ctx, fmt.Sprintf("redis:%d", i), "v", 0).Err()
		cancel()
		var ne net.Error
		switch {
		case err == nil:
			a.failf("redis: a RESP SET on the binary port succeeded")
		case errors.As(err, &ne) && ne.Timeout():
			a.failf("redis: a RESP SET on the binary port hung for %s: %v", time.Since(start), err)
		default:
			a.redisRefused.Add(1)
		}
		time.Sleep(50 * time.Millisecond) // a paced client, not a tight loop
	}
}

func rawHelloFrame(name string) []byte {
	b, _ := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpHello, ReqID: 1},
		&protocol.Hello{Version: protocol.Version, Client: name})
	return b
}

// rawHandshake sends a hello on c and returns the node's.
func rawHandshake(c net.Conn) (protocol.Hello, error) {
	var h protocol.Hello
	if _, err := c.Write(rawHelloFrame("abuse")); err != nil {
		return h, err
	}
	f, err := rawReadFrame(c, 10*time.Second)
	if err != nil {
		return h, err
	}
	if f.Opcode != protocol.OpHello {
		return h, fmt.Errorf("answered %s to hello", f.Opcode)
	}
	return h, protocol.DecodeBody(f.Body, &h)
}

// rawHello returns the node's hello.
func rawHello(addr string) (protocol.Hello, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return protocol.Hello{}, err
	}
	defer c.Close()
	return rawHandshake(c)
}

// rawReadFrame reads one frame from c within limit.
func rawReadFrame(c net.Conn, limit time.Duration) (protocol.Frame, error) {
	c.SetReadDeadline(time.Now().Add(limit))
	defer c.SetReadDeadline(time.Time{})
	dec := protocol.NewDecoder(protocol.DefaultMaxBody)
	for {
		if f, ok, err := dec.Next(); err != nil || ok {
			return f, err
		}
		if _, err := dec.ReadOnce(c); err != nil {
			return protocol.Frame{}, err
		}
	}
}
