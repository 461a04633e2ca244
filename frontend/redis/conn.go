package node

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/resp"
	"github.com/upu/upu/store"
)

// respConn serves one Redis-protocol connection. A single goroutine reads,
// handles and answers: every command a read completed is handled, runs of
// writes go to the store as one batch, and the answers leave in one write.
// Replies keep the commands' order: a command that is not a queued write
// first applies the writes queued before it.
type respConn struct {
	s   *respServer
	nc  net.Conn
	log *logrus.Entry
	rd  *resp.Reader
	wr  resp.Writer

	id      int64
	created time.Time
	authed  bool
	closed  bool // QUIT or a protocol error: close once the answers are out
	name    string
	libName string
	libVer  string

	// batchStart is when the current batch was read: request IDs take their
	// time from it, and slow-operation logging measures from it.
	batchStart time.Time

	// The run of writes waiting to be applied as one batch, and the replies
	// waiting for them (a reply covers one or more writes, or none when it
	// is an error found before queueing).
	writes  []store.Write
	pending []respPending
	results []store.Result

	answered []respAnswered
	lower    [maxCommandName]byte // the command name, lower-cased
}

// respReply says how a pending reply is made from its writes' results.
type respReply uint8

const (
	replyError    respReply = iota // msg, no writes
	replyOK                        // +OK
	replyOKOrNull                  // +OK, or a null when the condition failed (SET NX/XX)
	replyOld                       // the value before the write, or a null (SET GET, GETDEL, GETEX)
	replyCount                     // how many writes were not skipped (DEL, EXPIRE, SETNX)
	replyCounter                   // the first result's Counter (INCR, APPEND)
)

type respPending struct {
	reply respReply
	n     int // writes covered
	name  string
	rid   reqid.ID
	msg   string // replyError
}

// respAnswered is a command answered in the current batch, kept until the
// batch is written so its log line can carry the batch's duration.
type respAnswered struct {
	name string
	rid  reqid.ID
	key  []byte
	err  error
}

func newRespConn(s *respServer, nc net.Conn, id int64) *respConn {
	return &respConn{
		s:       s,
		nc:      nc,
		id:      id,
		created: time.Now(),
		log:     s.log.WithField(logging.FieldRemote, nc.RemoteAddr().String()),
		rd:      resp.NewReader(s.readCfg),
		authed:  s.n.cfg.ClientToken == "",
	}
}

// refuse answers a connection the server will not serve, and closes it.
func (c *respConn) refuse() {
	c.log.WithField("max_conns", c.s.n.cfg.MaxConns).Warn("Redis-protocol connection refused: too many connections")
	c.wr.AppendError("ERR max number of clients reached")
	c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.wr.Flush(c.nc)
	c.nc.Close()
}

// wake interrupts a blocked read so the connection notices shutdown.
func (c *respConn) wake() { c.nc.SetReadDeadline(time.Now()) }

// forceClose cuts the connection off when shutdown runs out of time.
func (c *respConn) forceClose() { c.nc.Close() }

func (c *respConn) run() {
	defer c.s.untrack(c)
	defer c.nc.Close()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(sockBufSize)
		tc.SetWriteBuffer(sockBufSize)
	}
	c.log.WithField("client_id", c.id).Debug("Redis-protocol connection opened")
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.s.n.cfg.IdleTimeout))
		if c.s.closing.Load() {
			c.log.Debug("connection closed: node shutting down")
			return
		}
		n, err := c.rd.ReadOnce(c.nc)
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
func (c *respConn) readFailed(err error) {
	switch {
	case c.s.closing.Load():
		c.log.Debug("connection closed: node shutting down")
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("connection closed: idle timeout")
	default:
		c.log.WithError(err).Debug("connection read failed")
	}
}

// process handles every complete command buffered and writes the answers.
// It returns false when the connection must close.
func (c *respConn) process() bool {
	c.batchStart = time.Now()
	handled := 0
	for !c.closed {
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
	return c.flushOut() && !c.closed
}

func (c *respConn) flushOut() bool {
	if c.wr.Len() == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.n.cfg.IdleTimeout))
	if err := c.wr.Flush(c.nc); err != nil {
		c.log.WithError(err).Debug("connection write failed")
		return false
	}
	return true
}

func (c *respConn) handle(args [][]byte) {
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
	if !cmd.queues {
		c.flushWrites() // a read sees every write sent before it
	}
	cmd.run(c, args)
}

// fail answers with an error, after the replies still pending.
func (c *respConn) fail(msg string) {
	c.s.n.metrics.respErrors.Inc()
	if len(c.pending) == 0 {
		c.wr.AppendError(msg)
		return
	}
	c.pending = append(c.pending, respPending{reply: replyError, msg: msg})
}

