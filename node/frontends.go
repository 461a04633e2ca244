package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/native"
	"github.com/upu/upu/frontend/redis"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/httpd"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/store"
)

// startFrontends starts the binary-protocol server on ln and, when
// configured, the Redis-protocol server and the HTTP endpoint. On an error
// nothing it started is left running.
func (n *Node) startFrontends(ln net.Listener) error {
	cfg := n.cfg
	var err error
	n.srv, err = native.New(native.Config{
		NodeID: n.id, Domain: cfg.Domain,
		HeartbeatInterval: cfg.HeartbeatInterval, IdleTimeout: cfg.IdleTimeout, HandshakeTimeout: cfg.HandshakeTimeout,
		MaxConns: cfg.MaxConns, MaxConnsPerClient: cfg.MaxConnsPerClient, MaxPipeline: cfg.MaxPipeline, MaxReplyBuffer: cfg.MaxReplyBuffer,
		ClientToken: cfg.ClientToken, PeerToken: cfg.PeerToken, AdminToken: cfg.AdminToken,
	}, native.Deps{KV: n.kv, Admin: nodeAdmin{n}, Cascade: n.nativeCascade(), Logger: n.logger, Links: n.links, Registerer: n.reg})
	if err != nil {
		ln.Close()
		return err
	}
	if cfg.RespAddr != "" {
		if n.resp, err = redis.New(redis.Config{
			MaxConns: cfg.MaxConns, MaxConnsPerClient: cfg.MaxConnsPerClient, MaxPipeline: cfg.MaxPipeline, MaxReplyBuffer: cfg.MaxReplyBuffer,
			IdleTimeout: cfg.IdleTimeout, ClientToken: cfg.ClientToken},
			redis.Deps{KV: n.kv, Node: nodeAdmin{n}, Logger: n.logger, Registerer: n.reg}); err != nil {
			ln.Close()
			return err
		}
		rln, err := listen("--resp-addr", cfg.RespAddr)
		if err != nil {
			ln.Close()
			return err
		}
		n.resp.Serve(rln)
	}
	if cfg.HTTPAddr != "" {
		err := n.startHTTP()
		if err != nil {
			ln.Close()
			if n.resp != nil {
				n.resp.Shutdown(context.Background())
			}
			return err
		}
	}
	n.srv.Serve(ln)
	return nil
}

