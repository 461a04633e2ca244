package connloop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// lineConn is a toy protocol: each line read is answered with itself in
// upper case; "quit" answers "bye" and closes, "link" answers "linked" and
// hands the socket to handedOff, "big" answers 64 KiB of dots.
type lineConn struct {
	log       *logrus.Entry
	in, out   []byte
	handedOff chan<- net.Conn
	idle      time.Duration
}

func (c *lineConn) ReadOnce(r io.Reader) (int, error) {
	var buf [512]byte
	n, err := r.Read(buf[:])
	c.in = append(c.in, buf[:n]...)
	return n, err
}

func (c *lineConn) Process(b Budget) Outcome {
	for handled := 0; ; handled++ {
		i := bytes.IndexByte(c.in, '\n')
		if i >= 0 && b.Full(handled, len(c.out)) {
			return More
		}
		if i < 0 {
			return Continue
		}
		line := string(c.in[:i])
		c.in = c.in[i+1:]
		switch line {
		case "quit":
			c.out = append(c.out, "bye\n"...)
			return Close
		case "link":
			c.out = append(c.out, "linked\n"...)
			return HandOff
		case "big":
			c.out = append(c.out, bytes.Repeat([]byte{'.'}, bigAnswer-1)...)
			c.out = append(c.out, '\n')
			continue
		}
		c.out = append(c.out, strings.ToUpper(line)+"\n"...)
	}
}

func (c *lineConn) Flush(w io.Writer) error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := w.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *lineConn) ReadDeadline(now time.Time) time.Time { return now.Add(c.idle) }
func (c *lineConn) Queued() int                          { return len(c.out) }
func (c *lineConn) Refuse(why Refusal) {
	if why == RefusePerClient {
		c.out = append(c.out, "busy client\n"...)
		return
	}
	c.out = append(c.out, "busy\n"...)
}

const bigAnswer = 64 << 10

func (c *lineConn) HandOff(nc net.Conn) { c.handedOff <- nc }
func (c *lineConn) Log() *logrus.Entry  { return c.log }

