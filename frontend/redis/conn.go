package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/connloop"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/resp"
)

// conn is one Redis-protocol connection, served by the connection loop
// from one goroutine: every command a read completed is handled, runs of
// writes go to kv as one batch, and the answers leave in one write.
// Replies keep the commands' order: a command that is not a queued write
// first applies the writes queued before it.
type conn struct {
	s   *Server
	nc  net.Conn
	log *logrus.Entry
	rd  *resp.Reader
	wr  resp.Writer

	id      int64
	created time.Time
	started bool // something has been read
	authed  bool
	closed  bool // QUIT or a protocol error: close once the answers are out
	name    string
	libName string
	libVer  string
	// scope is how far the connection's reads look (CLIENT SCOPE).
	scope kv.Scope
	// readID is the request ID of the command's read beyond this node,
	// which its error quotes; zero for a local read.
	readID reqid.ID

	// batchStart is when the current batch was read: request IDs take their
	// time from it, and slow-operation logging measures from it.
	batchStart time.Time

	// The run of writes waiting to be applied as one batch, and the replies
	// waiting for them (a reply covers one or more writes, or none when it
	// is an error found before queueing).
	batch   *kv.Batch
	pending []pendingReply

	answered []answer
	lower    [maxCommandName]byte // the command name, lower-cased
}

// replyKind says how a pending reply is made from its writes' results.
type replyKind uint8

const (
	replyError    replyKind = iota // msg, no writes
	replyOK                        // +OK
	replyOKOrNull                  // +OK, or a null when the condition failed (SET NX/XX)
	replyOld                       // the value before the write, or a null (SET GET, GETDEL, GETEX)
	replyCount                     // how many writes were not skipped (DEL, EXPIRE, SETNX)
	replyCounter                   // the first result's Counter (INCR, APPEND)
)

type pendingReply struct {
	reply replyKind
	n     int // writes covered
	name  string
	rid   reqid.ID
	msg   string // replyError
}

// answered is a command answered in the current batch, kept until the
// batch is written so its log line can carry the batch's duration.
type answer struct {
	name string
	rid  reqid.ID
	key  []byte
	err  error
}

func newConn(s *Server, log *logrus.Entry, nc net.Conn, id int64) *conn {
	return &conn{
		s:       s,
		nc:      nc,
		id:      id,
		created: time.Now(),
		log:     log.WithField(logging.FieldRemote, nc.RemoteAddr().String()),
		rd:      resp.NewReader(s.readCfg),
		batch:   s.kv.NewBatch(kv.ProtocolRESP),
		authed:  s.cfg.ClientToken == "",
	}
}

func (c *conn) Log() *logrus.Entry { return c.log }
func (c *conn) ReadOnce(r io.Reader) (int, error) {
	n, err := c.rd.ReadOnce(r)
	if !c.started && n > 0 {
		c.started = true
		if c.rd.Peek()[0] == protocol.Magic {
			// A UPU client pointed at this port: tell it so at once, rather
			// than wait for a line that its binary hello never ends.
			c.wr.AppendError("ERR this port speaks the Redis protocol (RESP), not the UPU protocol: use the node's --addr")
			c.closed = true
			c.log.Info("a UPU protocol client on the Redis port: closing connection")
		}
	}
	return n, err
}

func (c *conn) ReadDeadline(now time.Time) time.Time { return now.Add(c.s.cfg.IdleTimeout) }
func (c *conn) Flush(w io.Writer) error              { return c.wr.Flush(w) }
func (c *conn) Queued() int                          { return c.wr.Len() }

// Refuse answers a connection the server will not serve, in redis' words
// for its own limit.
func (c *conn) Refuse(why connloop.Refusal) {
	if why == connloop.RefusePerClient {
		c.wr.AppendError("ERR max connections per client reached")
		return
	}
	c.wr.AppendError("ERR max number of clients reached")
}

// HandOff is never asked for: a Redis connection is never handed over.
func (c *conn) HandOff(nc net.Conn) { nc.Close() }

