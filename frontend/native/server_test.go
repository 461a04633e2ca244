package native

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// options are what a test varies: the server's settings, the data
// service's limits, where the store lives (empty: in memory), where the
// logs go (empty: stderr; else JSON files there), who takes peer links
// (nil: nobody, as on a node that does not replicate), the cascade (nil:
// none) and the parent domain kv reads beyond the node from (nil: none).
type options struct {
	Domain                                           string
	HeartbeatInterval, IdleTimeout, HandshakeTimeout time.Duration
	MaxConns, MaxKeySize, MaxValueSize               int
	MaxConnsPerClient, MaxReplyBuffer                int
	ClientToken, PeerToken, AdminToken               string
	DataDir, LogDir                                  string
	links                                            LinkAcceptor
	cascade                                          Cascade
	upstream                                         kv.Upstream
	backup                                           backupFunc // nil: the store's backup
}

// backupFunc stands in for Admin.Backup.
type backupFunc func(ctx context.Context, w io.Writer, begin func(protocol.BackupResponse) error) error

// testServer is a binary-protocol server over a store of its own, under
// the names a node gives its parts.
type testServer struct {
	srv    *Server
	st     *store.Store
	id     crdt.NodeID
	logger *logging.Logger
}

func (n *testServer) Addr() net.Addr          { return n.srv.Addr() }
func (n *testServer) ID() crdt.NodeID         { return n.id }
func (n *testServer) Logger() *logging.Logger { return n.logger }

// Close shuts the server down, then the store, as a node does.
func (n *testServer) Close() error {
	return errors.Join(n.srv.Shutdown(context.Background()), n.st.Close())
}

// fakeAdmin answers the administrative requests for a node alone.
type fakeAdmin struct {
	st     *store.Store
	s      *testServer
	backup backupFunc
}

func (a fakeAdmin) Status(_ context.Context, st *protocol.StatusResponse) error {
	stats := a.st.Stats()
	st.Keys, st.LogLen = int64(stats.Keys), stats.LogLen
	return nil
}

func (a fakeAdmin) Digest(ctx context.Context) (string, int, error) { return a.st.Digest(ctx) }

func (a fakeAdmin) Backup(ctx context.Context, w io.Writer, begin func(protocol.BackupResponse) error) error {
	if a.backup != nil {
		return a.backup(ctx, w, begin)
	}
	_, err := a.st.Backup(ctx, w, store.BackupOptions{Domain: a.s.srv.cfg.Domain, Begin: func(i store.BackupInfo) error {
		return begin(protocol.BackupResponse{NodeID: i.NodeID.String(), Domain: i.Domain, Digest: i.Digest, Keys: int64(i.Keys), CreatedMS: i.Created.UnixMilli(), Size: i.Size})
	}})
	return err
}

func (a fakeAdmin) Members() []protocol.Member {
	return []protocol.Member{{NodeID: a.s.id.String(), Addr: a.s.Addr().String(), State: "alive", Self: true}}
}