// queue adds a command's writes to the current run, with the reply they
// make; the run is applied as one batch before the next command that is not
// a queued write, or at the end of what was read.
func (c *respConn) queue(name string, rid reqid.ID, reply respReply, ws ...store.Write) {
	c.writes = append(c.writes, ws...)
	c.pending = append(c.pending, respPending{reply: reply, n: len(ws), name: name, rid: rid})
}

// write queues one write made by a command.
func (c *respConn) write(name string, reply respReply, w store.Write) {
	rid := c.newID()
	w.ReqID = rid.String()
	c.queue(name, rid, reply, w)
}

func (c *respConn) flushWrites() {
	if len(c.pending) == 0 {
		return
	}
	if len(c.writes) > 0 {
		if cap(c.results) < len(c.writes) {
			c.results = make([]store.Result, len(c.writes))
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.s.n.cfg.IdleTimeout)
		c.s.n.store.ApplyBatch(ctx, c.writes, c.results[:len(c.writes)])
		cancel()
	}
	i := 0
	for _, p := range c.pending {
		if p.reply == replyError {
			c.wr.AppendError(p.msg)
			continue
		}
		res := c.results[i : i+p.n]
		var err error
		for j := range res {
			if res[j].Err != nil {
				err = res[j].Err
				break
			}
		}
		switch {
		case err != nil:
			c.s.n.metrics.respErrors.Inc()
			c.wr.AppendError(c.errorText(err, p.name, p.rid))
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
			c.answered = append(c.answered, respAnswered{name: p.name, rid: p.rid, key: c.writes[i].Key, err: err})
		}
		i += p.n
	}
	// Drop references to the reader's buffer and the records.
	clear(c.writes)
	clear(c.results[:len(c.writes)])
	clear(c.pending)
	c.writes, c.pending = c.writes[:0], c.pending[:0]
}

// read returns what a read of key shows; a key that cannot exist (empty or
// over the limit) shows nothing.
func (c *respConn) read(name string, key []byte) (crdt.View, error) {
	if len(key) == 0 || len(key) > c.s.n.cfg.MaxKeySize {
		return crdt.View{}, nil
	}
	v, _, err := c.s.n.store.Read(key)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	c.answered = append(c.answered, respAnswered{name: name, key: key, err: err})
	return v, err
}

// readFail answers a failed read.
func (c *respConn) readFail(name string, err error) {
	c.fail(c.errorText(err, name, reqid.ID{}))
}

// errorText turns a store error into the error reply a Redis client
// expects. Only an internal failure is logged as an error; the rest are the
// caller's business.
func (c *respConn) errorText(err error, name string, rid reqid.ID) string {
	switch {
	case errors.Is(err, crdt.ErrWrongType):
		return "ERR value is not an integer or out of range"
	case errors.Is(err, crdt.ErrOverflow):
		return "ERR increment or decrement would overflow"
	case errors.Is(err, store.ErrTooLarge):
		return "ERR string exceeds maximum allowed size (" + err.Error() + ")"
	case errors.Is(err, store.ErrBadRequest):
		return "ERR " + err.Error()
	case errors.Is(err, store.ErrClosed):
		return "ERR the node is shutting down"
	case errors.Is(err, context.DeadlineExceeded):
		return "ERR timeout: the store did not answer in time"
	}
	if rid.IsZero() {
		rid = c.newID()
	}
	c.log.WithError(err).WithFields(logrus.Fields{logging.FieldReqID: rid.String(), logging.FieldOp: name}).Error("Redis-protocol request failed")
	return "ERR internal error, req_id " + rid.String()
}

// logAnswered writes each answered command's DEBUG line when debugging. A
// slow batch otherwise gets one WARN line, naming its first command and how
// many were answered with it, so that a stall does not flood the log.
func (c *respConn) logAnswered() {
	if len(c.answered) == 0 {
		return
	}
	logger := c.s.n.logger
	d := time.Since(c.batchStart)
	entry := func(a *respAnswered) *logrus.Entry {
		if a.rid.IsZero() {
			a.rid = c.newID()
		}
		fields := logrus.Fields{logging.FieldReqID: a.rid.String(), logging.FieldKey: logging.Key(a.key)}
		if a.err != nil {
			fields["result"] = errorCode(a.err).String()
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
func (c *respConn) newID() reqid.ID { return c.s.n.ids.NextAt(c.batchStart) }

// nowMS is the node's clock in Unix ms: expiries are measured against it,
// as the store's are.
func (c *respConn) nowMS() int64 { return c.s.n.clk.Now().UnixMilli() }
