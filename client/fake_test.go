package client

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upu/upu/protocol"
)

// fakeServer speaks the node's side of the protocol over a map, with knobs
// for the failures the client must survive. Keys select behaviour:
//
//	hold/...   the reply waits until release is called (or the connection dies)
//	err/N/...  the reply is an error frame with code N and req_id "fake-N"
type fakeServer struct {
	t     testing.TB
	addr  string
	hello protocol.Hello
	token string

	shuffle atomic.Bool // answer each read's requests in random order
	silent  atomic.Bool // read everything, answer nothing
	hangUp  atomic.Bool // close each connection right after the handshake

	accepted  atomic.Int64 // connections accepted
	peerEOF   atomic.Int64 // connections the client closed
	heartbeat atomic.Int64 // pings with request ID 0 received
	requests  atomic.Int64 // requests other than hello and heartbeats
	batches   atomic.Int64 // writes that answered more than one request

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	data     map[string][]byte
	counters map[string]int64
	level    string
	cascade  protocol.CascadeStatus
	// cascadeFail, when set, is the code cascade-parent fails with.
	cascadeFail protocol.Code
	last        map[protocol.Opcode][]byte // body of the last request per opcode
	released    chan struct{}
	wg          sync.WaitGroup
}

func newFake(t testing.TB) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{
		t:    t,
		addr: ln.Addr().String(),
		hello: protocol.Hello{
			Version: protocol.Version, NodeID: "00000000000000f1", Domain: "test",
			HeartbeatMS: 5000, IdleTimeoutMS: 30000, MaxBody: 1 << 20, MaxKey: 256, MaxValue: 64 << 10,
		},
		conns:    map[net.Conn]struct{}{},
		data:     map[string][]byte{},
		counters: map[string]int64{},
		level:    "info",
		cascade:  protocol.CascadeStatus{Domain: "test", State: "root", Path: []string{"test"}},
		last:     map[protocol.Opcode][]byte{},
		released: make(chan struct{}),
	}
	fs.serve(ln)
	t.Cleanup(fs.stop)
	return fs
}

// serve accepts on ln until stop.
func (fs *fakeServer) serve(ln net.Listener) {
	fs.mu.Lock()
	fs.ln = ln
	fs.mu.Unlock()
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			fs.mu.Lock()
			if fs.ln != ln {
				fs.mu.Unlock()
				_ = nc.Close()
				return
			}
			fs.conns[nc] = struct{}{}
			fs.wg.Add(1)
			fs.mu.Unlock()
			fs.accepted.Add(1)
			go fs.handle(nc)
		}
	}()
}

// stop closes the listener and every connection and waits for the server's
// goroutines.
func (fs *fakeServer) stop() {
	fs.mu.Lock()
	if fs.ln != nil {
		_ = fs.ln.Close()
		fs.ln = nil
	}
	fs.mu.Unlock()
	fs.dropConns()
	fs.wg.Wait()
}

// restart listens again on the same address.
func (fs *fakeServer) restart() {
	fs.t.Helper()
	ln, err := net.Listen("tcp", fs.addr)
	if err != nil {
		fs.t.Fatal(err)
	}
	fs.serve(ln)
}

// dropConns closes every open connection, as a crashing node would.
func (fs *fakeServer) dropConns() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for nc := range fs.conns {
		_ = nc.Close()
	}
}

// release lets held replies go.
func (fs *fakeServer) release() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	close(fs.released)
	fs.released = make(chan struct{})
}

func (fs *fakeServer) lastBody(op protocol.Opcode, msg any) {
	fs.t.Helper()
	fs.mu.Lock()
	body := fs.last[op]
	fs.mu.Unlock()
	if err := protocol.DecodeBody(body, msg); err != nil {
		fs.t.Fatalf("last %s request: %v", op, err)
	}
}

// handle serves one connection.
func (fs *fakeServer) handle(nc net.Conn) {
	defer fs.wg.Done()
	var wmu sync.Mutex // held replies are written from other goroutines
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = nc.Write(b)
	}
	closed := make(chan struct{}) // ends held replies
	defer func() {
		fs.mu.Lock()
		delete(fs.conns, nc)
		fs.mu.Unlock()
		_ = nc.Close()
		close(closed)
	}()
	dec := protocol.NewDecoder(0)
	helloDone := false
	for {
		_, err := dec.ReadOnce(nc)
		var replies [][]byte
		for {
			f, ok, ferr := dec.Next()
			if ferr != nil {
				fs.t.Errorf("fake server: bad frame: %v", ferr)
				return
			}
			if !ok {
				break
			}
			if !helloDone {
				helloDone = true
				reply, good := fs.handshake(f)
				write(reply)
				if !good || fs.hangUp.Load() {
					return
				}
				continue
			}
			if f.Opcode == protocol.OpPing && f.ReqID == 0 {
				fs.heartbeat.Add(1)
			} else {
				fs.requests.Add(1)
			}
			if fs.silent.Load() {
				continue
			}
			key := requestKey(f)
			reply := fs.answer(f, key)
			if strings.HasPrefix(key, "hold/") {
				fs.mu.Lock()
				released := fs.released
				fs.mu.Unlock()
				fs.wg.Add(1)
				go func() {
					defer fs.wg.Done()
					select {
					case <-released:
						write(reply)
					case <-closed:
					}
				}()
				continue
			}
			replies = append(replies, reply)
		}
		if fs.shuffle.Load() {
			rand.Shuffle(len(replies), func(i, j int) { replies[i], replies[j] = replies[j], replies[i] })
		}
		if len(replies) > 1 {
			fs.batches.Add(1)
		}
		if len(replies) > 0 {
			var out []byte
			for _, r := range replies {
				out = append(out, r...)
			}
			write(out)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fs.peerEOF.Add(1)
			return
		}
	}
}

