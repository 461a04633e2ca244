package redis

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/store"
)

// options are what a test varies: the server's settings, the data
// service's limits, and the parent domain it reads beyond the node from
// (nil: none).
type options struct {
	MaxKeySize, MaxValueSize, MaxConns int
	MaxConnsPerClient, MaxPipeline     int
	IdleTimeout                        time.Duration
	ClientToken                        string
	upstream                           kv.Upstream
}

// testServer is a Redis-protocol server over a store of its own, under the
// names a node gives its parts.
type testServer struct {
	resp *Server
	id   crdt.NodeID
}

func (n *testServer) RespAddr() net.Addr { return n.resp.Addr() }
func (n *testServer) ID() crdt.NodeID    { return n.id }
func (n *testServer) Close() error       { return n.resp.Shutdown(context.Background()) }

// fakeNode is the node INFO reports: one alone, no domain.
type fakeNode struct{ id crdt.NodeID }

func (f fakeNode) Info() Info {
	return Info{NodeID: f.id.String(), Domain: "default", Version: "test", Started: time.Now(), Addr: "127.0.0.1:7700", Applied: "{}"}
}

// newServer makes a server over a store in a temporary directory, as a
// node's; a nil clk is the real clock.
func newServer(t testing.TB, o options, clk clock.Clock) (*Server, crdt.NodeID) {
	t.Helper()
	if clk == nil {
		clk = clock.Real()
	}
	const id = crdt.NodeID(0x5e1f)
	st, err := store.Open(store.Config{Dir: t.TempDir(), MaxKeySize: o.MaxKeySize, MaxValueSize: o.MaxValueSize}, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := kv.New(kv.Config{MaxKeySize: o.MaxKeySize, MaxValueSize: o.MaxValueSize, NodeID: id}, kv.Deps{Store: st, Clock: clk, Upstream: o.upstream})
	if err != nil {
		t.Fatal(err)
	}
	logger, err := logging.New(logging.Config{Level: "error"}, id.String(), "default")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logger.Close() })
	s, err := New(Config{MaxConns: o.MaxConns, MaxConnsPerClient: o.MaxConnsPerClient, MaxPipeline: o.MaxPipeline, IdleTimeout: o.IdleTimeout, ClientToken: o.ClientToken},
		Deps{KV: svc, Node: fakeNode{id}, Logger: logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s, id
}

// startServer runs a server on an ephemeral loopback port until the test
// ends.
func startServer(t testing.TB, o options, clk clock.Clock) *testServer {
	t.Helper()
	s, id := newServer(t, o, clk)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return &testServer{resp: s, id: id}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// redisClient is a go-redis client of n's listener speaking protocol 2 or 3.
func redisClient(t testing.TB, n *testServer, protocol int, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         n.RespAddr().String(),
		Protocol:     protocol,
		Password:     password,
		MaxRetries:   -1, // an error must show, not be retried away
		DialTimeout:  5 * time.Second,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// respWire is a raw connection for tests that send exact bytes and read
// exact replies.
type respWire struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialResp(t testing.TB, n *testServer) *respWire {
	t.Helper()
	nc, err := net.Dial("tcp", n.RespAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &respWire{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes a command as a multibulk array.
func (w *respWire) send(args ...string) {
	w.t.Helper()
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	w.write(b.String())
}

func (w *respWire) write(s string) {
	w.t.Helper()
	w.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(w.nc, s); err != nil {
		w.t.Fatal(err)
	}
}

// do sends a command and returns its reply.
func (w *respWire) do(args ...string) string {
	w.t.Helper()
	w.send(args...)
	return w.reply()
}

// reply reads one whole reply and returns its bytes as they came.
func (w *respWire) reply() string {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := w.readReply()
	if err != nil {
		w.t.Fatalf("reading a reply: %v (got %q)", err, s)
	}
	return s
}

func (w *respWire) readReply() (string, error) {
	line, err := w.br.ReadString('\n')
	if err != nil {
		return line, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return line, errors.New("not a CRLF line")
	}
	n, err := strconv.Atoi(line[1 : len(line)-2])
	elems := 0
	switch line[0] {
	case '+', '-', ':', '_', '#', ',', '(':
		return line, nil
	case '$', '=', '!', '*', '~', '>', '%', '|':
		if err != nil {
			return line, err
		}
	default:
		return line, errors.New("unknown reply type")
	}
	switch line[0] {
	case '$', '=', '!':
		if n < 0 {
			return line, nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(w.br, body); err != nil {
			return line, err
		}
		return line + string(body), nil
	case '*', '~', '>':
		elems = n
	case '%', '|':
		elems = 2 * n
	}
	for range elems {
		e, err := w.readReply()
		line += e
		if err != nil {
			return line, err
		}
	}
	return line, nil
}

// expectClosed reads until the server closes the connection, failing if
// anything but the end arrives.
func (w *respWire) expectClosed() {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(w.br)
	if err != nil && !isReset(err) {
		w.t.Fatalf("waiting for the server to close: %v", err)
	}
	if len(rest) > 0 {
		w.t.Fatalf("more bytes before the close: %q", rest)
	}
}

// bulk is a bulk string reply.
func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// errReply is an error reply.
func errReply(msg string) string { return "-" + msg + "\r\n" }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
