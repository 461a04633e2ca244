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

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
)

// lineConn is a toy protocol: each line read is answered with itself in
// upper case; "quit" answers "bye" and closes, "link" answers "linked" and
// hands the socket to handedOff.
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

func (c *lineConn) Process() Outcome {
	for {
		i := bytes.IndexByte(c.in, '\n')
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
func (c *lineConn) Refuse()                              { c.out = append(c.out, "busy\n"...) }
func (c *lineConn) HandOff(nc net.Conn)                  { c.handedOff <- nc }
func (c *lineConn) Log() *logrus.Entry                   { return c.log }

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
	err := Config{MaxConns: -1, WriteTimeout: -1, SocketBuffer: -1}.Validate()
	for _, field := range []string{"MaxConns", "WriteTimeout", "SocketBuffer"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}
