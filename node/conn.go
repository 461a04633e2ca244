package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

const (
	// outBufSize is the reply buffer a busy connection keeps between
	// batches; a larger one, grown for a big value, is dropped after use.
	// It grows from nothing as answers need, so an idle connection holds
	// none.
	outBufSize = 64 << 10
	// sockBufSize asks the kernel for big socket buffers: a pipeline of
	// small requests then costs one read and one write system call.
	sockBufSize = 512 << 10
	// protocolOverhead is what a body may carry beyond a key and a value:
	// the causal context, the TTL, the request ID.
	protocolOverhead = 64 << 10
)

// conn serves one client connection. A single goroutine reads, handles and
// answers, so that a pipeline is answered with one write and a client that
// stops reading slows only itself.
type conn struct {
	s       *server
	nc      net.Conn
	log     *logrus.Entry
	dec     *protocol.Decoder
	out     []byte
	role    protocol.Role
	peer    crdt.NodeID // the node ID a peer stated in its hello
	hello   bool
	maxBody uint32
	closed  bool // set when a reply must be the connection's last

	// The run of writes waiting to be applied as one batch.
	writes  []store.Write
	pending []pendingWrite
	results []store.Result

	// batchStart is when the current batch was read: request IDs take
	// their time from it and every answer in the batch is written at its
	// end, so one clock reading on each side serves the whole batch.
	batchStart time.Time
	answered   []answered
}

// pendingWrite remembers what a queued write needs for its reply.
type pendingWrite struct {
	op    protocol.Opcode
	reqID uint64
	rid   reqid.ID
}

// answered is a request answered in the current batch, kept until the batch
// is written so its log line can carry the batch's duration.
type answered struct {
	op  protocol.Opcode
	rid reqid.ID
	key []byte
	err error
}

func newConn(s *server, nc net.Conn) *conn {
	maxBody := s.n.maxBody()
	return &conn{
		s:       s,
		maxBody: maxBody,
		nc:      nc,
		log:     s.log.WithField(logging.FieldRemote, nc.RemoteAddr().String()),
		dec:     protocol.NewDecoder(maxBody),
	}
}

// refuse answers a connection the server will not serve, and closes it.
func (c *conn) refuse() {
	c.log.WithField("max_conns", c.s.n.cfg.MaxConns).Warn("connection refused: too many connections")
	c.appendError(0, reqid.ID{}, protocol.CodeUnavailable, "too many connections")
	c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.nc.Write(c.out)
	c.nc.Close()
}

// wake interrupts a blocked read so the connection notices shutdown.
func (c *conn) wake() { c.nc.SetReadDeadline(time.Now()) }

// forceClose cuts the connection off when shutdown runs out of time.
func (c *conn) forceClose() { c.nc.Close() }

func (c *conn) run() {
	defer c.s.untrack(c)
	defer c.nc.Close()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(sockBufSize)
		tc.SetWriteBuffer(sockBufSize)
	}
	c.log.Debug("connection opened")
	// The handshake timeout bounds the whole handshake, not each read: a
	// hello dribbled a byte at a time must not hold a connection slot.
	handshakeBy := time.Now().Add(c.s.n.cfg.HandshakeTimeout)
	for {
		deadline := handshakeBy
		if c.hello {
			deadline = time.Now().Add(c.s.n.cfg.IdleTimeout)
		}
		c.nc.SetReadDeadline(deadline)
		if c.s.closing.Load() {
			c.log.Debug("connection closed: node shutting down")
			return
		}
		n, err := c.dec.ReadOnce(c.nc)
		if n > 0 && !c.process() {
			return
		}
		if err != nil {
			c.readFailed(err)
			return
		}
	}
}

// readFailed logs why a connection ends. None of these is the server's
// failure: a client going away or going silent is routine.
func (c *conn) readFailed(err error) {
	switch {
	case c.s.closing.Load():
		c.log.Debug("connection closed: node shutting down")
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.WithField("handshake_done", c.hello).Info("connection closed: idle timeout")
	default:
		c.log.WithError(err).Debug("connection read failed")
	}
}

