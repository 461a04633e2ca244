package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/upu/upu/cascade"
	"github.com/upu/upu/crdt"
	"github.com/upu/upu/frontend/native"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// domain is the node's part in its domain: gossip membership, the links
// to peers and the replicator that ships the store's log around the ring
// over them.
type domain struct {
	gossip *gossip.Gossip
	links  *peer.Pool
	repl   *replication.Replicator
	casc   *cascade.Cascade
	// The ring's wake-up on new log entries and its hold on the log.
	feed   *store.Feed
	holder *store.Holder

	cancelJoin context.CancelFunc
	joinDone   chan struct{} // closed when the join goroutine has returned
}

// leaveTimeout bounds how long Close waits for a graceful leave before it
// goes on closing; gossip.Close still waits for serf's own bounded leave.
const leaveTimeout = 5 * time.Second

// validateDomain checks the gossip settings; a standalone node has none.
func (c Config) validateDomain(l *confcheck.List) {
	if c.Standalone {
		return
	}
	if host, _, err := net.SplitHostPort(c.Gossip.BindAddr); err != nil || net.ParseIP(host) == nil {
		l.Add("gossip-addr", c.Gossip.BindAddr, "want IP:port (gossip binds an IP address)")
	}
	for _, j := range c.Gossip.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			l.Add("join", j, "want host:port")
		}
	}
}

// startDomain starts gossip on Config.GossipAddr, publishing proto (the
// bound protocol address) for peers to dial, then the peer links and the
// replicator, and joins Config.Join in the background. On an error nothing
// is left running.
func (n *Node) startDomain(proto net.Addr) error {
	if n.cfg.Standalone {
		return nil
	}
	adv, err := dialableAddr(proto, n.cfg.Gossip.BindAddr)
	if err != nil {
		return err
	}
	g, err := gossip.New(n.cfg.gossipConfig(n.id, adv), n.logger)
	if err != nil {
		return fmt.Errorf("upu: --gossip-addr %s: %w", n.cfg.Gossip.BindAddr, err)
	}
	links, err := peer.New(n.cfg.peerConfig(n.id), peer.Deps{Clock: n.clk, Log: n.logger.Component("peer")})
	if err != nil {
		return errors.Join(err, g.Close())
	}
	rlog := n.logger.Component("replication")
	tr := replication.NewLinkTransport(links, rlog)
	feed, holder := n.store.Follow(), n.store.Holder("ring")
	repl, err := replication.New(n.cfg.replicationConfig(n.id), n.store, g, tr, n.clk, rlog,
		replication.LogHooks{Feed: feed, Holder: holder})
	if err != nil {
		feed.Close()
		holder.Release()
		return errors.Join(err, links.Close(), g.Close())
	}
	tr.Serve(repl)
	casc, err := cascade.New(n.cfg.cascadeConfig(n.id, adv), cascade.Deps{
		Store: n.store, Members: g, Replication: repl, Links: links, Reader: n.kv,
		Clock: n.clk, Log: n.logger.Component("cascade"), Registerer: n.reg, SlowThreshold: n.logger.SlowThreshold,
	})
	if err != nil {
		feed.Close()
		holder.Release()
		return errors.Join(err, links.Close(), repl.Close(), g.Close())
	}
	d := &domain{gossip: g, links: links, repl: repl, casc: casc, feed: feed, holder: holder, cancelJoin: func() {}, joinDone: make(chan struct{})}
	n.domain = d
	n.links = links
	n.upstream.set(casc)
	if len(n.cfg.Gossip.Join) == 0 {
		close(d.joinDone)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancelJoin = cancel
	go func() {
		defer close(d.joinDone)
		// Join logs each failed attempt and retries until it reaches a
		// member or Close cancels it.
		if _, err := g.Join(ctx, nil); err != nil && ctx.Err() == nil && !errors.Is(err, gossip.ErrClosed) {
			n.log.WithError(err).WithField(logging.FieldEvent, logging.EventMembership).Warn("join incomplete")
		}
	}()
	return nil
}

// stopDomain leaves the domain gracefully when there is anyone to tell,
// then stops replication and gossip.
func (n *Node) stopDomain(ctx context.Context) error {
	d := n.domain
	if d == nil {
		return nil
	}
	d.cancelJoin()
	<-d.joinDone
	if d.gossip.NumMembers() > 1 {
		lctx, cancel := context.WithTimeout(ctx, leaveTimeout)
		if err := d.gossip.Leave(lctx); err != nil {
			n.log.WithError(err).WithField(logging.FieldEvent, logging.EventMembership).Warn("graceful leave did not complete: peers may see this node as failed")
		}
		cancel()
	}
	// The cascade first: it calls the parent over the links. Then the
	// links: closing them ends at once a send that waits on a silent peer,
	// which the replicator's Close would otherwise wait for.
	n.upstream.set(nil)
	cascErr := d.casc.Close()
	linksErr := d.links.Close()
	replErr := d.repl.Close()
	d.feed.Close()
	d.holder.Release()
	return errors.Join(cascErr, linksErr, replErr, d.gossip.Close())
}

// dialableAddr returns the protocol address peers should dial: the bound
// one, with a wildcard host replaced by the gossip IP when that is a
// specific one.
func dialableAddr(bound net.Addr, gossipAddr string) (string, error) {
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", fmt.Errorf("upu: protocol address %s: %w", bound, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return bound.String(), nil
	}
	ghost, _, err := net.SplitHostPort(gossipAddr)
	if ip := net.ParseIP(ghost); err != nil || ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("%w: addr %s listens on every interface and gossip-addr %s names none either: peers need an address to dial; bind one of them to a specific IP", ErrConfig, bound, gossipAddr)
	}
	return net.JoinHostPort(ghost, port), nil
}