func startLoop(t *testing.T, cfg Config, idle time.Duration) (*Server, chan net.Conn) {
	t.Helper()
	handedOff := make(chan net.Conn, 1)
	log := logging.Discard().Component("test")
	s, err := New(cfg, Deps{Log: log, NewConn: func(net.Conn) Conn { return &lineConn{log: log, handedOff: handedOff, idle: idle} }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, handedOff
}

type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	return l
}

func (c *client) expectClosed() {
	c.t.Helper()
	if rest, err := io.ReadAll(c.br); err != nil && !errors.Is(err, net.ErrClosed) || len(rest) > 0 {
		c.t.Fatalf("want the close, got %q, %v", rest, err)
	}
}

func TestPipelineAnsweredInOrderThenClose(t *testing.T) {
	s, _ := startLoop(t, Config{}, time.Minute)
	c := dial(t, s)
	c.send("a\nb\nc\nquit\nnever\n")
	for _, want := range []string{"A\n", "B\n", "C\n", "bye\n"} {
		if got := c.line(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.expectClosed()
}

func TestRefusesPastMaxConns(t *testing.T) {
	s, _ := startLoop(t, Config{MaxConns: 1}, time.Minute)
	first := dial(t, s)
	first.send("x\n")
	if got := first.line(); got != "X\n" {
		t.Fatalf("first connection: %q", got)
	}
	second := dial(t, s)
	if got := second.line(); got != "busy\n" {
		t.Fatalf("second connection: %q, want the refusal", got)
	}
	second.expectClosed()
	if s.Accepted() != 2 || s.Rejected() != 1 || s.Open() != 1 {
		t.Fatalf("accepted %d rejected %d open %d, want 2 1 1", s.Accepted(), s.Rejected(), s.Open())
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	s, _ := startLoop(t, Config{}, 50*time.Millisecond)
	c := dial(t, s)
	c.expectClosed()
}

func TestHandOffKeepsTheSocketOpen(t *testing.T) {
	s, handedOff := startLoop(t, Config{}, time.Minute)
	c := dial(t, s)
	c.send("link\n")
	if got := c.line(); got != "linked\n" {
		t.Fatalf("got %q", got)
	}
	nc := <-handedOff
	defer nc.Close()
	if _, err := io.WriteString(nc, "from the new owner\n"); err != nil {
		t.Fatal(err)
	}
	if got := c.line(); got != "from the new owner\n" {
		t.Fatalf("after the hand-off: %q", got)
	}
}

func TestShutdownAnswersWhatWasReadAndWaits(t *testing.T) {
	s, _ := startLoop(t, Config{}, time.Minute)
	c := dial(t, s)
	c.send("before\n")
	if got := c.line(); got != "BEFORE\n" {
		t.Fatalf("got %q", got)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if s.Open() != 0 || !s.Closing() {
		t.Fatalf("after shutdown: open %d closing %v", s.Open(), s.Closing())
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Fatal("the listener still accepts")
	}
}

func TestConfigValidateNamesEveryField(t *testing.T) {
	err := Config{MaxConns: -1, MaxConnsPerClient: -1, MaxPipeline: -1, MaxReplyBuffer: -1, WriteTimeout: -1, SocketBuffer: -1}.Validate()
	for _, field := range []string{"MaxConns", "MaxConnsPerClient", "MaxPipeline", "MaxReplyBuffer", "WriteTimeout", "SocketBuffer"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func limitCount(s *Server, l Limit) int {
	var m dto.Metric
	if err := s.limits.WithLabelValues(string(l)).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefusesPastMaxConnsPerClient: a client address over its limit is
// refused, while its open connections and the server stay served, and a
// slot freed is given again.
func TestRefusesPastMaxConnsPerClient(t *testing.T) {
	s, _ := startLoop(t, Config{MaxConnsPerClient: 2}, time.Minute)
	first, second := dial(t, s), dial(t, s)
	for _, c := range []*client{first, second} {
		c.send("x\n")
		if got := c.line(); got != "X\n" {
			t.Fatalf("connection under the limit: %q", got)
		}
	}
	third := dial(t, s)
	if got := third.line(); got != "busy client\n" {
		t.Fatalf("third connection: %q, want the per-client refusal", got)
	}
	third.expectClosed()
	first.send("still\n")
	if got := first.line(); got != "STILL\n" {
		t.Fatalf("after the refusal: %q", got)
	}
	if n := limitCount(s, LimitConnsPerClient); n != 1 {
		t.Fatalf("conns_per_client counted %d, want 1", n)
	}
	second.nc.Close()
	waitFor(t, "the closed connection's slot", func() bool { return s.Open() == 1 })
	fourth := dial(t, s)
	fourth.send("y\n")
	if got := fourth.line(); got != "Y\n" {
		t.Fatalf("after a slot was freed: %q", got)
	}
}

// TestPipelineAnsweredInPieces: a pipeline deeper than MaxPipeline is
// answered whole and in order, MaxPipeline answers per write.
func TestPipelineAnsweredInPieces(t *testing.T) {
	s, _ := startLoop(t, Config{MaxPipeline: 2}, time.Minute)
	c := dial(t, s)
	c.send("a\nb\nc\nd\ne\n")
	for _, want := range []string{"A\n", "B\n", "C\n", "D\n", "E\n"} {
		if got := c.line(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := limitCount(s, LimitPipeline); n < 2 {
		t.Fatalf("pipeline pauses counted %d, want at least 2", n)
	}
	if p := s.PeakSent(); p > 4 {
		t.Fatalf("a write carried %d bytes, want at most two answers (4)", p)
	}
}

// TestClientThatDoesNotReadIsClosed: a client that pipelines requests for
// big answers and never reads holds at most MaxReplyBuffer plus one answer
// of them, and is closed after the write timeout, while another client is
// answered throughout.
func TestClientThatDoesNotReadIsClosed(t *testing.T) {
	const maxReply = 4 * bigAnswer
	s, _ := startLoop(t, Config{MaxReplyBuffer: maxReply, WriteTimeout: 200 * time.Millisecond}, time.Minute)
	slow, good := dial(t, s), dial(t, s)
	slow.send(strings.Repeat("big\n", 1000)) // 64 MiB of answers
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50 && limitCount(s, LimitReplyBuffer) == 0; i++ {
			good.send("ping\n")
			if got := good.line(); got != "PING\n" {
				t.Errorf("good client: %q", got)
				return
			}
			time.Sleep(10 * time.Millisecond) // pace the good client, not a synchronisation
		}
	}()
	waitFor(t, "the slow client's close", func() bool { return limitCount(s, LimitReplyBuffer) == 1 })
	<-done
	waitFor(t, "the slow connection to end", func() bool { return s.Open() == 1 })
	if p := s.PeakSent(); p > maxReply+bigAnswer {
		t.Fatalf("a write carried %d bytes, want at most %d", p, maxReply+bigAnswer)
	}
	good.send("after\n")
	if got := good.line(); got != "AFTER\n" {
		t.Fatalf("good client after the close: %q", got)
	}
}

func TestWarnLimiter(t *testing.T) {
	var w warnLimiter
	t0 := time.Unix(0, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{{0, true, 0}, {time.Millisecond, false, 0}, {500 * time.Millisecond, false, 0}, {warnInterval, true, 2}, {warnInterval + 1, false, 0}}
	for i, st := range steps {
		n, ok := w.allow(LimitConns, t0.Add(st.at))
		if ok != st.ok || n != st.suppressed {
			t.Fatalf("step %d: allow = %d, %v, want %d, %v", i, n, ok, st.suppressed, st.ok)
		}
	}
	if _, ok := w.allow(LimitPipeline, t0.Add(warnInterval+2)); !ok {
		t.Fatal("another limit's line was held back")
	}
}