// Process handles the complete commands buffered, as many as b allows,
// and queues the answers.
func (c *conn) Process(b connloop.Budget) connloop.Outcome {
	if c.closed {
		return connloop.Close
	}
	c.batchStart = time.Now()
	handled := 0
	more := false
	for !c.closed {
		if b.Full(handled, c.wr.Len()) {
			more = c.rd.Buffered() > 0
			break
		}
		args, ok, err := c.rd.Next()
		if err != nil {
			// The stream cannot be resynchronised: answer and close, as
			// redis does.
			c.flushWrites()
			c.wr.AppendError(err.Error())
			c.log.WithError(err).WithField(logging.FieldReqID, c.newID().String()).Info("Redis protocol error: closing connection")
			c.closed = true
			break
		}
		if !ok {
			break
		}
		handled++
		c.handle(args)
	}
	c.flushWrites()
	c.logAnswered()
	c.s.processed.Add(int64(handled))
	switch {
	case c.closed:
		return connloop.Close
	case more:
		return connloop.More
	}
	return connloop.Continue
}

func (c *conn) handle(args [][]byte) {
	cmd := c.s.cmds.lookup(args[0], &c.lower)
	if cmd == nil {
		c.s.cmds.unknown.Inc()
		c.fail(unknownCommand(args))
		return
	}
	cmd.calls.Inc()
	// redis' order: unknown command, then arity, then authentication.
	if cmd.arity > 0 && len(args) != cmd.arity || cmd.arity < 0 && len(args) < -cmd.arity {
		c.fail(wrongArity(cmd.name))
		return
	}
	if !c.authed && !cmd.noAuth {
		c.fail("NOAUTH Authentication required.")
		return
	}
	c.readID = reqid.ID{}
	if !cmd.queues {
		c.flushWrites() // a read sees every write sent before it
	}
	cmd.run(c, args)
}

// fail answers with an error, after the replies still pending.
func (c *conn) fail(msg string) {
	c.s.metrics.errors.Inc()
	if len(c.pending) == 0 {
		c.wr.AppendError(msg)
		return
	}
	c.pending = append(c.pending, pendingReply{reply: replyError, msg: msg})
}

// write queues one write made by a command, with the reply it makes; the
// run is applied as one batch before the next command that is not a queued
// write, or at the end of what was read. A write kv refuses is answered
// with its error at once.
func (c *conn) write(name string, reply replyKind, w kv.Write) {
	rid := c.newID()
	w.ReqID = rid.String()
	if err := c.batch.Add(w); err != nil {
		c.fail(c.errorText(err, w.Key, name, rid))
		return
	}
	c.pending = append(c.pending, pendingReply{reply: reply, n: 1, name: name, rid: rid})
}

func (c *conn) flushWrites() {
	if len(c.pending) == 0 {
		return
	}
	results := c.batch.Apply(context.Background())
	i := 0
	for _, p := range c.pending {
		if p.reply == replyError {
			c.wr.AppendError(p.msg)
			continue
		}
		res := results[i : i+p.n]
		var err error
		for j := range res {
			if res[j].Err != nil {
				err = res[j].Err
				break
			}
		}
		switch {
		case err != nil:
			c.s.metrics.errors.Inc()
			c.wr.AppendError(c.errorText(err, c.batch.Key(i), p.name, p.rid))
		case p.reply == replyOK:
			c.wr.AppendOK()
		case p.reply == replyOKOrNull && res[0].Skipped:
			c.wr.AppendNull()
		case p.reply == replyOKOrNull:
			c.wr.AppendOK()
		case p.reply == replyOld && res[0].OldFound:
			c.wr.AppendBulk(res[0].Old)
		case p.reply == replyOld:
			c.wr.AppendNull()
		case p.reply == replyCount:
			n := 0
			for j := range res {
				if !res[j].Skipped {
					n++
				}
			}
			c.wr.AppendInt(int64(n))
		case p.reply == replyCounter:
			c.wr.AppendInt(res[0].Counter)
		}
		if p.n > 0 {
			c.answered = append(c.answered, answer{name: p.name, rid: p.rid, key: c.batch.Key(i), err: err})
		}
		i += p.n
	}
	// Drop references to the reader's buffer and the records.
	c.batch.Reset()
	clear(c.pending)
	c.pending = c.pending[:0]
}

