package native

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
)

// outBufSize is the reply buffer a busy connection keeps between batches;
// a larger one, grown for a big value, is dropped after use. It grows from
// nothing as answers need, so an idle connection holds none.
const outBufSize = 64 << 10

// conn is one binary-protocol connection, served by the connection loop
// from one goroutine, so that a pipeline is answered with one write.
type conn struct {
	s      *Server
	log    *logrus.Entry
	remote string
	dec    *protocol.Decoder
	out    []byte
	role   protocol.Role
	peer   crdt.NodeID // the node ID a peer stated in its hello
	hello  bool
	closed bool // set when a reply must be the connection's last
	opened time.Time
	// takeover, once set, is the socket's next owner: a peer link, or a
	// backup's stream. Process reads no more frames.
	takeover func(nc net.Conn)

	// The run of writes waiting to be applied as one batch, and what each
	// needs for its reply.
	batch   *kv.Batch
	pending []pendingWrite

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

func newConn(s *Server, log *logrus.Entry, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	return &conn{
		s:      s,
		remote: remote,
		log:    log.WithField(logging.FieldRemote, remote),
		dec:    protocol.NewDecoder(s.maxBody),
		batch:  s.kv.NewBatch(kv.ProtocolNative),
		opened: time.Now(),
	}
}

func (c *conn) Log() *logrus.Entry                { return c.log }
func (c *conn) ReadOnce(r io.Reader) (int, error) { return c.dec.ReadOnce(r) }

// ReadDeadline bounds the whole handshake, not each read: a hello
// dribbled a byte at a time must not hold a connection slot. After it, a
// connection may stay silent for the idle timeout.
func (c *conn) ReadDeadline(now time.Time) time.Time {
	if !c.hello {
		return c.opened.Add(c.s.cfg.HandshakeTimeout)
	}
	return now.Add(c.s.cfg.IdleTimeout)
}

// Refuse answers a connection the server will not serve.
func (c *conn) Refuse(why connloop.Refusal) {
	msg := "too many connections"
	if why == connloop.RefusePerClient {
		msg = "max connections per client reached"
	}
	c.appendError(0, reqid.ID{}, protocol.CodeUnavailable, msg)
}

// Queued is the size of the answers not yet written.
func (c *conn) Queued() int { return len(c.out) }

// Flush writes the answers of the batch.
func (c *conn) Flush(w io.Writer) error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := w.Write(c.out)
	if cap(c.out) > 4*outBufSize {
		c.out = make([]byte, 0, outBufSize)
	} else {
		c.out = c.out[:0]
	}
	return err
}

// HandOff gives the socket to the owner a request chose (takeover).
func (c *conn) HandOff(nc net.Conn) { c.takeover(nc) }

