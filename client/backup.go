package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/upu/upu/protocol"
)

// errBackupBroken marks a backup that failed after some of it was written:
// it is not repeated on another node.
var errBackupBroken = errors.New("upu: backup broken off")

// Backup streams a backup of a node's store into w (a file for `upu
// restore`) and returns its description: the digest and key count of the
// snapshot it holds. progress, if set, is called after each chunk with the
// bytes written so far and the backup's size. It needs the admin role, and
// a connection of its own, open for the backup alone; it waits on ctx
// only, not the RequestTimeout, since the node reads its whole store
// before the first byte comes. Nodes are tried from the preferred one on
// until one starts sending; a backup broken off midway is not repeated,
// as w holds part of it.
func (c *Client) Backup(ctx context.Context, w io.Writer, progress func(done, total int64)) (protocol.BackupResponse, error) {
	if c.closed.Load() {
		return protocol.BackupResponse{}, ErrClosed
	}
	n := len(c.nodes)
	start := int(c.preferred.Load())
	var lastErr error
	for attempt := range n {
		info, err := c.backupFrom(ctx, c.nodes[(start+attempt)%n].addr, w, progress)
		var se *ServerError
		switch {
		case err == nil:
			return info, nil
		case ctx.Err() != nil:
			return protocol.BackupResponse{}, c.expired(ctx, protocol.OpBackup)
		case errors.As(err, &se), errors.Is(err, errBackupBroken):
			return protocol.BackupResponse{}, err
		}
		lastErr = err
	}
	return protocol.BackupResponse{}, &unavailableError{cause: lastErr}
}

// backupFrom asks the node at addr for its backup on a new connection.
func (c *Client) backupFrom(ctx context.Context, addr string, w io.Writer, progress func(done, total int64)) (protocol.BackupResponse, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return protocol.BackupResponse{}, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hello, err := handshake(nc, &c.cfg)
	if err != nil {
		return protocol.BackupResponse{}, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	const reqID = 1
	req, err := protocol.AppendFrame(nil, protocol.Header{Opcode: protocol.OpBackup, ReqID: reqID}, nil)
	if err != nil {
		return protocol.BackupResponse{}, err
	}
	if _, err := nc.Write(req); err != nil {
		return protocol.BackupResponse{}, err
	}
	maxBody := hello.MaxBody
	if maxBody == 0 {
		maxBody = protocol.DefaultMaxBody
	}
	r := backupReader{nc: nc, dec: protocol.NewDecoder(maxBody), addr: addr}
	var info protocol.BackupResponse
	if err := r.next(&info); err != nil {
		return protocol.BackupResponse{}, err
	}
	var done int64
	for {
		var chunk protocol.BackupChunk
		if err := r.next(&chunk); err != nil {
			return protocol.BackupResponse{}, broken(done, err)
		}
		if len(chunk.Data) > 0 {
			if _, err := w.Write(chunk.Data); err != nil {
				return protocol.BackupResponse{}, fmt.Errorf("%w after %d bytes: writing it: %w", errBackupBroken, done, err)
			}
			done += int64(len(chunk.Data))
			if progress != nil {
				progress(done, info.Size)
			}
		}
		if chunk.End {
			break
		}
	}
	if done != info.Size {
		return protocol.BackupResponse{}, fmt.Errorf("%w: %s sent %d bytes of a backup it said has %d", ErrProtocol, addr, done, info.Size)
	}
	return info, nil
}

// broken wraps err, from a backup of which done bytes were written, so
// that it is not repeated once w holds some.
func broken(done int64, err error) error {
	if done == 0 {
		return err
	}
	return fmt.Errorf("%w after %d bytes: %w", errBackupBroken, done, err)
}

// backupReader reads the frames answering a backup request.
type backupReader struct {
	nc   net.Conn
	dec  *protocol.Decoder
	addr string
}

// next decodes the next backup frame into msg; an error frame is a
// *ServerError. msg's bytes are valid until the following call.
func (r *backupReader) next(msg any) error {
	for {
		f, ok, err := r.dec.Next()
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrProtocol, r.addr, err)
		}
		if !ok {
			if _, err := r.dec.ReadOnce(r.nc); err != nil {
				return &connFailure{addr: r.addr, err: err, sent: true}
			}
			continue
		}
		switch {
		case !f.IsResponse() || f.ReqID != 1:
			return fmt.Errorf("%w: %s sent %s with request ID %d during a backup", ErrProtocol, r.addr, f.Opcode, f.ReqID)
		case f.Opcode == protocol.OpError:
			var e protocol.Error
			if err := protocol.DecodeBody(f.Body, &e); err != nil {
				return fmt.Errorf("%w: backup error reply: %w", ErrProtocol, err)
			}
			return &ServerError{Code: e.Code, Message: e.Message, ReqID: e.ReqID, Node: r.addr, Op: protocol.OpBackup}
		case f.Opcode != protocol.OpBackup:
			return fmt.Errorf("%w: %s reply to a backup request", ErrProtocol, f.Opcode)
		}
		if err := protocol.DecodeBodyNoCopy(f.Body, msg); err != nil {
			return fmt.Errorf("%w: backup reply: %w", ErrProtocol, err)
		}
		return nil
	}
}