func (fs *fakeServer) handshake(f protocol.Frame) ([]byte, bool) {
	var h protocol.Hello
	if f.Opcode != protocol.OpHello || protocol.DecodeBody(f.Body, &h) != nil || h.Version != protocol.Version {
		return fs.errorFrame(f, protocol.CodeProtocol, "bad hello"), false
	}
	if h.Token != fs.token {
		return fs.errorFrame(f, protocol.CodeUnauthorized, "bad token"), false
	}
	return fs.frame(f, &fs.hello), true
}

func requestKey(f protocol.Frame) string {
	var r struct {
		Key []byte `msgpack:"k"`
	}
	if len(f.Body) == 0 || protocol.DecodeBody(f.Body, &r) != nil {
		return ""
	}
	return string(r.Key)
}

// answer computes the reply to a request for key.
func (fs *fakeServer) answer(f protocol.Frame, key string) []byte {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.last[f.Opcode] = append([]byte(nil), f.Body...)
	if key, ok := strings.CutPrefix(key, "err/"); ok {
		code, _, _ := strings.Cut(key, "/")
		n, _ := strconv.Atoi(code)
		return fs.errorFrame(f, protocol.Code(n), "injected failure")
	}
	switch f.Opcode {
	case protocol.OpPing:
		return fs.frame(f, nil)
	case protocol.OpGet:
		var req protocol.GetRequest
		fs.decode(f, &req)
		v, ok := fs.data[string(req.Key)]
		if !ok {
			return fs.errorFrame(f, protocol.CodeNotFound, "")
		}
		resp := protocol.GetResponse{Value: v, ExpiryMS: 1700000000000, Context: []byte("ctx:" + string(req.Key))}
		if req.Scope != protocol.ScopeLocal {
			resp.Domain = "top"
		}
		if req.Siblings {
			resp.Siblings = []protocol.Sibling{
				{Value: v, Node: "n1", TimeMS: 1700000000001},
				{Value: []byte("other"), Node: "n2", TimeMS: 1700000000002, Deleted: true},
			}
		}
		return fs.frame(f, &resp)
	case protocol.OpSet:
		var req protocol.SetRequest
		fs.decode(f, &req)
		fs.data[string(req.Key)] = req.Value
		return fs.frame(f, &protocol.WriteResponse{Context: []byte("ctx:" + string(req.Key))})
	case protocol.OpDel:
		var req protocol.DelRequest
		fs.decode(f, &req)
		delete(fs.data, string(req.Key))
		return fs.frame(f, &protocol.WriteResponse{})
	case protocol.OpIncr:
		var req protocol.IncrRequest
		fs.decode(f, &req)
		fs.counters[string(req.Key)] += req.Delta
		return fs.frame(f, &protocol.IncrResponse{Value: fs.counters[string(req.Key)]})
	case protocol.OpStatus:
		return fs.frame(f, &protocol.StatusResponse{NodeID: fs.hello.NodeID, Domain: "test", Keys: int64(len(fs.data)), Applied: map[string]uint64{"a": 1}})
	case protocol.OpDigest:
		return fs.frame(f, &protocol.DigestResponse{Digest: "d1gest", Keys: int64(len(fs.data))})
	case protocol.OpMembers:
		return fs.frame(f, &protocol.MembersResponse{Members: []protocol.Member{
			{NodeID: fs.hello.NodeID, Domain: "test", Addr: fs.addr, GossipAddr: "127.0.0.1:7946", State: "alive", Self: true},
			{NodeID: "00000000000000f2", Domain: "test", Addr: "127.0.0.1:1", GossipAddr: "127.0.0.1:2", State: "failed"},
		}})
	case protocol.OpLogLevel:
		var req protocol.LogLevelRequest
		fs.decode(f, &req)
		if req.Level != "" {
			fs.level = req.Level
		}
		return fs.frame(f, &protocol.LogLevelRequest{Level: fs.level})
	case protocol.OpCascadeStatus:
		return fs.frame(f, &fs.cascade)
	case protocol.OpCascadeParent:
		var req protocol.CascadeParentRequest
		fs.decode(f, &req)
		if fs.cascadeFail != 0 {
			return fs.errorFrame(f, fs.cascadeFail, "injected failure")
		}
		fs.cascade.Parent, fs.cascade.Seeds = req.Domain, req.Seeds
		return fs.frame(f, &fs.cascade)
	}
	return fs.errorFrame(f, protocol.CodeUnknownOp, "")
}

func (fs *fakeServer) decode(f protocol.Frame, msg any) {
	if err := protocol.DecodeBody(f.Body, msg); err != nil {
		fs.t.Errorf("fake server: %s body: %v", f.Opcode, err)
	}
}

func (fs *fakeServer) frame(f protocol.Frame, msg any) []byte {
	out, err := protocol.AppendFrame(nil, protocol.Header{Opcode: f.Opcode, Flags: protocol.FlagResponse, ReqID: f.ReqID}, msg)
	if err != nil {
		fs.t.Errorf("fake server: encode: %v", err)
	}
	return out
}

func (fs *fakeServer) errorFrame(f protocol.Frame, code protocol.Code, msg string) []byte {
	e := protocol.Error{Code: code, Message: msg, ReqID: "fake-" + strconv.Itoa(int(code))}
	out, err := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpError, Flags: protocol.FlagResponse, ReqID: f.ReqID}, &e)
	if err != nil {
		fs.t.Errorf("fake server: encode: %v", err)
	}
	return out
}

// newTestClient returns a client for cfg closed at cleanup, with one
// connection per node and test-sized backoffs unless cfg says otherwise.
func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.ConnsPerNode == 0 {
		cfg.ConnsPerNode = 1
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 5 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