// process handles every complete frame buffered and writes the answers. It
// returns false when the connection must close.
func (c *conn) process() bool {
	c.batchStart = time.Now()
	for !c.closed {
		f, ok, err := c.dec.Next()
		if err != nil {
			c.flushWrites()
			rid := c.newID()
			c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: f.Opcode.String()}).
				Warn("bad frame: closing connection")
			c.appendError(f.ReqID, rid, protocol.CodeOf(err), err.Error())
			c.s.n.metrics.badFrame.Inc()
			c.closed = true
			break
		}
		if !ok {
			break
		}
		c.handle(f)
	}
	c.flushWrites()
	c.logAnswered()
	return c.flushOut() && !c.closed
}

func (c *conn) flushOut() bool {
	if len(c.out) == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.n.cfg.IdleTimeout))
	_, err := c.nc.Write(c.out)
	if cap(c.out) > 4*outBufSize {
		c.out = make([]byte, 0, outBufSize)
	} else {
		c.out = c.out[:0]
	}
	if err != nil {
		c.log.WithError(err).Debug("connection write failed")
		return false
	}
	return true
}

func (c *conn) handle(f protocol.Frame) {
	if f.IsResponse() {
		c.fail(f, c.newID(), protocol.CodeBadRequest, "a client may not send responses", true)
		return
	}
	if !c.hello {
		c.handshake(f)
		return
	}
	switch f.Opcode {
	case protocol.OpPing:
		c.reply(f, nil)
	case protocol.OpGet:
		c.flushWrites() // a read sees every write sent before it
		c.get(f)
	case protocol.OpSet:
		var req protocol.SetRequest
		if !c.decode(f, &req) {
			return
		}
		rid := c.requestID(req.ReqID)
		w := store.Write{Op: store.OpSet, Key: req.Key, Value: req.Value, ReqID: rid.String()}
		if req.TTLMS < 0 {
			c.fail(f, rid, protocol.CodeBadRequest, "negative ttl", false)
			return
		}
		if req.TTLMS > 0 {
			w.Expiry = c.s.n.clk.Now().UnixMilli() + req.TTLMS
		}
		if !c.withContext(f, rid, req.Key, req.Context, &w) {
			return
		}
		c.queue(f, rid, w)
	case protocol.OpDel:
		var req protocol.DelRequest
		if !c.decode(f, &req) {
			return
		}
		rid := c.requestID(req.ReqID)
		w := store.Write{Op: store.OpDel, Key: req.Key, ReqID: rid.String()}
		if !c.withContext(f, rid, req.Key, req.Context, &w) {
			return
		}
		c.queue(f, rid, w)
	case protocol.OpIncr:
		var req protocol.IncrRequest
		if !c.decode(f, &req) {
			return
		}
		rid := c.requestID(req.ReqID)
		c.queue(f, rid, store.Write{Op: store.OpIncr, Key: req.Key, Delta: req.Delta, ReqID: rid.String()})
	case protocol.OpStatus:
		c.flushWrites()
		c.status(f)
	case protocol.OpDigest:
		c.flushWrites()
		c.digest(f)
	case protocol.OpLogLevel:
		c.logLevel(f)
	case protocol.OpMembers:
		c.members(f)
	case protocol.OpReplicate:
		c.replicate(f)
	default:
		// A second hello or an error frame: the peer has lost track of the
		// conversation.
		c.fail(f, c.newID(), protocol.CodeProtocol, "opcode "+f.Opcode.String()+" is not a request here", true)
	}
}

// handshake checks the client's Hello and answers with the server's.
func (c *conn) handshake(f protocol.Frame) {
	rid := c.newID()
	if f.Opcode != protocol.OpHello {
		c.fail(f, rid, protocol.CodeProtocol, "the first frame must be hello", true)
		return
	}
	var h protocol.Hello
	if err := protocol.DecodeBody(f.Body, &h); err != nil {
		c.fail(f, rid, protocol.CodeBadRequest, err.Error(), true)
		return
	}
	if h.Version != protocol.Version {
		c.fail(f, rid, protocol.CodeProtocol, "unsupported protocol version", true)
		return
	}
	if !c.s.n.authorize(h.Role, h.Token) {
		c.log.WithFields(logrus.Fields{"role": h.Role, logging.FieldReqID: rid.String()}).Warn("handshake refused: bad token for role")
		c.fail(f, rid, protocol.CodeUnauthorized, "bad token for the role asked", true)
		return
	}
	if h.Role == protocol.RolePeer {
		id, err := crdt.ParseNodeID(h.NodeID)
		if err != nil {
			c.fail(f, rid, protocol.CodeBadRequest, "a peer must state its node ID", true)
			return
		}
		c.peer = id
	}
	c.hello, c.role = true, h.Role
	cfg := c.s.n.cfg
	c.log = c.log.WithField("client", h.Client)
	c.log.WithField("role", h.Role).Debug("handshake done")
	c.reply(f, &protocol.Hello{
		Version:       protocol.Version,
		NodeID:        c.s.n.id.String(),
		Domain:        cfg.Domain,
		HeartbeatMS:   cfg.HeartbeatInterval.Milliseconds(),
		IdleTimeoutMS: cfg.IdleTimeout.Milliseconds(),
		MaxBody:       c.maxBody,
		MaxKey:        uint32(cfg.Store.MaxKeySize),
		MaxValue:      uint32(cfg.Store.MaxValueSize),
	})
}

