package cascade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/internal/reqid"
	"github.com/upu/upu/peer"
	"github.com/upu/upu/protocol"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// Store is what the cascade needs of the node's store; *store.Store is one.
type Store interface {
	ReadSystem(key []byte) (crdt.View, crdt.Record, error)
	ApplyBatch(ctx context.Context, ws []store.Write, out []store.Result)
	ReadLog(origin crdt.NodeID, fromSeq uint64, limit int) ([]store.LogEntry, error)
	ScanSystem(ctx context.Context, fn func(key []byte, r crdt.Record) bool) error
}

// Members is the domain's membership; *gossip.Gossip is one.
type Members interface {
	Members() []gossip.Member
	Subscribe() (<-chan struct{}, func())
}

// Replication is the replicator the cascade gives its upstream to;
// *replication.Replicator is one.
type Replication interface {
	SetUpstream(p replication.Peer, relay bool)
	ClearUpstream()
	HoldCollection(hold bool)
	Stats() replication.Stats
}

// Links are the node's peer links; *peer.Pool is one.
type Links interface {
	Call(ctx context.Context, to peer.Node, kind peer.Kind, req []byte) ([]byte, error)
	Identify(ctx context.Context, addr string) (string, error)
	Register(kind peer.Kind, h peer.Handler)
}

// Reader answers the scoped reads child domains send this node, as it
// answers its own clients' (kv.Service.ReadUp).
type Reader interface {
	ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error)
}

// Deps are the cascade's collaborators. Log and Registerer may be nil.
type Deps struct {
	Store       Store
	Members     Members
	Replication Replication
	Links       Links
	Reader      Reader
	Clock       clock.Clock
	Log         *logrus.Entry
	Registerer  prometheus.Registerer
	// SlowThreshold, when set, is the duration past which a read served
	// for a child domain is logged at warn.
	SlowThreshold func() time.Duration
}

// infoEvery is how many refreshes pass between two info requests to the
// parent while all is well: the parent's membership and path change
// rarely, and the replicator's probes already watch the upstream.
const infoEvery = 5

// maxHops bounds how far a scoped read travels up: a cycle made by two
// concurrent changes must not bounce a read for ever.
const maxHops = 16

// Cascade is one node's part in the domain hierarchy. One goroutine
// follows the parent setting, the gossip view and the replicator, and
// publishes a Status; the peer handlers answer child domains.
type Cascade struct {
	cfg  Config
	deps Deps
	clk  clock.Clock
	log  *logrus.Entry

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	status atomic.Pointer[protocol.CascadeStatus]
	reads  atomic.Pointer[[]memberInfo] // controller.readTargets, published with status
	// published is closed, and replaced, whenever a status is published.
	pmu       sync.Mutex
	published chan struct{}
	// path is this domain's path to the root as last learned, this domain
	// first; cycle, that the path passes through this domain again.
	path atomic.Pointer[pathInfo]

	cmu      sync.Mutex
	children map[string]child // by domain
	named    []string         // child domains by their settings (followChildren)

	// Owned by the loop goroutine.
	ctl         *controller
	hasChildren bool
	lastErr     string
	lastErrAt   time.Time
	warned      string // the warning given since the parent last answered
	relayed     relayCount
	lag         lagWatch
}

type pathInfo struct {
	path  []string
	cycle bool
}

type child struct {
	relay string
	seen  time.Time
}

