package native

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/protocol"
)

// backupChunk is the most file bytes one BackupChunk carries, unless the
// frame size limit is lower; chunkOverhead is what the chunk's encoding
// adds to them.
const (
	backupChunk   = 256 << 10
	chunkOverhead = 64
)

// backup answers OpBackup for the admin role: the connection loop hands
// the socket to streamBackup, which writes the frames of the backup and
// closes it. The request is the connection's last (SPEC.md section 4).
func (c *conn) backup(f protocol.Frame) {
	rid := c.newID()
	if c.role != protocol.RoleAdmin {
		c.fail(f, rid, protocol.CodeUnauthorized, "a backup needs the admin role", true)
		return
	}
	reqID := f.ReqID
	c.takeover = func(nc net.Conn) { c.streamBackup(nc, reqID, rid) }
}

// streamBackup writes the node's backup on nc as the answer to request
// reqID, audits it and closes nc. It stops when the server shuts down or
// a write fails (the client went away, or read nothing for the idle
// timeout).
func (c *conn) streamBackup(nc net.Conn, reqID uint64, rid reqid.ID) {
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-c.s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()

	log := c.log.WithField(logging.FieldReqID, rid.String())
	start := time.Now()
	w := &chunkWriter{nc: nc, reqID: reqID, timeout: c.s.cfg.IdleTimeout, size: min(backupChunk, int(c.s.maxBody)-chunkOverhead)}
	var info protocol.BackupResponse
	begin := func(i protocol.BackupResponse) error {
		info = i
		return w.frame(&i)
	}
	err := c.s.admin.Backup(ctx, w, begin)
	if err == nil {
		err = w.end()
	}
	switch {
	case err == nil:
		c.s.logger.Audit(c.remote, "backup", "", info.Digest, logrus.Fields{logging.FieldReqID: rid.String(), "keys": info.Keys, "bytes": info.Size})
		log.WithFields(logrus.Fields{"digest": info.Digest, "keys": info.Keys, "bytes": info.Size, "took": time.Since(start).String()}).Info("backup sent")
	case w.failed != nil:
		// The client went away or stopped reading: nobody is left to
		// answer, and the node did not fail.
		log.WithError(err).WithField("bytes_sent", w.sent).Info("backup abandoned")
	case ctx.Err() != nil:
		log.WithField("bytes_sent", w.sent).Info("backup ended: shutting down")
		w.fail(protocol.CodeUnavailable, "the node is shutting down", rid)
	default:
		code, msg := adminError(err)
		if code == protocol.CodeInternal {
			log.WithError(err).WithFields(logrus.Fields{logging.FieldOp: protocol.OpBackup.String(), logging.FieldEvent: logging.EventInternalError}).Error("backup failed")
		}
		w.fail(code, msg, rid)
	}
}

// chunkWriter frames what is written to it as BackupChunks on nc, each
// write bounded by the idle timeout.
type chunkWriter struct {
	nc      net.Conn
	reqID   uint64
	timeout time.Duration
	size    int    // file bytes per chunk
	buf     []byte // file bytes not yet sent
	out     []byte // the frame being written
	sent    int64  // file bytes sent
	failed  error  // the first write to nc that failed
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), w.size-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == w.size {
			if err := w.chunk(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// end sends what is left, in the last chunk.
func (w *chunkWriter) end() error { return w.chunk(true) }

func (w *chunkWriter) chunk(last bool) error {
	if err := w.frame(&protocol.BackupChunk{Data: w.buf, End: last}); err != nil {
		return err
	}
	w.sent += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// fail ends the backup with an error frame, if the connection still takes
// one.
func (w *chunkWriter) fail(code protocol.Code, msg string, rid reqid.ID) {
	e := protocol.Error{Code: code, Message: msg, ReqID: rid.String()}
	out, err := protocol.AppendFrame(w.out[:0], protocol.Header{Opcode: protocol.OpError, Flags: protocol.FlagResponse, ReqID: w.reqID}, &e)
	if err == nil && w.nc.SetWriteDeadline(time.Now().Add(w.timeout)) == nil {
		_, _ = w.nc.Write(out)
	}
}

// frame writes one backup response frame holding msg.
func (w *chunkWriter) frame(msg any) error {
	if w.failed != nil {
		return w.failed
	}
	var err error
	w.out, err = protocol.AppendFrame(w.out[:0], protocol.Header{Opcode: protocol.OpBackup, Flags: protocol.FlagResponse, ReqID: w.reqID}, msg)
	if err != nil {
		return err
	}
	if err = w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err == nil {
		_, err = w.nc.Write(w.out)
	}
	if err != nil {
		w.failed = fmt.Errorf("native: sending the backup: %w", err)
	}
	return w.failed
}