// authorize checks a token against the role asked for. With no token
// configured at all, every role is open (a development node). Otherwise a
// role whose own token is unset falls back to a stronger rule: the admin
// role needs the client token, and the peer role is closed, so that holding
// the client token never lets a connection inject replication traffic.
func (n *Node) authorize(role protocol.Role, token string) bool {
	open := n.cfg.ClientToken == "" && n.cfg.PeerToken == "" && n.cfg.AdminToken == ""
	var want string
	switch role {
	case protocol.RoleClient:
		want = n.cfg.ClientToken
	case protocol.RolePeer:
		if n.cfg.PeerToken == "" && !open {
			return false
		}
		want = n.cfg.PeerToken
	case protocol.RoleAdmin:
		want = n.cfg.AdminToken
		if want == "" {
			want = n.cfg.ClientToken
		}
	default:
		return false
	}
	return want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

func (c *conn) get(f protocol.Frame) {
	var req protocol.GetRequest
	if !c.decode(f, &req) {
		return
	}
	rid := c.requestID(req.ReqID)
	switch {
	case req.Scope > protocol.ScopeRoot:
		c.fail(f, rid, protocol.CodeBadRequest, "unknown scope", false)
		return
	case len(req.Key) == 0:
		c.fail(f, rid, protocol.CodeBadRequest, "empty key", false)
		return
	case len(req.Key) > c.s.n.cfg.Store.MaxKeySize:
		c.fail(f, rid, protocol.CodeTooLarge, "key over max-key-size", false)
		return
	}
	view, rec, err := c.s.n.kv.Read(context.Background(), req.Key, kv.Scope(req.Scope))
	if err != nil {
		c.failErr(f, rid, err)
		c.logRequest(f.Opcode, rid, req.Key, err)
		return
	}
	resp := protocol.GetResponse{
		Value:    view.Value,
		Counter:  view.Kind == crdt.KindCount,
		ExpiryMS: view.Expiry,
		Context:  crdt.EncodeToken(req.Key, rec.Context),
	}
	if req.Siblings {
		for _, e := range rec.Live(c.s.n.clk.Now().UnixMilli()) {
			s := protocol.Sibling{Value: e.Value, ExpiryMS: e.Expiry, Deleted: e.Kind == crdt.KindTomb, Node: e.Dot.Node.String(), TimeMS: e.TS.Millis()}
			if e.Counts() {
				s.Value = strconv.AppendInt(nil, rec.Contribution(e), 10)
			}
			resp.Siblings = append(resp.Siblings, s)
		}
	}
	c.reply(f, &resp)
	c.logRequest(f.Opcode, rid, req.Key, nil)
}

// queue adds a write to the current run; the run is applied as one batch
// before the next read or at the end of what was read.
func (c *conn) queue(f protocol.Frame, rid reqid.ID, w store.Write) {
	c.writes = append(c.writes, w)
	c.pending = append(c.pending, pendingWrite{op: f.Opcode, reqID: f.ReqID, rid: rid})
}

func (c *conn) flushWrites() {
	if len(c.writes) == 0 {
		return
	}
	if cap(c.results) < len(c.writes) {
		c.results = make([]store.Result, len(c.writes))
	}
	res := c.results[:len(c.writes)]
	ctx, cancel := context.WithTimeout(context.Background(), c.s.n.cfg.IdleTimeout)
	c.s.n.store.ApplyBatch(ctx, c.writes, res)
	cancel()
	for i, p := range c.pending {
		r := &res[i]
		f := protocol.Frame{Header: protocol.Header{Opcode: p.op, ReqID: p.reqID}}
		switch {
		case r.Err != nil:
			c.failErr(f, p.rid, r.Err)
		case p.op == protocol.OpIncr:
			c.reply(f, &protocol.IncrResponse{Value: r.Counter})
		default:
			c.reply(f, &protocol.WriteResponse{Context: crdt.EncodeToken(c.writes[i].Key, r.Context)})
		}
		c.logRequest(p.op, p.rid, c.writes[i].Key, r.Err)
		c.writes[i] = store.Write{} // drop references to request buffers
		*r = store.Result{}
	}
	c.writes, c.pending = c.writes[:0], c.pending[:0]
}

func (c *conn) status(f protocol.Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.n.cfg.IdleTimeout)
	defer cancel()
	st, err := c.s.n.store.Stats(ctx)
	if err != nil {
		c.failErr(f, c.newID(), err)
		return
	}
	applied := vectorMap(st.Applied)
	if applied == nil {
		applied = map[string]uint64{}
	}
	resp := protocol.StatusResponse{
		NodeID:    c.s.n.id.String(),
		Domain:    c.s.n.cfg.Domain,
		Version:   Version,
		Addr:      c.s.addr().String(),
		StartedMS: c.s.n.started.UnixMilli(),
		Keys:      int64(st.Keys),
		LogLen:    st.LogLen,
		Applied:   applied,
		Conns:     c.s.open.Load(),

		DeadRecords:    st.DeadRecords,
		DroppedStable:  st.DroppedStable,
		DroppedHorizon: st.DroppedHorizon,
		Stable:         vectorMap(c.s.n.store.Stable()),
	}
	c.s.n.addDomainStatus(&resp)
	c.reply(f, &resp)
}