// New starts the cascade of the node cfg.Self in cfg.Domain, and registers
// its handler on deps.Links.
func New(cfg Config, deps Deps) (*Cascade, error) {
	c, err := newCascade(cfg, deps)
	if err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

// newCascade is New without the loop: tests drive refresh themselves.
func newCascade(cfg Config, deps Deps) (*Cascade, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Members == nil || deps.Replication == nil || deps.Links == nil || deps.Reader == nil {
		return nil, fmt.Errorf("%w: store, members, replication, links and reader are required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	c := &Cascade{
		cfg:       cfg,
		deps:      deps,
		clk:       deps.Clock,
		log:       deps.Log,
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		children:  map[string]child{},
		ctl:       newController(cfg.Domain, cfg.Self.String()),
		published: make(chan struct{}),
	}
	if c.clk == nil {
		c.clk = clock.Real()
	}
	if c.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.log = logrus.NewEntry(l)
	}
	c.path.Store(&pathInfo{path: []string{cfg.Domain}})
	// The first refresh, which may call the parent, is the loop's, at
	// once: New does no network I/O.
	c.followSetting()
	// The hold on collection is known from the store alone: set it before
	// replication's first rounds can make anything collectable.
	c.followChildren(context.Background())
	c.publish(nil)
	c.wake()
	deps.Links.Register(peer.KindCascade, c.serve)
	if deps.Registerer != nil {
		registerMetrics(deps.Registerer, c)
	}
	return c, nil
}

// Domain is this node's domain.
func (c *Cascade) Domain() string { return c.cfg.Domain }

// Close stops the loop and waits for it. It is idempotent.
func (c *Cascade) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
	})
	return nil
}

// Status returns the node's view of the hierarchy as of the last refresh.
func (c *Cascade) Status() protocol.CascadeStatus {
	st := *c.status.Load()
	st.Children = c.childList()
	return st
}

func (c *Cascade) run() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ticker := c.clk.NewTicker(c.cfg.Refresh)
	defer ticker.Stop()
	changes, unsubscribe := c.deps.Members.Subscribe()
	defer unsubscribe()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C():
		case <-c.kick:
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
		c.refresh(ctx)
	}
}

// wake asks the loop for a refresh now.
func (c *Cascade) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// refresh is one turn of the loop: the setting, the relay, the parent's
// members, the upstream, the lag; then the status.
func (c *Cascade) refresh(ctx context.Context) {
	c.followSetting()
	wasRelay := c.ctl.isRelay()
	c.ctl.setLive(c.liveIDs())
	if c.ctl.parent != nil && c.ctl.isRelay() != wasRelay {
		if wasRelay {
			c.log.WithField("relay", c.ctl.relay).Info("cascade relay moved to another member")
		} else {
			c.log.Info("cascade relay: this node now relays the domain's log to the parent")
		}
	}
	c.followChildren(ctx)
	if c.ctl.parent == nil {
		c.publish(nil)
		return
	}
	rs := c.deps.Replication.Stats()
	if up := rs.Upstream; up != nil && up.ID.String() == c.ctl.up.ID && up.Unresponsive {
		prev := c.ctl.unresponsive()
		c.log.WithFields(logrus.Fields{logging.FieldPeer: prev.ID, logging.FieldRemote: prev.Addr, "next": c.ctl.up.ID, logging.FieldEvent: logging.EventPeerUnreachable}).
			Warn("cascade upstream not answering: failing over to another member of the parent domain")
	}
	if c.ctl.tick() {
		c.askInfo(ctx)
	}
	if up, relay := c.ctl.upstream(); up.ID != "" {
		id, _ := crdt.ParseNodeID(up.ID)
		c.deps.Replication.SetUpstream(replication.Peer{ID: id, Addr: up.Addr}, relay)
	}
	c.publish(&rs)
}

// followSetting reads the parent setting and, when it changed, starts over
// with the new one.
func (c *Cascade) followSetting() {
	p, err := c.readSetting()
	if err != nil {
		c.fail(logging.EventCascadeError, "cascade parent setting unreadable", err)
		return
	}
	before := c.ctl.parent
	if !c.ctl.setParent(p) {
		return
	}
	c.log.WithFields(logrus.Fields{logging.FieldBefore: before.String(), logging.FieldAfter: p.String()}).Info("cascade parent changed")
	c.lastErr, c.lag = "", lagWatch{}
	c.path.Store(&pathInfo{path: c.ctl.path})
	if p == nil {
		c.deps.Replication.ClearUpstream()
	}
}

