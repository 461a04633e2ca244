package client

import (
	"time"

	"github.com/upu/upu/protocol"
)

// maxKeptBuf bounds the buffers a pooled call keeps: one big value must not
// pin its memory in the pool.
const maxKeptBuf = 64 << 10

// call is one request in flight and the reply it gets. Calls are pooled: the
// request and reply messages live in the call so that encoding and decoding
// them allocates nothing of their own.
//
// Ownership: the caller owns a call until it is in a connection's pending
// map; whoever removes it from there (the reader on a reply, the connection
// on failure, the caller on timeout) completes it, and the first two signal
// done exactly once.
type call struct {
	id   uint64
	gen  uint64        // generation of the write batch that holds the request
	done chan struct{} // capacity 1: completing never blocks
	wbuf []byte        // the encoded request

	// Set before done is signalled.
	op   protocol.Opcode // reply opcode: the request's, or OpError
	body []byte          // reply body, copied out of the reader's buffer
	err  error           // the connection broke
	sent bool            // with err: whether the request reached the socket

	timer *time.Timer // RequestTimeout, armed per call

	get      protocol.GetRequest
	set      protocol.SetRequest
	del      protocol.DelRequest
	incr     protocol.IncrRequest
	level    protocol.LogLevelRequest
	getResp  protocol.GetResponse
	write    protocol.WriteResponse
	incrResp protocol.IncrResponse
}

func newCall() *call { return &call{done: make(chan struct{}, 1)} }

// startTimer arms the call's timer for d; the caller stops it.
func (cl *call) startTimer(d time.Duration) {
	if cl.timer == nil {
		cl.timer = time.NewTimer(d)
		return
	}
	cl.timer.Reset(d)
}

// reset drops every reference to caller and reply memory before the call
// goes back to the pool.
func (cl *call) reset() {
	if cl.timer != nil {
		cl.timer.Stop()
	}
	cl.op, cl.err, cl.sent = 0, nil, false
	if cap(cl.body) > maxKeptBuf {
		cl.body = nil
	}
	if cap(cl.wbuf) > maxKeptBuf {
		cl.wbuf = nil
	}
	cl.body, cl.wbuf = cl.body[:0], cl.wbuf[:0]
	cl.get, cl.set, cl.del, cl.incr, cl.level = protocol.GetRequest{}, protocol.SetRequest{}, protocol.DelRequest{}, protocol.IncrRequest{}, protocol.LogLevelRequest{}
	cl.getResp, cl.write, cl.incrResp = protocol.GetResponse{}, protocol.WriteResponse{}, protocol.IncrResponse{}
}