// Process handles the complete frames buffered, as many as b allows, and
// queues the answers.
func (c *conn) Process(b connloop.Budget) connloop.Outcome {
	c.batchStart = time.Now()
	more := false
	for handled := 0; !c.closed && c.takeover == nil; handled++ {
		if b.Full(handled, len(c.out)) {
			more = c.dec.Buffered() > 0
			break
		}
		f, ok, err := c.dec.Next()
		if err != nil {
			c.flushWrites()
			rid := c.newID()
			c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: f.Opcode.String(), logging.FieldEvent: logging.EventProtocolError}).
				Warn("bad frame: closing connection")
			c.appendError(f.ReqID, rid, protocol.CodeOf(err), err.Error())
			c.s.metrics.badFrame.Inc()
			if errors.Is(err, protocol.ErrFrameTooLarge) {
				c.s.loop.Count(connloop.LimitRequestSize)
			}
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
	switch {
	case c.closed:
		return connloop.Close
	case c.takeover != nil:
		return connloop.HandOff
	case more:
		return connloop.More
	}
	return connloop.Continue
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
		rid := c.s.kv.RequestID(req.ReqID, c.batchStart)
		expiry, err := c.batch.ExpiryAfter(req.TTLMS)
		if err != nil {
			c.failErr(f, rid, err)
			return
		}
		w := kv.Write{Op: kv.OpSet, Key: req.Key, Value: req.Value, Expiry: expiry}
		if !c.withContext(f, rid, req.Key, req.Context, &w) {
			return
		}
		c.queue(f, rid, w)
	case protocol.OpDel:
		var req protocol.DelRequest
		if !c.decode(f, &req) {
			return
		}
		rid := c.s.kv.RequestID(req.ReqID, c.batchStart)
		w := kv.Write{Op: kv.OpDel, Key: req.Key}
		if !c.withContext(f, rid, req.Key, req.Context, &w) {
			return
		}
		c.queue(f, rid, w)
	case protocol.OpIncr:
		var req protocol.IncrRequest
		if !c.decode(f, &req) {
			return
		}
		c.queue(f, c.s.kv.RequestID(req.ReqID, c.batchStart), kv.Write{Op: kv.OpIncr, Key: req.Key, Delta: req.Delta})
	case protocol.OpStatus:
		c.flushWrites()
		c.status(f)
	case protocol.OpDigest:
		c.flushWrites()
		c.digest(f)
	case protocol.OpSlowThreshold:
		c.slowThreshold(f)
	case protocol.OpLogLevel:
		c.logLevel(f)
	case protocol.OpMembers:
		c.members(f)
	case protocol.OpCascadeStatus:
		c.flushWrites() // the writes are not held while the cascade answers
		c.cascadeStatus(f)
	case protocol.OpCascadeParent:
		c.flushWrites()
		c.cascadeParent(f)
	case protocol.OpBackup:
		c.flushWrites()
		c.backup(f)
	case protocol.OpPeerLink:
		c.peerLink(f)
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
	if !c.s.cfg.authorize(h.Role, h.Token) {
		c.log.WithFields(logrus.Fields{"role": h.Role, logging.FieldReqID: rid.String()}).WithField(logging.FieldEvent, logging.EventBadToken).Warn("handshake refused: bad token for role")
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
	cfg := c.s.cfg
	c.log = c.log.WithField("client", h.Client)
	c.log.WithField("role", h.Role).Debug("handshake done")
	c.reply(f, &protocol.Hello{
		Version:       protocol.Version,
		NodeID:        cfg.NodeID.String(),
		Domain:        cfg.Domain,
		HeartbeatMS:   cfg.HeartbeatInterval.Milliseconds(),
		IdleTimeoutMS: cfg.IdleTimeout.Milliseconds(),
		MaxBody:       c.s.maxBody,
		MaxKey:        uint32(c.s.kv.MaxKeySize()),
		MaxValue:      uint32(c.s.kv.MaxValueSize()),
	})
}

func (c *conn) get(f protocol.Frame) {
	var req protocol.GetRequest
	if !c.decode(f, &req) {
		return
	}
	rid := c.s.kv.RequestID(req.ReqID, c.batchStart)
	a, err := c.read(req.Key, kv.Scope(req.Scope), rid)
	view, rec := a.View, a.Record
	switch {
	case err == nil:
	case a.Domain != "" && kv.KindOf(err) == kv.KindNotFound:
		// A miss up the tree says where it was looked for last.
		c.fail(f, rid, protocol.CodeNotFound, "not found (domain "+a.Domain+")", false)
	default:
		c.failErr(f, rid, err)
	}
	if err != nil {
		c.logRequest(f.Opcode, rid, req.Key, err)
		return
	}
	resp := protocol.GetResponse{
		Value:    view.Value,
		Counter:  view.Kind == crdt.KindCount,
		ExpiryMS: view.Expiry,
		Context:  c.s.kv.Token(req.Key, rec.Context),
		Domain:   a.Domain,
	}
	if req.Siblings {
		for _, e := range rec.Live(c.s.kv.Now().UnixMilli()) {
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

// read reads key as far as scope looks. A read beyond this node waits on
// the parent domain, for at most the idle timeout.
func (c *conn) read(key []byte, scope kv.Scope, rid reqid.ID) (kv.Answer, error) {
	if scope == kv.ScopeLocal {
		return c.batch.Read(context.Background(), key, scope, rid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.IdleTimeout)
	defer cancel()
	return c.batch.Read(ctx, key, scope, rid)
}

// queue adds a write to the current run; the run is applied as one batch
// before the next read or at the end of what was read. A write kv refuses
// is answered at once, after the writes queued before it, so that answers
// keep the requests' order.
func (c *conn) queue(f protocol.Frame, rid reqid.ID, w kv.Write) {
	w.ReqID = rid.String()
	if err := c.batch.Add(w); err != nil {
		c.flushWrites()
		c.failErr(f, rid, err)
		c.logRequest(f.Opcode, rid, w.Key, err)
		return
	}
	c.pending = append(c.pending, pendingWrite{op: f.Opcode, reqID: f.ReqID, rid: rid})
}

func (c *conn) flushWrites() {
	if len(c.pending) == 0 {
		return
	}
	res := c.batch.Apply(context.Background())
	for i, p := range c.pending {
		r := &res[i]
		key := c.batch.Key(i)
		f := protocol.Frame{Header: protocol.Header{Opcode: p.op, ReqID: p.reqID}}
		switch {
		case r.Err != nil:
			c.failErr(f, p.rid, r.Err)
		case p.op == protocol.OpIncr:
			c.reply(f, &protocol.IncrResponse{Value: r.Counter})
		default:
			c.reply(f, &protocol.WriteResponse{Context: c.s.kv.Token(key, r.Context)})
		}
		c.logRequest(p.op, p.rid, key, r.Err)
	}
	c.batch.Reset()
	c.pending = c.pending[:0]
}

func (c *conn) withContext(f protocol.Frame, rid reqid.ID, key, token []byte, w *kv.Write) bool {
	if len(token) == 0 {
		return true
	}
	cc, err := c.s.kv.ParseToken(context.Background(), key, token)
	if err != nil {
		c.failErr(f, rid, err)
		return false
	}
	w.Context = &cc
	return true
}

// decode decodes a request body without copying its bytes: everything a
// request refers to is used before the next read reuses the buffer (writes
// are applied and answers logged at the end of each batch, and kv keeps no
// reference to a write's key or value).
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
	if err == nil && len(out)-start-protocol.HeaderSize > int(c.s.maxBody) {
		// Several large siblings can outgrow what the client accepts.
		c.out = out[:start]
		c.appendError(f.ReqID, reqid.ID{}, protocol.CodeTooLarge, "the answer exceeds the frame size limit")
		return
	}
	if err != nil {
		c.log.WithError(err).WithField(logging.FieldOp, f.Opcode.String()).WithField(logging.FieldEvent, logging.EventInternalError).Error("encoding a reply failed")
		c.appendError(f.ReqID, reqid.ID{}, protocol.CodeInternal, "encoding the reply failed")
		return
	}
	c.out = out
}

// failErr answers with the code and message err maps to. Only an internal
// failure is logged as an error; the rest are the caller's business.
func (c *conn) failErr(f protocol.Frame, rid reqid.ID, err error) {
	code, msg := wireError(err)
	c.failWith(f, rid, err, code, msg)
}

// failWith answers err with code and msg, logging it when the server
// failed.
func (c *conn) failWith(f protocol.Frame, rid reqid.ID, err error, code protocol.Code, msg string) {
	if code == protocol.CodeInternal {
		c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: f.Opcode.String()}).WithField(logging.FieldEvent, logging.EventInternalError).Error("request failed")
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
	c.s.metrics.batch.Observe(d.Seconds())
	logger := c.s.logger
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
		code, _ := wireError(a.err)
		fields["result"] = code.String()
	}
	return c.log.WithFields(fields)
}

// newID makes a request ID stamped with the batch's arrival time.
func (c *conn) newID() reqid.ID { return c.s.kv.NewRequestID(c.batchStart) }