// followChildren tells replication whether this domain has child domains,
// which holds tombstone collection to the horizon (see
// replication.Machine.HoldCollection): a child relay heard from lately, or
// a child's own parent setting naming this domain, which came up with the
// child's log, so every member has it and it outlives restarts. The
// settings also name the children in the status, whichever member their
// relay reports to.
func (c *Cascade) followChildren(ctx context.Context) {
	if c.ctl.ticks%infoEvery != 0 && c.hasChildren {
		return // a child once found keeps the hold until the next look
	}
	prefix := settingKey("")
	now := c.clk.Now().UnixMilli()
	var named []string
	err := c.deps.Store.ScanSystem(ctx, func(key []byte, r crdt.Record) bool {
		if !bytes.HasPrefix(key, prefix) || bytes.Equal(key, settingKey(c.cfg.Domain)) {
			return true
		}
		if v := r.Read(now); v.Found {
			if p, err := decodeParent(v.Value); err == nil && p.Domain == c.cfg.Domain {
				named = append(named, string(key[len(prefix):]))
			}
		}
		return true
	})
	if err != nil {
		c.fail(logging.EventCascadeError, "cascade child settings unreadable", fmt.Errorf("upu: cascade: read the child domains' settings: %w", err))
		return
	}
	c.cmu.Lock()
	c.named = named
	c.cmu.Unlock()
	has := len(c.childList()) > 0
	if has != c.hasChildren {
		c.hasChildren = has
		c.log.WithField("children", has).Info("cascade child domains changed: tombstones are collected past the tombstone horizon only while this domain has children")
	}
	c.deps.Replication.HoldCollection(has)
}

func (c *Cascade) readSetting() (*Parent, error) {
	v, _, err := c.deps.Store.ReadSystem(settingKey(c.cfg.Domain))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("upu: cascade: read the parent setting: %w", err)
	}
	return decodeParent(v.Value)
}

