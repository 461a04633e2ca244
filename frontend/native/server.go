package node

import (
	"context"
	"errors"
	"net"

	"github.com/upu/upu/kv"
	"github.com/upu/upu/protocol"
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

// errorCode maps an error from the data service to its wire code. Only
// CodeInternal means the server failed the caller.
func errorCode(err error) protocol.Code {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	switch kv.KindOf(err) {
	case kv.KindNotFound:
		return protocol.CodeNotFound
	case kv.KindTooLarge:
		return protocol.CodeTooLarge
	case kv.KindBadRequest:
		return protocol.CodeBadRequest
	case kv.KindWrongType:
		return protocol.CodeWrongType
	case kv.KindUnavailable:
		return protocol.CodeUnavailable
	case kv.KindTimeout:
		return protocol.CodeTimeout
	case kv.KindScopeUnavailable:
		return protocol.CodeScopeUnavailable
	}
	return protocol.CodeInternal
}