func (c *conn) digest(f protocol.Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.n.cfg.IdleTimeout)
	defer cancel()
	sum, keys, err := c.s.n.store.Digest(ctx)
	if err != nil {
		c.failErr(f, c.newID(), err)
		return
	}
	c.reply(f, &protocol.DigestResponse{Digest: sum, Keys: int64(keys)})
}

func (c *conn) logLevel(f protocol.Frame) {
	rid := c.newID()
	var req protocol.LogLevelRequest
	if !c.decode(f, &req) {
		return
	}
	logger := c.s.n.logger
	before := logger.Level()
	if req.Level != "" && req.Level != before {
		if c.role != protocol.RoleAdmin {
			c.fail(f, rid, protocol.CodeUnauthorized, "changing the log level needs the admin role", false)
			return
		}
		if err := logger.SetLevel(req.Level); err != nil {
			c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
			return
		}
		logger.Audit(c.nc.RemoteAddr().String(), "log-level", before, logger.Level(), logrus.Fields{logging.FieldReqID: rid.String()})
		c.log.WithFields(logrus.Fields{"before": before, "after": logger.Level(), logging.FieldReqID: rid.String()}).Info("log level changed")
	}
	c.reply(f, &protocol.LogLevelRequest{Level: logger.Level()})
}

// requestID adopts the caller's request ID when it is one of ours (made by
// another node or by the client library), so it can be followed across
// hops; otherwise it makes a new one.
func (c *conn) requestID(s string) reqid.ID {
	if s != "" {
		if id, err := reqid.Parse(s); err == nil {
			return id
		}
	}
	return c.newID()
}

func (c *conn) withContext(f protocol.Frame, rid reqid.ID, key, token []byte, w *store.Write) bool {
	if len(token) == 0 {
		return true
	}
	cc, err := crdt.DecodeToken(key, token)
	if err != nil {
		c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
		return false
	}
	w.Context = &cc
	return true
}

// decode decodes a request body without copying its bytes: everything a
// request refers to is used before the next read reuses the buffer (writes
// are applied and answers logged at the end of each batch, and the store
// keeps no reference to a write's key or value).
func (c *conn) decode(f protocol.Frame, msg any) bool {
	if err := protocol.DecodeBodyNoCopy(f.Body, msg); err != nil {
		rid := c.newID()
		c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: f.Opcode.String()}).Debug("bad request body")
		c.fail(f, rid, protocol.CodeBadRequest, err.Error(), false)
		return false
	}
	return true
}