// startNode runs a server on an ephemeral loopback port until the test
// ends.
func startNode(t testing.TB, o options) *testServer {
	t.Helper()
	const id = crdt.NodeID(0xa11ce)
	scfg := store.Config{Dir: o.DataDir, InMemory: o.DataDir == "", MaxKeySize: o.MaxKeySize, MaxValueSize: o.MaxValueSize}
	if scfg.InMemory {
		scfg.NodeID = id
	}
	st, err := store.Open(scfg, clock.Real(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kv.New(kv.Config{MaxKeySize: o.MaxKeySize, MaxValueSize: o.MaxValueSize, NodeID: id}, kv.Deps{Store: st, Upstream: o.upstream})
	if err != nil {
		t.Fatal(err)
	}
	lcfg := logging.DefaultConfig()
	lcfg.Level = "warn"
	if o.LogDir != "" {
		lcfg.Dir, lcfg.Format = o.LogDir, logging.FormatJSON
	}
	logger, err := logging.New(lcfg, id.String(), cmp.Or(o.Domain, "default"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logger.Close() })
	n := &testServer{st: st, id: id, logger: logger}
	n.srv, err = New(Config{
		NodeID: id, Domain: o.Domain, HeartbeatInterval: o.HeartbeatInterval, IdleTimeout: o.IdleTimeout,
		HandshakeTimeout: o.HandshakeTimeout, MaxConns: o.MaxConns, MaxConnsPerClient: o.MaxConnsPerClient, MaxReplyBuffer: o.MaxReplyBuffer,
		ClientToken: o.ClientToken, PeerToken: o.PeerToken, AdminToken: o.AdminToken,
	}, Deps{KV: svc, Admin: fakeAdmin{st: st, s: n, backup: o.backup}, Logger: logger, Links: o.links, Cascade: o.cascade, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.srv.Serve(ln)
	t.Cleanup(func() { n.Close() })
	return n
}

// wire is a raw protocol connection for tests that need to send exact bytes.
type wire struct {
	t   *testing.T
	nc  net.Conn
	dec *protocol.Decoder
	id  uint64
}

func dial(t *testing.T, n *testServer) *wire {
	t.Helper()
	nc, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wire{t: t, nc: nc, dec: protocol.NewDecoder(0)}
}

// hello performs the handshake and returns the server's Hello.
func (w *wire) hello(h protocol.Hello) protocol.Hello {
	w.t.Helper()
	h.Version = protocol.Version
	w.send(protocol.OpHello, &h)
	f := w.recv()
	if f.Opcode != protocol.OpHello {
		w.t.Fatalf("handshake answered with %s: %v", f.Opcode, decodeErr(f))
	}
	var got protocol.Hello
	if err := protocol.DecodeBody(f.Body, &got); err != nil {
		w.t.Fatal(err)
	}
	return got
}

// frame encodes a request and returns its bytes and request ID.
func (w *wire) frame(op protocol.Opcode, msg any) ([]byte, uint64) {
	w.id++
	b, err := protocol.AppendFrame(nil, protocol.Header{Opcode: op, ReqID: w.id}, msg)
	if err != nil {
		w.t.Fatal(err)
	}
	return b, w.id
}

func (w *wire) send(op protocol.Opcode, msg any) uint64 {
	b, id := w.frame(op, msg)
	w.write(b)
	return id
}

func (w *wire) write(b []byte) {
	w.t.Helper()
	if _, err := w.nc.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// recv returns the next frame, failing the test after 10s.
func (w *wire) recv() protocol.Frame {
	w.t.Helper()
	f, err := w.next()
	if err != nil {
		w.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func (w *wire) next() (protocol.Frame, error) {
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, ok, err := w.dec.Next()
		if err != nil {
			return f, err
		}
		if ok {
			f.Body = bytes.Clone(f.Body)
			return f, nil
		}
		if _, err := w.dec.ReadOnce(w.nc); err != nil {
			return protocol.Frame{}, err
		}
	}
}

// expectClosed asserts the server closes the connection.
func (w *wire) expectClosed() {
	w.t.Helper()
	for {
		_, err := w.next()
		if errors.Is(err, io.EOF) || isReset(err) {
			return
		}
		if err != nil {
			w.t.Fatalf("want the server to close the connection, got %v", err)
		}
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func decodeErr(f protocol.Frame) *protocol.Error {
	if f.Opcode != protocol.OpError {
		return nil
	}
	var e protocol.Error
	if err := protocol.DecodeBody(f.Body, &e); err != nil {
		return &protocol.Error{Code: 0, Message: "undecodable error body"}
	}
	return &e
}

func TestHandshakeAnnouncesTimeouts(t *testing.T) {
	n := startNode(t, options{HeartbeatInterval: 2 * time.Second, IdleTimeout: 7 * time.Second, MaxValueSize: 4096, Domain: "dc1"})
	h := dial(t, n).hello(protocol.Hello{Client: "test"})
	if h.HeartbeatMS != 2000 || h.IdleTimeoutMS != 7000 || h.MaxValue != 4096 || int(h.MaxKey) != kv.DefaultConfig().MaxKeySize ||
		h.Domain != "dc1" || h.NodeID != n.ID().String() || h.Version != protocol.Version {
		t.Fatalf("hello = %+v", h)
	}
}

// TestPipelineReadsSeeEarlierWrites sends a whole pipeline in one write; every
// request is answered under its own ID, and each read sees the writes sent
// before it.
func TestPipelineReadsSeeEarlierWrites(t *testing.T) {
	n := startNode(t, options{})
	w := dial(t, n)
	w.hello(protocol.Hello{})
	var buf []byte
	add := func(op protocol.Opcode, msg any) uint64 {
		b, id := w.frame(op, msg)
		buf = append(buf, b...)
		return id
	}
	set := add(protocol.OpSet, &protocol.SetRequest{Key: []byte("k"), Value: []byte("v1")})
	get1 := add(protocol.OpGet, &protocol.GetRequest{Key: []byte("k")})
	incr1 := add(protocol.OpIncr, &protocol.IncrRequest{Key: []byte("c"), Delta: 5})
	incr2 := add(protocol.OpIncr, &protocol.IncrRequest{Key: []byte("c"), Delta: -2})
	getc := add(protocol.OpGet, &protocol.GetRequest{Key: []byte("c")})
	del := add(protocol.OpDel, &protocol.DelRequest{Key: []byte("k")})
	get2 := add(protocol.OpGet, &protocol.GetRequest{Key: []byte("k")})
	ping := add(protocol.OpPing, nil)
	w.write(buf)

	got := map[uint64]protocol.Frame{}
	for range 8 {
		f := w.recv()
		if !f.IsResponse() {
			t.Fatalf("frame %d is not a response", f.ReqID)
		}
		got[f.ReqID] = f
	}
	var g protocol.GetResponse
	protocol.DecodeBody(got[get1].Body, &g)
	if string(g.Value) != "v1" || len(g.Context) == 0 {
		t.Fatalf("get after set = %+v %v", g, decodeErr(got[get1]))
	}
	for _, c := range []struct {
		id   uint64
		want int64
	}{{incr1, 5}, {incr2, 3}} {
		var r protocol.IncrResponse
		protocol.DecodeBody(got[c.id].Body, &r)
		if r.Value != c.want {
			t.Fatalf("incr answer = %d, want %d", r.Value, c.want)
		}
	}
	g = protocol.GetResponse{}
	protocol.DecodeBody(got[getc].Body, &g)
	if string(g.Value) != "3" || !g.Counter {
		t.Fatalf("get counter = %+v", g)
	}
	for _, id := range []uint64{set, del, ping} {
		if got[id].Opcode == protocol.OpError {
			t.Fatalf("request %d failed: %v", id, decodeErr(got[id]))
		}
	}
	if e := decodeErr(got[get2]); e == nil || e.Code != protocol.CodeNotFound {
		t.Fatalf("get after del = %v, want not found", e)
	}
}

// TestBadInput: malformed, oversized and unknown frames get an error frame;
// framing errors close that connection, body errors do not; other
// connections are served throughout.
func TestBadInput(t *testing.T) {
	n := startNode(t, options{MaxValueSize: 1024})
	bystander := dial(t, n)
	bystander.hello(protocol.Hello{})

	header := func(magic, version, op byte, length uint32) []byte {
		b := []byte{magic, version, op, 0, 0, 0, 0, 0, 0, 0, 0, 9}
		return binary.BigEndian.AppendUint32(b, length)
	}
	cases := []struct {
		name     string
		hello    bool
		input    []byte
		code     protocol.Code
		closes   bool
		wantReq  uint64
		afterKey string // when the connection stays open, a set that must work after
	}{
		{"bad magic", true, header(0x00, protocol.Version, byte(protocol.OpGet), 0), protocol.CodeProtocol, true, 0, ""},
		{"bad version", true, header(protocol.Magic, 99, byte(protocol.OpGet), 0), protocol.CodeProtocol, true, 0, ""},
		{"unknown opcode", true, header(protocol.Magic, protocol.Version, 0x55, 0), protocol.CodeUnknownOp, true, 9, ""},
		{"oversized frame", true, header(protocol.Magic, protocol.Version, byte(protocol.OpSet), 1<<30), protocol.CodeTooLarge, true, 9, ""},
		{"no hello first", false, header(protocol.Magic, protocol.Version, byte(protocol.OpPing), 0), protocol.CodeProtocol, true, 9, ""},
		{"garbage body", true, append(header(protocol.Magic, protocol.Version, byte(protocol.OpSet), 3), 0xc1, 0xc1, 0xc1), protocol.CodeBadRequest, false, 9, "after-garbage"},
		{"response from client", true, func() []byte {
			b := header(protocol.Magic, protocol.Version, byte(protocol.OpPing), 0)
			b[3] = byte(protocol.FlagResponse)
			return b
		}(), protocol.CodeBadRequest, true, 9, ""},
		{"redis client on the binary port", false, []byte("*1\r\n$4\r\nPING\r\n1234567890"), protocol.CodeProtocol, true, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dial(t, n)
			if tc.hello {
				w.hello(protocol.Hello{})
			}
			w.write(tc.input)
			f := w.recv()
			e := decodeErr(f)
			if e == nil || e.Code != tc.code {
				t.Fatalf("answer %s %v, want error code %s", f.Opcode, e, tc.code)
			}
			if f.ReqID != tc.wantReq {
				t.Errorf("error frame request ID %d, want %d", f.ReqID, tc.wantReq)
			}
			if e.ReqID == "" {
				t.Error("error frame carries no req_id for the logs")
			}
			if tc.closes {
				w.expectClosed()
				return
			}
			w.send(protocol.OpSet, &protocol.SetRequest{Key: []byte(tc.afterKey), Value: []byte("ok")})
			if f := w.recv(); f.Opcode != protocol.OpSet {
				t.Fatalf("connection unusable after a bad body: %v", decodeErr(f))
			}
		})
	}

	t.Run("value over the limit", func(t *testing.T) {
		w := dial(t, n)
		w.hello(protocol.Hello{})
		w.send(protocol.OpSet, &protocol.SetRequest{Key: []byte("big"), Value: make([]byte, 1025)})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeTooLarge {
			t.Fatalf("oversized value answered %v", e)
		}
		w.send(protocol.OpSet, &protocol.SetRequest{Key: []byte(strings.Repeat("k", kv.DefaultConfig().MaxKeySize+1)), Value: []byte("v")})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeTooLarge {
			t.Fatalf("oversized key answered %v", e)
		}
		w.send(protocol.OpGet, &protocol.GetRequest{Key: []byte(strings.Repeat("k", kv.DefaultConfig().MaxKeySize+1))})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeTooLarge {
			t.Fatalf("get of an oversized key answered %v", e)
		}
		w.send(protocol.OpSet, &protocol.SetRequest{Key: nil, Value: []byte("v")})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeBadRequest {
			t.Fatalf("empty key answered %v", e)
		}
		w.send(protocol.OpSet, &protocol.SetRequest{Key: []byte("k"), Value: []byte("v"), Context: []byte{0xff, 0x00}})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeBadContext {
			t.Fatalf("bad context token answered %v", e)
		}
		w.send(protocol.OpIncr, &protocol.IncrRequest{Key: []byte("after-garbage"), Delta: 1})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeWrongType {
			t.Fatalf("incr of a text value answered %v", e)
		}
	})

	// The bystander saw none of it.
	bystander.send(protocol.OpGet, &protocol.GetRequest{Key: []byte("after-garbage")})
	var g protocol.GetResponse
	f := bystander.recv()
	if err := protocol.DecodeBody(f.Body, &g); err != nil || string(g.Value) != "ok" {
		t.Fatalf("bystander get = %q, %v", g.Value, decodeErr(f))
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	n := startNode(t, options{HeartbeatInterval: 50 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	busy, idle := dial(t, n), dial(t, n)
	busy.hello(protocol.Hello{})
	idle.hello(protocol.Hello{})
	idleDone := make(chan struct{})
	go func() {
		defer close(idleDone)
		idle.expectClosed()
	}()
	// The busy connection pings every heartbeat and outlives the idle one.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-idleDone:
			busy.send(protocol.OpPing, nil)
			if f := busy.recv(); f.Opcode != protocol.OpPing {
				t.Fatalf("busy connection: %v", decodeErr(f))
			}
			return
		case <-tick.C:
			busy.send(protocol.OpPing, nil)
			busy.recv()
		case <-time.After(10 * time.Second):
			t.Fatal("idle connection not closed")
		}
	}
}

// TestMaxConnsPerClient: a client address past its limit gets a typed
// refusal, and its open connections are still answered.
func TestMaxConnsPerClient(t *testing.T) {
	n := startNode(t, options{MaxConnsPerClient: 2})
	first := dial(t, n)
	first.hello(protocol.Hello{})
	dial(t, n).hello(protocol.Hello{})
	w := dial(t, n)
	if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeUnavailable || e.Message != "max connections per client reached" {
		t.Fatalf("third connection answered %v, want unavailable: max connections per client reached", e)
	}
	w.expectClosed()
	first.send(protocol.OpPing, nil)
	if f := first.recv(); f.Opcode != protocol.OpPing {
		t.Fatalf("first connection after the refusal: %v", decodeErr(f))
	}
}

// TestClientThatDoesNotReadIsClosed: 10k pipelined GETs of a 256 KiB
// value from a client that never reads are answered at most the reply
// buffer at a time and the client is closed after the idle timeout, while
// another client's reads and writes all succeed.
func TestClientThatDoesNotReadIsClosed(t *testing.T) {
	const maxReply, value = 1 << 20, 256 << 10
	n := startNode(t, options{MaxReplyBuffer: maxReply, IdleTimeout: 300 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond})
	good := dial(t, n)
	good.hello(protocol.Hello{})
	good.send(protocol.OpSet, &protocol.SetRequest{Key: []byte("big"), Value: bytes.Repeat([]byte{'v'}, value)})
	if f := good.recv(); f.Opcode != protocol.OpSet {
		t.Fatalf("set: %v", decodeErr(f))
	}
	slow := dial(t, n)
	slow.hello(protocol.Hello{})
	var pipeline []byte
	for range 10000 {
		b, _ := slow.frame(protocol.OpGet, &protocol.GetRequest{Key: []byte("big")})
		pipeline = append(pipeline, b...)
	}
	go slow.nc.Write(pipeline) // blocks once the server stops reading; ends with the close
	for i := 0; n.srv.Open() == 2; i++ {
		if i == 2000 {
			t.Fatal("the client that does not read was not closed")
		}
		key := []byte("k" + strconv.Itoa(i))
		good.send(protocol.OpSet, &protocol.SetRequest{Key: key, Value: []byte("v")})
		good.send(protocol.OpGet, &protocol.GetRequest{Key: key})
		if f := good.recv(); f.Opcode != protocol.OpSet {
			t.Fatalf("good client's set: %v", decodeErr(f))
		}
		if f := good.recv(); f.Opcode != protocol.OpGet {
			t.Fatalf("good client's get: %v", decodeErr(f))
		}
		time.Sleep(5 * time.Millisecond) // paces the good client; not a synchronisation
	}
	if p := n.srv.loop.PeakSent(); p > maxReply+value+4<<10 {
		t.Fatalf("one write carried %d bytes of answers, want at most the reply buffer and one answer (%d)", p, maxReply+value)
	}
}

func TestMaxConns(t *testing.T) {
	n := startNode(t, options{MaxConns: 2})
	dial(t, n).hello(protocol.Hello{})
	dial(t, n).hello(protocol.Hello{})
	w := dial(t, n)
	if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeUnavailable {
		t.Fatalf("third connection answered %v, want unavailable", e)
	}
	w.expectClosed()
}

func TestTokens(t *testing.T) {
	n := startNode(t, options{ClientToken: "c-secret", AdminToken: "a-secret"})
	cases := []struct {
		name  string
		hello protocol.Hello
		ok    bool
	}{
		{"client without token", protocol.Hello{}, false},
		{"client with token", protocol.Hello{Token: "c-secret"}, true},
		{"admin with client token", protocol.Hello{Role: protocol.RoleAdmin, Token: "c-secret"}, false},
		{"admin with admin token", protocol.Hello{Role: protocol.RoleAdmin, Token: "a-secret"}, true},
		{"peer with client token", protocol.Hello{Role: protocol.RolePeer, Token: "c-secret", NodeID: "00000000000000aa"}, false},
		{"peer with nothing", protocol.Hello{Role: protocol.RolePeer, NodeID: "00000000000000aa"}, false},
		{"unknown role", protocol.Hello{Role: 9, Token: "c-secret"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dial(t, n)
			h := tc.hello
			h.Version = protocol.Version
			w.send(protocol.OpHello, &h)
			f := w.recv()
			if tc.ok != (f.Opcode == protocol.OpHello) {
				t.Fatalf("answer %s %v", f.Opcode, decodeErr(f))
			}
			if !tc.ok {
				if e := decodeErr(f); e.Code != protocol.CodeUnauthorized {
					t.Fatalf("code %s, want unauthorized", e.Code)
				}
				w.expectClosed()
			}
		})
	}
}

// TestPeerRole: only a connection that proved the peer role may open a
// peer link, which carries replication traffic.
func TestPeerRole(t *testing.T) {
	n := startNode(t, options{ClientToken: "c", PeerToken: "p"})
	cl := dial(t, n)
	cl.hello(protocol.Hello{Token: "c"})
	cl.send(protocol.OpPeerLink, nil)
	if e := decodeErr(cl.recv()); e == nil || e.Code != protocol.CodeUnauthorized {
		t.Fatalf("client asking for a peer link: %v", e)
	}
	w := dial(t, n)
	w.send(protocol.OpHello, &protocol.Hello{Version: protocol.Version, Role: protocol.RolePeer, Token: "p"})
	if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeBadRequest {
		t.Fatalf("peer without a node ID: %v", e)
	}
	p := dial(t, n)
	p.hello(protocol.Hello{Role: protocol.RolePeer, Token: "p", NodeID: "00000000000000aa"})
	p.send(protocol.OpPeerLink, nil)
	if e := decodeErr(p.recv()); e == nil || e.Code != protocol.CodeUnavailable {
		t.Fatalf("peer on a node that does not replicate: %v", e)
	}
}

func TestLogLevelNeedsAdmin(t *testing.T) {
	n := startNode(t, options{AdminToken: "a"})
	cl := dial(t, n)
	cl.hello(protocol.Hello{})
	cl.send(protocol.OpLogLevel, &protocol.LogLevelRequest{Level: "debug"})
	if e := decodeErr(cl.recv()); e == nil || e.Code != protocol.CodeUnauthorized {
		t.Fatalf("client changing the log level: %v", e)
	}
	ad := dial(t, n)
	ad.hello(protocol.Hello{Role: protocol.RoleAdmin, Token: "a"})
	ad.send(protocol.OpLogLevel, &protocol.LogLevelRequest{Level: "nonsense"})
	if e := decodeErr(ad.recv()); e == nil || e.Code != protocol.CodeBadRequest {
		t.Fatalf("bad level: %v", e)
	}
	ad.send(protocol.OpLogLevel, &protocol.LogLevelRequest{Level: "debug"})
	var r protocol.LogLevelRequest
	if f := ad.recv(); protocol.DecodeBody(f.Body, &r) != nil || r.Level != "debug" {
		t.Fatalf("log level after change = %q (%v)", r.Level, decodeErr(f))
	}
	if n.Logger().Level() != "debug" {
		t.Fatalf("logger level %q", n.Logger().Level())
	}
}

// TestSlowThreshold: anyone may read the slow threshold; only the admin
// role changes it, to a duration with its unit, and the change is in force
// at once.
func TestSlowThreshold(t *testing.T) {
	n := startNode(t, options{AdminToken: "a"})
	cl := dial(t, n)
	cl.hello(protocol.Hello{})
	cl.send(protocol.OpSlowThreshold, &protocol.SlowThresholdRequest{})
	var r protocol.SlowThresholdRequest
	if f := cl.recv(); protocol.DecodeBody(f.Body, &r) != nil || r.Threshold != n.Logger().SlowThreshold().String() {
		t.Fatalf("slow threshold read = %q (%v), want %s", r.Threshold, decodeErr(f), n.Logger().SlowThreshold())
	}
	cl.send(protocol.OpSlowThreshold, &protocol.SlowThresholdRequest{Threshold: "50ms"})
	if e := decodeErr(cl.recv()); e == nil || e.Code != protocol.CodeUnauthorized {
		t.Fatalf("client changing the slow threshold: %v", e)
	}
	ad := dial(t, n)
	ad.hello(protocol.Hello{Role: protocol.RoleAdmin, Token: "a"})
	for _, bad := range []string{"5", "-1s", "soon"} {
		ad.send(protocol.OpSlowThreshold, &protocol.SlowThresholdRequest{Threshold: bad})
		if e := decodeErr(ad.recv()); e == nil || e.Code != protocol.CodeBadRequest {
			t.Fatalf("slow threshold %q: %v, want a bad request", bad, e)
		}
	}
	ad.send(protocol.OpSlowThreshold, &protocol.SlowThresholdRequest{Threshold: "50ms"})
	if f := ad.recv(); protocol.DecodeBody(f.Body, &r) != nil || r.Threshold != "50ms" {
		t.Fatalf("slow threshold after change = %q (%v)", r.Threshold, decodeErr(f))
	}
	if got := n.Logger().SlowThreshold(); got != 50*time.Millisecond {
		t.Fatalf("logger's slow threshold %v, want 50ms", got)
	}
}

// TestShutdownAnswersWhatWasRead: Close during a stream of writes answers
// every request the server read, and every answered write is in the store
// when it is opened again.
func TestShutdownAnswersWhatWasRead(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, options{DataDir: dir})
	w := dial(t, n)
	w.hello(protocol.Hello{})
	var buf []byte
	keys := map[uint64]string{}
	for i := range 2000 {
		key := "k" + strconv.Itoa(i)
		b, id := w.frame(protocol.OpSet, &protocol.SetRequest{Key: []byte(key), Value: []byte("v")})
		buf = append(buf, b...)
		keys[id] = key
	}
	go w.nc.Write(buf)
	acked := []string{}
	f := w.recv() // at least one answer before shutdown begins
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	for {
		if f.Opcode == protocol.OpSet {
			acked = append(acked, keys[f.ReqID])
		}
		var err error
		f, err = w.next()
		if err != nil {
			break
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	st, err := store.Open(store.Config{Dir: dir}, clock.Real(), logging.Discard().Component("store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range acked {
		if _, _, err := st.Read([]byte(k)); err != nil {
			t.Fatalf("acknowledged %s missing after shutdown: %v", k, err)
		}
	}
	t.Logf("%d of 2000 writes answered before shutdown", len(acked))
}

func TestGetBeyondLocalScopeIsUnavailable(t *testing.T) {
	w := dial(t, startNode(t, options{}))
	w.hello(protocol.Hello{Version: protocol.Version, Role: protocol.RoleClient})
	for _, scope := range []protocol.Scope{protocol.ScopeUp, protocol.ScopeRoot} {
		w.send(protocol.OpGet, &protocol.GetRequest{Key: []byte("k"), Scope: scope})
		if e := decodeErr(w.recv()); e == nil || e.Code != protocol.CodeScopeUnavailable {
			t.Errorf("get with scope %d = %v, want scope unavailable", scope, e)
		}
	}
}
