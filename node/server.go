package node

import (
	"context"
	"errors"
	"net"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// server accepts binary-protocol connections and owns their goroutines.
type server struct {
	listener[*conn]
	n *Node
}

func newServer(n *Node) *server {
	s := &server{n: n}
	s.log = n.logger.Component("server")
	s.maxConns = n.cfg.MaxConns
	s.newConn = func(nc net.Conn) *conn { return newConn(s, nc) }
	return s
}

func (s *server) addr() net.Addr {
	if s.ln == nil {
		return &net.TCPAddr{}
	}
	return s.ln.Addr()
}

func (s *server) shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	return s.listener.shutdown(ctx)
}

// errorCode maps an error from the store or the CRDT layer to its wire code.
// Only CodeInternal means the server failed the caller.
func errorCode(err error) protocol.Code {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return pe.Code
	case errors.Is(err, store.ErrNotFound):
		return protocol.CodeNotFound
	case errors.Is(err, store.ErrTooLarge):
		return protocol.CodeTooLarge
	case errors.Is(err, store.ErrBadRequest), errors.Is(err, crdt.ErrOverflow), errors.Is(err, crdt.ErrBadEncoding):
		return protocol.CodeBadRequest
	case errors.Is(err, crdt.ErrWrongType):
		return protocol.CodeWrongType
	case errors.Is(err, store.ErrClosed):
		return protocol.CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.CodeTimeout
	}
	return protocol.CodeInternal
}
