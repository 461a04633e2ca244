package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// streamMode is a stream's first byte: what the stream carries.
type streamMode uint8

const (
	streamCall     streamMode = 0 // one request, then its response
	streamMessages streamMode = 1 // requests, one after another, never answered
)

// The two frames of a stream (doc.go gives the layout).
const (
	requestHeaderSize  = 1 + 4 + 4 // kind, timeout_ms, len
	responseHeaderSize = 1 + 4     // status, len
)

// status is a response's outcome.
type status uint8

const (
	statusOK          status = 0
	statusUnknownKind status = 1
	statusFailed      status = 2 // body: the handler's error message
	statusTooLarge    status = 3
)

// maxTimeoutMS is the longest deadline a request can carry, about 49 days;
// a longer one is sent as this.
const maxTimeoutMS = 1<<32 - 1

// appendRequest appends a request frame. A timeout under a millisecond is
// sent as one: zero would mean none.
func appendRequest(dst []byte, kind Kind, timeout time.Duration, body []byte) []byte {
	var ms uint32
	if timeout > 0 {
		ms = uint32(min(max(timeout.Milliseconds(), 1), maxTimeoutMS))
	}
	dst = append(dst, byte(kind))
	dst = binary.BigEndian.AppendUint32(dst, ms)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// appendResponse appends a response frame.
func appendResponse(dst []byte, st status, body []byte) []byte {
	dst = append(dst, byte(st))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// request is a decoded request frame.
type request struct {
	kind    Kind
	timeout time.Duration // zero: none
	size    uint32        // the body's length, read or not
	body    []byte
}

// errBodyTooLarge is a frame whose length field exceeds the reader's bound;
// the header was read, the body was not.
var errBodyTooLarge = fmt.Errorf("%w: body over the size limit", ErrTooLarge)

// readRequest reads one request frame from r, with a body of at most
// maxBody bytes, into h's header. The body is freshly allocated: the
// handler may keep it.
func readRequest(r io.Reader, h *[requestHeaderSize]byte, maxBody int) (request, error) {
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return request{}, truncated(err)
	}
	req := request{
		kind:    Kind(h[0]),
		timeout: time.Duration(binary.BigEndian.Uint32(h[1:5])) * time.Millisecond,
		size:    binary.BigEndian.Uint32(h[5:9]),
	}
	body, err := readBody(r, req.size, maxBody)
	req.body = body
	return req, err
}

// readResponse reads one response frame from r, with a body of at most
// maxBody bytes.
func readResponse(r io.Reader, maxBody int) (status, []byte, error) {
	var h [responseHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, truncated(err)
	}
	st := status(h[0])
	if st > statusTooLarge {
		return 0, nil, fmt.Errorf("%w: response status %d", ErrBadFrame, st)
	}
	body, err := readBody(r, binary.BigEndian.Uint32(h[1:5]), maxBody)
	return st, body, err
}

// readBody reads a body of n bytes, refusing one over maxBody before
// reading any of it, so that a length field alone cannot make the reader
// allocate.
func readBody(r io.Reader, n uint32, maxBody int) ([]byte, error) {
	if uint64(n) > uint64(maxBody) {
		return nil, errBodyTooLarge
	}
	if n == 0 {
		return nil, nil
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, truncated(err)
	}
	return body, nil
}

// truncated turns a stream that ended inside a frame into ErrBadFrame;
// other read errors (a deadline, a closed link) pass as they are.
func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside a frame", ErrBadFrame)
	}
	return err
}