func (n *Node) startHTTP() error {
	h, err := httpd.New(n.cfg.HTTP, httpd.Deps{Gatherer: n.reg, Health: nodeAdmin{n}, Logger: n.logger})
	if err != nil {
		return err
	}
	ln, err := listen("--http-addr", n.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	n.http = h
	h.Serve(ln)
	return nil
}

// listen binds addr; an error names the flag that sets it.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upu: %s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// stopFrontends stops every server, letting each answer what it has read
// until ctx ends.
func (n *Node) stopFrontends(ctx context.Context) error {
	var errs []error
	if n.srv != nil {
		errs = append(errs, n.srv.Shutdown(ctx))
	}
	if n.resp != nil {
		errs = append(errs, n.resp.Shutdown(ctx))
	}
	if n.http != nil {
		errs = append(errs, n.http.Close(ctx))
	}
	return errors.Join(errs...)
}

// nodeAdmin is what the front ends learn of the node beyond the data
// service: status, digest and membership for the binary protocol, INFO for
// the Redis protocol, health for HTTP.
type nodeAdmin struct{ n *Node }

func (a nodeAdmin) Status(ctx context.Context, st *protocol.StatusResponse) error {
	n := a.n
	stats := n.store.Stats()
	applied := vectorMap(stats.Applied)
	if applied == nil {
		applied = map[string]uint64{}
	}
	st.Version = Version
	st.StartedMS = n.started.UnixMilli()
	st.Keys, st.LogLen, st.Applied = int64(stats.Keys), stats.LogLen, applied
	st.DeadRecords, st.DroppedStable, st.DroppedHorizon = stats.DeadRecords, stats.DroppedStable, stats.DroppedHorizon
	st.Stable = vectorMap(n.store.Stable())
	n.addDomainStatus(st)
	return nil
}

func (a nodeAdmin) Digest(ctx context.Context) (string, int, error) { return a.n.store.Digest(ctx) }

// Backup writes the store's backup, recording the node's domain.
func (a nodeAdmin) Backup(ctx context.Context, w io.Writer, begin func(protocol.BackupResponse) error) error {
	_, err := a.n.store.Backup(ctx, w, store.BackupOptions{Domain: a.n.cfg.Domain, Begin: func(i store.BackupInfo) error {
		return begin(backupResponse(i))
	}})
	return err
}

// backupResponse is a backup's description as the binary protocol sends it.
func backupResponse(i store.BackupInfo) protocol.BackupResponse {
	return protocol.BackupResponse{
		NodeID: i.NodeID.String(), Domain: i.Domain, Digest: i.Digest, Keys: int64(i.Keys),
		CreatedMS: i.Created.UnixMilli(), Size: i.Size,
	}
}

// Members is the domain as gossip sees it, or this node alone when it does
// not gossip.
func (a nodeAdmin) Members() []protocol.Member {
	n := a.n
	if n.domain == nil {
		return []protocol.Member{{
			NodeID: n.id.String(), Domain: n.cfg.Domain, Addr: n.Addr().String(),
			State: gossip.StateAlive.String(), Self: true,
		}}
	}
	ms := n.domain.gossip.Members()
	out := make([]protocol.Member, len(ms))
	for i, m := range ms {
		out[i] = protocol.Member{
			NodeID: m.ID, Domain: m.Domain, Addr: m.Addr, GossipAddr: m.GossipAddr,
			State: m.State.String(), Self: m.Self,
		}
	}
	return out
}

func (a nodeAdmin) Info() redis.Info {
	n := a.n
	info := redis.Info{
		NodeID: n.id.String(), Domain: n.cfg.Domain, Version: Version, Started: n.started,
		Addr: n.Addr().String(), DataDir: n.cfg.DataDir, SyncWrites: n.cfg.Store.SyncWrites,
		LogEntries: n.store.LogLen(), Applied: n.store.Applied().String(),
	}
	if n.srv != nil {
		info.NativeClients = n.srv.Open()
	}
	var st protocol.StatusResponse
	n.addDomainStatus(&st)
	info.Members, info.Successor = st.Members, st.Successor
	info.EntriesSent, info.EntriesApplied = st.EntriesSent, st.EntriesApplied
	if c := n.Cascade(); c != nil {
		if cs := c.Status(); cs.Parent != "" {
			info.Cascade = fmt.Sprintf("parent %s, path %s, %s, lag %d entries", cs.Parent, strings.Join(cs.Path, " -> "), cs.State, cs.LagEntries)
		}
	}
	return info
}

// Serving is false once the node shuts down.
func (a nodeAdmin) Serving() bool { return a.n.srv != nil && !a.n.srv.Closing() }

// Ready is true once the node serves and is caught up with its domain: not
// resyncing, heard from a member if it has any, and behind none of those it
// has heard from by more than Config.ReadyLag log entries.
func (a nodeAdmin) Ready() (bool, string) {
	n := a.n
	if !a.Serving() {
		return false, "shutting down"
	}
	if n.domain == nil {
		return true, ""
	}
	rs := n.domain.repl.Stats()
	if rs.Resyncing {
		return false, "resyncing: back after longer than the tombstone horizon"
	}
	heard := false
	for _, p := range rs.Peers {
		if !p.Heard {
			continue
		}
		heard = true
		if behind := crdt.Lag(p.Acked, rs.Applied).Sum(); behind > uint64(n.cfg.ReadyLag) {
			return false, fmt.Sprintf("behind member %s by %d log entries (ready at %d or fewer)", p.ID, behind, n.cfg.ReadyLag)
		}
	}
	if len(rs.Peers) > 0 && !heard {
		return false, "no member heard from yet"
	}
	return true, ""
}
