package protocol

import (
	"io"
)

// Frame is one decoded frame. Body aliases the decoder's buffer: it stays
// valid until the next call to Write or ReadOnce.
type Frame struct {
	Header
	Body []byte
}

// Decoder splits a byte stream into frames. It keeps whatever a read returned
// and yields every complete frame it holds, so a server can take a whole
// pipeline of requests from one read and answer them in one write. A Decoder
// is not safe for concurrent use.
type Decoder struct {
	maxBody uint32
	buf     []byte // buf[off:] holds bytes not yet returned as frames
	off     int
	err     error // sticky: once framing is lost it cannot be regained
}

// ReadOnce reads into the free space after the buffered bytes. When that is
// under minFree (and no pending frame needs less), it first moves the
// buffered bytes to the front, and grows the buffer to at least minRead bytes
// of free space if that is still too little. Big reads mean few syscalls per
// pipelined request; compacting only when the tail runs short means that a
// read ending inside a frame costs no copy and no allocation.
const (
	minRead = 64 << 10
	minFree = 4 << 10
)

// NewDecoder returns a decoder that rejects bodies over maxBody bytes
// (0 means DefaultMaxBody).
func NewDecoder(maxBody uint32) *Decoder {
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	return &Decoder{maxBody: maxBody}
}

// Write appends p to the decoder's input. It never fails. After a framing
// error the input is dropped: nothing after it can be framed.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.err != nil {
		return len(p), nil
	}
	// append, unlike compact, grows the buffer geometrically: a frame that
	// arrives in many small writes is copied a few times, not once per write.
	d.compact(0)
	d.buf = append(d.buf, p...)
	return len(p), nil
}

// ReadOnce performs one Read from r straight into the decoder's buffer and
// returns what that read returned. It reads once, not to EOF, so
// that the caller can handle the frames that read completed. After a framing
// error it does not read and returns that error.
func (d *Decoder) ReadOnce(r io.Reader) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	want, grow := minFree, minFree
	if need := d.pendingFrameSize() - d.Buffered(); need > 0 {
		// Room for a big body is made as its bytes arrive, up to five
		// times what is buffered each time the buffer fills: a header
		// alone must not cost the memory it claims, or a few bytes from
		// each of thousands of connections would hold a megabyte each.
		want, grow = min(need, minFree), min(need, max(minRead, 4*d.Buffered()))
	}
	if cap(d.buf)-len(d.buf) < want {
		d.compact(grow)
	}
	n, err := r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	return n, err
}

// Buffered returns the number of bytes held that are not yet part of a
// returned frame.
func (d *Decoder) Buffered() int { return len(d.buf) - d.off }

// Unread returns the bytes held past the last frame returned: what a
// connection that stops speaking frames (a peer link) already read of what
// comes next. It aliases the buffer: it stays valid until the next call to
// Write or ReadOnce.
func (d *Decoder) Unread() []byte { return d.buf[d.off:] }

// Next returns the next complete frame. ok is false when more input is
// needed. A framing error is returned with the header decoded so far (so an
// error reply can carry its request ID) and repeats on every later call.
func (d *Decoder) Next() (f Frame, ok bool, err error) {
	if d.err != nil {
		return Frame{}, false, d.err
	}
	avail := d.buf[d.off:]
	if len(avail) < HeaderSize {
		return Frame{}, false, nil
	}
	h, err := ParseHeader(avail, d.maxBody)
	if err != nil {
		d.err = err
		return Frame{Header: h}, false, err
	}
	end := HeaderSize + int(h.Len)
	if len(avail) < end {
		return Frame{}, false, nil
	}
	d.off += end
	return Frame{Header: h, Body: avail[HeaderSize:end:end]}, true, nil
}

// pendingFrameSize is the total size of the frame that starts at off, when its
// header is complete and valid, else 0.
func (d *Decoder) pendingFrameSize() int {
	avail := d.buf[d.off:]
	if len(avail) < HeaderSize {
		return 0
	}
	h, err := ParseHeader(avail, d.maxBody)
	if err != nil {
		return 0
	}
	return HeaderSize + int(h.Len)
}

// compact makes room for n more bytes, moving unconsumed bytes to the front
// and, if that is not enough, growing the buffer by at least minRead.
// Frames returned before are invalidated.
func (d *Decoder) compact(n int) {
	rest := len(d.buf) - d.off
	if d.off > 0 {
		copy(d.buf, d.buf[d.off:])
		d.buf = d.buf[:rest]
		d.off = 0
	}
	if cap(d.buf)-rest < n {
		nb := make([]byte, rest, rest+max(n, minRead))
		copy(nb, d.buf)
		d.buf = nb
	}
}
