package redis

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FuzzRespCommands sends arbitrary bytes to the Redis listener: whatever
// arrives, every reply is well-formed RESP, the connection ends when the
// client's side does, and the node goes on serving.
func FuzzRespCommands(f *testing.F) {
	for _, s := range []string{
		"SET k v\r\nGET k\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"SET k v EX 10 NX GET\r\nGETEX k PXAT 1\r\nTTL k\r\nPTTL k\r\n",
		"INCR c\r\nINCRBY c -9223372036854775808\r\nDECRBY c 5\r\nAPPEND c x\r\nSTRLEN c\r\n",
		"MSET a 1 b 2\r\nMGET a b c\r\nDEL a b\r\nUNLINK c\r\nEXISTS a b\r\n",
		"EXPIRE k 10 GT\r\nPEXPIREAT k 1 LT XX\r\nPERSIST k\r\nTYPE k\r\n",
		"SCAN 0 MATCH [a-\\\\]* COUNT 3 TYPE string\r\nSCAN 9007199254740991\r\n",
		"HELLO 3 AUTH default x SETNAME n\r\nCLIENT SETINFO LIB-NAME x\r\nCLIENT INFO\r\nHELLO 2\r\n",
		"COMMAND\r\nCOMMAND INFO get nope\r\nCOMMAND DOCS\r\nCONFIG GET *\r\nINFO\r\nDBSIZE\r\n",
		"PING\r\nECHO x\r\nSELECT 0\r\nQUIT\r\nPING\r\n",
		"*1\r\n$4\r\nPING\r\n*x\r\n",
		"SET \"a\\x00b\" 'c'\r\nGET \"a\\x00b\"\r\n",
	} {
		f.Add([]byte(s))
	}
	n := startPipeServer(f, options{MaxKeySize: 64, MaxValueSize: 256, IdleTimeout: 10 * time.Second})
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := pipeResp(t, n)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(data); err != nil && !isReset(err) {
			t.Fatal(err)
		}
		nc.CloseWrite()
		out, err := io.ReadAll(nc)
		if err != nil && !isReset(err) {
			t.Fatalf("reading the replies: %v", err)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		w := &respWire{t: t, br: br}
		for {
			if _, err := br.Peek(1); err != nil {
				break // every reply read
			}
			if _, err := w.readReply(); err != nil {
				t.Fatalf("malformed reply stream (%v):\n%q", err, out)
			}
		}

		// The node still serves.
		check := pipeResp(t, n)
		check.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(check, "PING\r\n")
		line, err := bufio.NewReader(check).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+PONG") {
			t.Fatalf("PING after the input: %q, %v", line, err)
		}
	})
}

// pipeListener hands a server the ends of socket pairs, which (unlike TCP
// on loopback) leave no TIME_WAIT behind, so that a fuzzer can open a few
// hundred thousand connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "unix"} }

// startPipeServer runs a server on a pipeListener until the test ends.
func startPipeServer(t testing.TB, o options) *pipeListener {
	t.Helper()
	s, _ := newServer(t, o, nil)
	ln := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return ln
}

// pipeResp connects to the server through a socket pair.
func pipeResp(t *testing.T, ln *pipeListener) *net.UnixConn {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "resp-pipe")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	client, server := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { client.Close() })
	ln.conns <- pipeAddr{server}
	return client
}

// pipeAddr gives a socket pair's end the remote address it lacks.
type pipeAddr struct{ *net.UnixConn }

func (pipeAddr) RemoteAddr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "unix"} }