// gossipAddr returns the gossip listener's bound address, "" when standalone.
func (n *Node) gossipAddr() string {
	if n.domain == nil {
		return ""
	}
	return n.domain.gossip.LocalMember().GossipAddr
}

// GossipAddr returns the gossip listener's address once started, or nil for
// a standalone node.
func (n *Node) GossipAddr() net.Addr {
	if n.domain == nil {
		return nil
	}
	a, err := net.ResolveTCPAddr("tcp", n.gossipAddr())
	if err != nil {
		return nil
	}
	return a
}

// joinList is Config.Join as one string, for the start-up line.
func (n *Node) joinList() string { return strings.Join(n.cfg.Gossip.Join, ",") }

// gossipEncrypted reports whether gossip runs encrypted.
func (n *Node) gossipEncrypted() bool {
	return n.domain != nil && n.domain.gossip.Stats().Encrypted
}

// addDomainStatus fills the membership and replication fields of a status
// answer.
func (n *Node) addDomainStatus(st *protocol.StatusResponse) {
	d := n.domain
	if d == nil {
		return
	}
	st.Members = int64(d.gossip.NumMembers())
	rs := d.repl.Stats()
	if rs.Successor != 0 {
		st.Successor = rs.Successor.String()
	}
	st.EntriesSent, st.EntriesApplied = rs.EntriesSent, rs.EntriesApplied
	st.SendErrors = rs.Transport.SendErrors
	st.Resyncing, st.Resyncs, st.Syncs = rs.Resyncing, rs.ResyncsDone, rs.SyncsDone
	for _, p := range rs.Peers {
		st.Peers = append(st.Peers, protocol.PeerStatus{
			NodeID: p.ID.String(), Addr: p.Addr, Behind: p.Behind,
			Heard: p.Heard, Unresponsive: p.Unresponsive, Snapshot: p.Snapshot,
		})
	}
}

// upstream is the node's kv.Upstream: the cascade once the domain has
// started, and until then (or for a standalone node) a root of its own.
type upstream struct {
	domain string
	c      atomic.Pointer[cascade.Cascade]
}

func (u *upstream) set(c *cascade.Cascade) { u.c.Store(c) }

func (u *upstream) Domain() string { return u.domain }

func (u *upstream) ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error) {
	c := u.c.Load()
	if c == nil {
		return crdt.Record{}, "", cascade.ErrNoParent
	}
	return c.ReadUp(ctx, key, root, rid)
}

// Cascade returns the node's part in the domain hierarchy; nil for a
// standalone node or before Start.
func (n *Node) Cascade() *cascade.Cascade {
	if n.domain == nil {
		return nil
	}
	return n.domain.casc
}

// nativeCascade is the cascade as the binary protocol's admin requests see
// it; nil (no cascade) for a standalone node.
func (n *Node) nativeCascade() native.Cascade {
	if c := n.Cascade(); c != nil {
		return cascadeAdmin{c}
	}
	return nil
}

// cascadeAdmin adapts the cascade to native.Cascade.
type cascadeAdmin struct{ *cascade.Cascade }

func (a cascadeAdmin) Status(context.Context) (protocol.CascadeStatus, error) {
	return a.Cascade.Status(), nil
}