func (c *conn) reply(f protocol.Frame, msg any) {
	start := len(c.out)
	out, err := protocol.AppendFrame(c.out, protocol.Header{Opcode: f.Opcode, Flags: protocol.FlagResponse, ReqID: f.ReqID}, msg)
	if err == nil && len(out)-start-protocol.HeaderSize > int(c.maxBody) {
		// Several large siblings can outgrow what the client accepts.
		c.out = out[:start]
		c.appendError(f.ReqID, reqid.ID{}, protocol.CodeTooLarge, "the answer exceeds the frame size limit")
		return
	}
	if err != nil {
		c.log.WithError(err).WithField(logging.FieldOp, f.Opcode.String()).Error("encoding a reply failed")
		c.appendError(f.ReqID, reqid.ID{}, protocol.CodeInternal, "encoding the reply failed")
		return
	}
	c.out = out
}

// failErr answers with the code err maps to. Only an internal failure is
// logged as an error; the rest are the caller's business.
func (c *conn) failErr(f protocol.Frame, rid reqid.ID, err error) {
	code := errorCode(err)
	if code == protocol.CodeInternal {
		c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: f.Opcode.String()}).Error("request failed")
	}
	msg := ""
	if code != protocol.CodeNotFound {
		msg = err.Error()
	}
	c.fail(f, rid, code, msg, false)
}

func (c *conn) fail(f protocol.Frame, rid reqid.ID, code protocol.Code, msg string, closeAfter bool) {
	c.appendError(f.ReqID, rid, code, msg)
	if closeAfter {
		c.closed = true
	}
}

func (c *conn) appendError(reqID uint64, rid reqid.ID, code protocol.Code, msg string) {
	e := protocol.Error{Code: code, Message: msg}
	if rid != (reqid.ID{}) {
		e.ReqID = rid.String()
	}
	// An Error body always encodes.
	c.out, _ = protocol.AppendFrame(c.out, protocol.Header{Opcode: protocol.OpError, Flags: protocol.FlagResponse, ReqID: reqID}, &e)
}

// logRequest notes an answered request; logAnswered writes the notes once
// the batch is done.
func (c *conn) logRequest(op protocol.Opcode, rid reqid.ID, key []byte, err error) {
	c.s.n.metrics.observe(op, err)
	c.answered = append(c.answered, answered{op: op, rid: rid, key: key, err: err})
}

// logAnswered writes each answered request's DEBUG line when debugging. A
// slow batch otherwise gets one WARN line, naming its first request and how
// many were answered with it, so that a stall does not flood the log with a
// line per pipelined request.
func (c *conn) logAnswered() {
	if len(c.answered) == 0 {
		return
	}
	d := time.Since(c.batchStart)
	c.s.n.metrics.batch.Observe(d.Seconds())
	logger := c.s.n.logger
	switch {
	case c.log.Logger.IsLevelEnabled(logrus.DebugLevel):
		for _, a := range c.answered {
			logger.Slow(c.answerEntry(a), a.op.String(), d)
		}
	case logger.SlowEnabled(d):
		a := c.answered[0]
		logger.Slow(c.answerEntry(a).WithField("batch_requests", len(c.answered)), a.op.String(), d)
	}
	clear(c.answered)
	c.answered = c.answered[:0]
}

func (c *conn) answerEntry(a answered) *logrus.Entry {
	fields := logrus.Fields{logging.FieldReqID: a.rid.String(), logging.FieldKey: logging.Key(a.key)}
	if a.err != nil {
		fields["result"] = errorCode(a.err).String()
	}
	return c.log.WithFields(fields)
}

// newID makes a request ID stamped with the batch's arrival time.
func (c *conn) newID() reqid.ID { return c.s.n.ids.NextAt(c.batchStart) }

// maxBody is the largest frame body the node accepts and sends.
func (n *Node) maxBody() uint32 {
	return uint32(n.cfg.Store.MaxKeySize + n.cfg.Store.MaxValueSize + protocolOverhead)
}

// vectorMap renders a version vector as node ID -> counter; nil for none.
func vectorMap(vv crdt.VersionVector) map[string]uint64 {
	if len(vv) == 0 {
		return nil
	}
	m := make(map[string]uint64, len(vv))
	for _, e := range vv {
		m[e.Node.String()] = e.Counter
	}
	return m
}