// read returns what a read of key shows, as far as the connection's scope
// looks; a key that cannot exist (empty or over the limit) shows nothing.
// A read beyond this node carries a request ID up the tree and waits on
// the parent domain for at most the idle timeout.
func (c *conn) read(name string, key []byte) (crdt.View, error) {
	ctx := context.Background()
	if c.scope != kv.ScopeLocal {
		c.readID = c.newID()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.s.cfg.IdleTimeout)
		defer cancel()
	}
	a, err := c.batch.Read(ctx, key, c.scope, c.readID)
	v := a.View
	switch {
	case err == nil:
	case err == kv.ErrNotFound:
		err = nil
	case errors.Is(err, kv.ErrEmptyKey), errors.Is(err, kv.ErrKeyTooLarge):
		return crdt.View{}, nil
	}
	c.answered = append(c.answered, answer{name: name, rid: c.readID, key: key, err: err})
	return v, err
}

// readFail answers a failed read.
func (c *conn) readFail(name string, err error) {
	c.fail(c.errorText(err, nil, name, c.readID))
}

// errorText turns an error of the data service into the error reply a
// Redis client expects; key is the key of a refused write. Only an
// internal failure is logged as an error; the rest are the caller's
// business.
func (c *conn) errorText(err error, key []byte, name string, rid reqid.ID) string {
	switch kv.KindOf(err) {
	case kv.KindWrongType:
		return errNotInt
	case kv.KindBadRequest:
		switch {
		case errors.Is(err, kv.ErrEmptyKey):
			return errEmptyKey
		case errors.Is(err, kv.ErrOverflow):
			return "ERR increment or decrement would overflow"
		}
		return "ERR " + err.Error()
	case kv.KindTooLarge:
		switch {
		case errors.Is(err, kv.ErrKeyTooLarge):
			return "ERR key is too large (" + strconv.Itoa(len(key)) + " bytes, max-key-size " + strconv.Itoa(c.s.kv.MaxKeySize()) + ")"
		case errors.Is(err, kv.ErrValueTooLarge):
			return "ERR string exceeds maximum allowed size (max-value-size " + strconv.Itoa(c.s.kv.MaxValueSize()) + ")"
		}
		return "ERR string exceeds maximum allowed size (" + err.Error() + ")"
	case kv.KindUnavailable:
		if errors.Is(err, cascade.ErrParentUnreachable) {
			return "ERR " + strings.ReplaceAll(err.Error(), "upu: ", "")
		}
		return "ERR the node is shutting down"
	case kv.KindScopeUnavailable:
		return "ERR this node reads nothing beyond itself: it has no parent domain to ask (CLIENT SCOPE local)"
	case kv.KindTimeout:
		if !c.readID.IsZero() {
			return "ERR timeout: the parent domain did not answer in time"
		}
		return "ERR timeout: the store did not answer in time"
	}
	if rid.IsZero() {
		rid = c.newID()
	}
	c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: name}).WithField(logging.FieldEvent, logging.EventInternalError).Error("Redis-protocol request failed")
	return "ERR internal error, req_id " + rid.String()
}

// logAnswered writes each answered command's DEBUG line when debugging. A
// slow batch otherwise gets one WARN line, naming its first command and how
// many were answered with it, so that a stall does not flood the log.
func (c *conn) logAnswered() {
	if len(c.answered) == 0 {
		return
	}
	logger := c.s.logger
	d := time.Since(c.batchStart)
	entry := func(a *answer) *logrus.Entry {
		if a.rid.IsZero() {
			a.rid = c.newID()
		}
		fields := logrus.Fields{logging.FieldReqID: a.rid.String(), logging.FieldKey: logging.Key(a.key)}
		if a.err != nil {
			fields["result"] = kv.KindOf(a.err).String()
		}
		return c.log.WithFields(fields)
	}
	switch {
	case c.log.Logger.IsLevelEnabled(logrus.DebugLevel):
		for i := range c.answered {
			logger.Slow(entry(&c.answered[i]), c.answered[i].name, d)
		}
	case logger.SlowEnabled(d):
		a := &c.answered[0]
		logger.Slow(entry(a).WithField("batch_requests", len(c.answered)), a.name, d)
	}
	clear(c.answered)
	c.answered = c.answered[:0]
}

// newID makes a request ID stamped with the batch's arrival time.
func (c *conn) newID() reqid.ID { return c.s.kv.NewRequestID(c.batchStart) }

// nowMS is the service's clock in Unix ms: expiries are measured against
// it, as the store's are.
func (c *conn) nowMS() int64 { return c.s.kv.Now().UnixMilli() }