// liveIDs returns the IDs of the domain's live members, this node included.
func (c *Cascade) liveIDs() []string {
	self := c.cfg.Self.String()
	ids := []string{self}
	for _, m := range c.deps.Members.Members() {
		if m.State == gossip.StateAlive && m.ID != self && m.Domain == c.cfg.Domain {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// askInfo asks the parent for its members and path: the upstream alone
// while one is chosen, within CallTimeout; when it does not answer (or
// none is), the other targets of controller.infoTargets in turn, sharing
// one more CallTimeout between them, so that a partition that drops
// packets holds the loop for two CallTimeouts at most, not one per member.
// The first answer wins. (One at a time, not all at once: the same answers
// then make the same choice, which the simulation relies on.)
func (c *Cascade) askInfo(loop context.Context) {
	targets := c.ctl.infoTargets()
	var errs []error
	if c.ctl.up.ID != "" && len(targets) > 1 {
		if errs = c.askEach(loop, targets[:1], c.cfg.CallTimeout); errs == nil {
			return
		}
		targets = targets[1:]
	}
	more := c.askEach(loop, targets, max(c.cfg.CallTimeout/time.Duration(max(1, len(targets))), minCallTimeout))
	if more == nil || loop.Err() != nil {
		return // answered, or closing
	}
	c.ctl.infoFailed()
	c.fail(logging.EventPeerUnreachable, "cascade parent domain unreachable: no member answered",
		fmt.Errorf("%w: %s: %w", ErrParentUnreachable, c.ctl.parent.Domain, errors.Join(append(errs, more...)...)))
}

// minCallTimeout is the least time one info request is given when many
// share a CallTimeout.
const minCallTimeout = 200 * time.Millisecond

// askEach sends the info request to each target in turn, each bounded by
// per, and takes the first answer. It returns nil once an answer was
// taken, else every failure.
func (c *Cascade) askEach(loop context.Context, targets []memberInfo, per time.Duration) []error {
	req := request{Op: opInfo, Domain: c.cfg.Domain, Relay: c.ctl.isRelay()}
	errs := []error{}
	for _, to := range targets {
		var resp infoResponse
		ctx, cancel := context.WithTimeout(loop, per)
		err := c.call(ctx, to, &req, &resp)
		cancel()
		var res infoResult
		if err == nil {
			res, err = c.ctl.takeInfo(to, &resp)
		}
		if err != nil {
			errs = append(errs, err)
			if loop.Err() != nil {
				return errs
			}
			continue
		}
		c.tookInfo(res)
		if c.warned != "" {
			c.log.WithField(logging.FieldPeer, c.ctl.up.ID).Info("cascade parent domain answering again")
			c.warned = ""
		}
		return nil
	}
	return errs
}

// tookInfo publishes the path an answer brought and logs what it changed.
func (c *Cascade) tookInfo(res infoResult) {
	c.path.Store(&pathInfo{path: c.ctl.path, cycle: c.ctl.cycle})
	if res.cycleChanged {
		entry := c.log.WithField("path", strings.Join(c.ctl.path, " -> "))
		if c.ctl.cycle {
			entry.WithField(logging.FieldEvent, logging.EventCascadeCycle).Warn("cascade cycle: the parent's path to the root passes through this domain; relaying stops until a parent setting breaks the cycle")
		} else {
			entry.Info("cascade cycle gone: relaying again")
		}
	}
	if res.newUpstream {
		c.log.WithFields(logrus.Fields{logging.FieldPeer: c.ctl.up.ID, logging.FieldRemote: c.ctl.up.Addr}).Info("cascade upstream chosen")
	}
}

// call sends req to the parent member to (by its ID, or by its address
// alone for a seed) and decodes the answer into resp.
func (c *Cascade) call(ctx context.Context, to memberInfo, req *request, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	if to.ID == "" {
		id, err := c.deps.Links.Identify(ctx, to.Addr)
		if err != nil {
			return err
		}
		to.ID = id
	}
	body, err := encode(req)
	if err != nil {
		return err
	}
	out, err := c.deps.Links.Call(ctx, peer.Node{ID: to.ID, Addr: to.Addr}, peer.KindCascade, body)
	if err != nil {
		return err
	}
	return decodeInto(out, resp)
}

// fail records err as the last error, for the status, and warns with
// event and msg, once until the parent answers again.
func (c *Cascade) fail(event, msg string, err error) {
	if msg != c.warned {
		c.log.WithError(err).WithField(logging.FieldEvent, event).Warn(msg)
		c.warned = msg
	}
	c.lastErr, c.lastErrAt = err.Error(), c.clk.Now()
}

// SetParent makes domain, reached at seeds, the parent of this node's
// domain, for every member: the setting is written to the system keyspace,
// which replication carries to them. The parent is asked first for its
// path to the root: a parent that cannot be reached, that is another
// domain, or whose path passes through this domain is refused.
func (c *Cascade) SetParent(ctx context.Context, domain string, seeds []string) error {
	p := &Parent{Domain: domain, Seeds: seeds}
	if err := p.check(c.cfg.Domain); err != nil {
		return err
	}
	req := request{Op: opInfo, Domain: c.cfg.Domain}
	var errs []error
	answered := false
	for _, s := range seeds {
		var resp infoResponse
		if err := c.call(ctx, memberInfo{Addr: s}, &req, &resp); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case resp.Domain != domain:
			return fmt.Errorf("%w: %s is a member of %s, not of %s", ErrBadParent, s, resp.Domain, domain)
		case slices.Contains(resp.Path, c.cfg.Domain):
			return fmt.Errorf("%w: %s's path to the root is %s, through %s", ErrCycle, domain, strings.Join(resp.Path, " -> "), c.cfg.Domain)
		}
		answered = true
		break
	}
	if !answered {
		return fmt.Errorf("%w: %s: no seed answered: %w", ErrParentUnreachable, domain, errors.Join(errs...))
	}
	val, err := encodeParent(p)
	if err != nil {
		return err
	}
	if err := c.writeSetting(ctx, store.Write{Op: store.OpSet, Key: settingKey(c.cfg.Domain), Value: val, System: true}); err != nil {
		return err
	}
	c.await(ctx, func(st *protocol.CascadeStatus) bool {
		return st.Parent == domain && slices.Equal(st.Seeds, seeds) && st.State != StateConnecting
	})
	return nil
}

// ClearParent removes the domain's parent: it becomes a root.
func (c *Cascade) ClearParent(ctx context.Context) error {
	if err := c.writeSetting(ctx, store.Write{Op: store.OpDel, Key: settingKey(c.cfg.Domain), System: true}); err != nil {
		return err
	}
	c.await(ctx, func(st *protocol.CascadeStatus) bool { return st.Parent == "" })
	return nil
}

// await waits until the loop publishes a status that done accepts, for at
// most twice CallTimeout: a change's answer then shows the change taken.
// The change is written either way; a status slower than that only lags.
func (c *Cascade) await(ctx context.Context, done func(*protocol.CascadeStatus) bool) {
	timer := c.clk.NewTimer(2 * c.cfg.CallTimeout)
	defer timer.Stop()
	for {
		c.pmu.Lock()
		next := c.published
		c.pmu.Unlock()
		if done(c.status.Load()) {
			return
		}
		select {
		case <-next:
		case <-timer.C():
			return
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		}
	}
}

func (c *Cascade) writeSetting(ctx context.Context, w store.Write) error {
	res := make([]store.Result, 1)
	c.deps.Store.ApplyBatch(ctx, []store.Write{w}, res)
	if err := res[0].Err; err != nil {
		return fmt.Errorf("upu: cascade: write the parent setting: %w", err)
	}
	c.wake()
	return nil
}

// ReadUp asks a member of the parent domain for key (kv.Upstream): the
// upstream first, then the other members. ErrNoParent at a root.
func (c *Cascade) ReadUp(ctx context.Context, key []byte, root bool, rid reqid.ID) (crdt.Record, string, error) {
	st := c.status.Load()
	if st.Parent == "" {
		return crdt.Record{}, "", ErrNoParent
	}
	if c.path.Load().cycle {
		return crdt.Record{}, "", fmt.Errorf("%w: %s", ErrCycle, strings.Join(st.Path, " -> "))
	}
	hops := hopsOf(ctx)
	if hops >= maxHops {
		return crdt.Record{}, "", fmt.Errorf("%w: a read passed %d domains", ErrCycle, hops)
	}
	req := request{Op: opRead, Domain: c.cfg.Domain, Key: key, Root: root, ReqID: rid.String(), Hops: hops + 1}
	var errs []error
	for _, to := range *c.reads.Load() {
		var resp readResponse
		err := c.call(ctx, to, &req, &resp)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var rec crdt.Record
		if len(resp.Record) > 0 {
			if rec, err = crdt.UnmarshalRecord(resp.Record); err != nil {
				return crdt.Record{}, "", fmt.Errorf("upu: cascade: record from %s: %w", to.ID, err)
			}
		}
		return rec, resp.Domain, nil
	}
	return crdt.Record{}, "", fmt.Errorf("%w: %s: %w", ErrParentUnreachable, st.Parent, errors.Join(errs...))
}

// readTargets are the parent members a read tries, in order: the
// upstream, the other members known, or the seeds while none is. The loop
// publishes them with the status: a read must not wait for the loop.
func (ctl *controller) readTargets() []memberInfo {
	var out []memberInfo
	if ctl.up.ID != "" {
		out = append(out, ctl.up)
	}
	for _, m := range ctl.known() {
		if m.ID != ctl.up.ID {
			out = append(out, m)
		}
	}
	if len(out) == 0 && ctl.parent != nil {
		for _, s := range ctl.parent.Seeds {
			out = append(out, memberInfo{Addr: s})
		}
	}
	return out
}

type hopsKey struct{}

// hopsOf returns how many domains a read served under ctx has passed.
func hopsOf(ctx context.Context) int {
	n, _ := ctx.Value(hopsKey{}).(int)
	return n
}

// serve answers a child domain's request.
func (c *Cascade) serve(ctx context.Context, from string, body []byte) ([]byte, error) {
	var req request
	if err := decodeInto(body, &req); err != nil {
		return nil, err
	}
	switch req.Op {
	case opInfo:
		return c.serveInfo(from, &req)
	case opRead:
		return c.serveRead(ctx, from, &req)
	}
	return nil, fmt.Errorf("upu: cascade: unknown request %d", req.Op)
}

func (c *Cascade) serveInfo(from string, req *request) ([]byte, error) {
	if req.Relay && req.Domain != "" && req.Domain != c.cfg.Domain {
		c.cmu.Lock()
		if old, ok := c.children[req.Domain]; !ok || old.relay != from {
			c.log.WithFields(logrus.Fields{"child": req.Domain, logging.FieldPeer: from}).Info("cascade child domain relays to this domain")
		}
		c.children[req.Domain] = child{relay: from, seen: c.clk.Now()}
		c.cmu.Unlock()
	}
	pi := c.path.Load()
	resp := infoResponse{Domain: c.cfg.Domain, Path: pi.path, Cycle: pi.cycle}
	resp.Members = append(resp.Members, memberInfo{ID: c.cfg.Self.String(), Addr: c.cfg.Addr})
	for _, m := range c.deps.Members.Members() {
		if m.State == gossip.StateAlive && !m.Self && m.Domain == c.cfg.Domain && m.Addr != "" {
			resp.Members = append(resp.Members, memberInfo{ID: m.ID, Addr: m.Addr})
		}
	}
	return encode(&resp)
}

func (c *Cascade) serveRead(ctx context.Context, from string, req *request) ([]byte, error) {
	rid, err := reqid.Parse(req.ReqID)
	if err != nil {
		return nil, fmt.Errorf("upu: cascade: read from %s: request id %q: %w", from, req.ReqID, err)
	}
	start := c.clk.Now()
	rec, domain, err := c.deps.Reader.ReadUp(context.WithValue(ctx, hopsKey{}, req.Hops), req.Key, req.Root, rid)
	entry := c.log.WithFields(logrus.Fields{
		logging.FieldReqID: req.ReqID, logging.FieldOp: "cascade-read", logging.FieldPeer: from,
		"child": req.Domain, "root": req.Root, "answered_by": domain,
		logging.FieldDuration: logging.Millis(c.clk.Now().Sub(start)),
	})
	if err != nil {
		entry.WithError(err).WithField(logging.FieldEvent, logging.EventCascadeError).Warn("cascade read for a child domain failed")
		return nil, err
	}
	if slow := c.deps.SlowThreshold; slow != nil && c.clk.Now().Sub(start) > slow() {
		entry.WithField(logging.FieldThreshold, logging.Millis(slow())).WithField(logging.FieldEvent, logging.EventSlow).Warn("slow cascade read for a child domain")
	} else if c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		entry.Debug("cascade read for a child domain")
	}
	resp := readResponse{Domain: domain}
	if len(rec.Entries) > 0 || len(rec.Context.VV) > 0 || len(rec.Context.Cloud) > 0 {
		resp.Record = crdt.AppendRecord(nil, rec)
	}
	return encode(&resp)
}

// childList returns the child domains: those whose relay this node heard
// from within ChildTTL, with the relay and when, and those whose parent
// setting names this domain (their relay may report to another member),
// without.
func (c *Cascade) childList() []protocol.CascadeChild {
	now := c.clk.Now()
	c.cmu.Lock()
	defer c.cmu.Unlock()
	var out []protocol.CascadeChild
	for d, ch := range c.children {
		if now.Sub(ch.seen) > c.cfg.ChildTTL {
			delete(c.children, d)
			continue
		}
		out = append(out, protocol.CascadeChild{Domain: d, Relay: ch.relay, LastSeenMS: ch.seen.UnixMilli()})
	}
	for _, d := range c.named {
		if _, heard := c.children[d]; !heard {
			out = append(out, protocol.CascadeChild{Domain: d})
		}
	}
	slices.SortFunc(out, func(a, b protocol.CascadeChild) int { return strings.Compare(a.Domain, b.Domain) })
	return out
}
