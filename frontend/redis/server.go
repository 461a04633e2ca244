package node

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/upu/upu/resp"
)

// respServer accepts Redis-protocol connections (Config.RespAddr) and owns
// their goroutines. It works like server, the binary protocol's: one
// goroutine per connection, writes of a pipeline applied as one batch,
// answers written with one system call.
type respServer struct {
	listener[*respConn]
	n       *Node
	readCfg resp.Config
	cmds    *respCommands
	cursors scanCursors

	// For INFO.
	lastID    atomic.Int64 // CLIENT ID of the newest connection
	processed atomic.Int64
}

// startResp listens on addr and serves the Redis protocol until shutdown.
func startResp(n *Node, addr string) (*respServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upu: listen on %s: %w", addr, err)
	}
	s := &respServer{
		n:       n,
		cmds:    newRespCommands(n.metrics.respCalls),
		cursors: newScanCursors(n.cfg.MaxKeySize),
		// A bulk string over the value limit (plus room for a key) is
		// refused by the reader, which closes the connection: it cannot
		// be skipped without reading it. Smaller oversized values get an
		// error reply and the connection stays.
		readCfg: resp.Config{MaxBulkLen: max(n.cfg.MaxValueSize, n.cfg.MaxKeySize) + protocolOverhead},
	}
	s.log = n.logger.Component("resp")
	s.maxConns = n.cfg.MaxConns
	s.newConn = func(nc net.Conn) *respConn { return newRespConn(s, nc, s.lastID.Add(1)) }
	s.serve(ln)
	return s, nil
}

// RespAddr returns the Redis protocol listener's address, or nil when it is
// off.
func (n *Node) RespAddr() net.Addr {
	if n.resp == nil {
		return nil
	}
	return n.resp.ln.Addr()
}

// shutdown is the listener's, made safe to call on a nil server (the
// listener is off).
func (s *respServer) shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.listener.shutdown(ctx)
}
