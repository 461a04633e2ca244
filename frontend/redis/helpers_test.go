package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/upu/upu/internal/clock"
)

// startRespNode runs a node with the Redis listener on ephemeral ports and a
// store in a temporary directory, standalone unless cfg gives a gossip
// address; a nil clk is the real clock.
func startRespNode(t testing.TB, cfg Config, clk clock.Clock) *Node {
	t.Helper()
	cfg.Addr, cfg.RespAddr = "127.0.0.1:0", "127.0.0.1:0"
	return startNodeClock(t, cfg, clk)
}

// redisClient is a go-redis client of n's listener speaking protocol 2 or 3.
func redisClient(t testing.TB, n *Node, protocol int, password string) *redis.Client {
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

func dialResp(t testing.TB, n *Node) *respWire {
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
