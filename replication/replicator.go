package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/store"
)

// MemberSource is the membership the Replicator follows; *gossip.Gossip is
// one.
type MemberSource interface {
	// Ring returns the live members in ring order.
	Ring() []gossip.Member
	// Members returns every member known, in any state. Failed and leaving
	// ones count as down (Machine.SetDown); left ones are forgotten.
	Members() []gossip.Member
	// Subscribe returns a channel signalled after membership changes, and
	// a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
}

// Transport delivers messages to peers; LinkTransport is the one a node
// uses. Send may block (dialing, a full socket buffer), but must return
// once ctx ends: Close waits for it. The Replicator calls it from one
// goroutine per peer, so a slow or dead peer delays only its own messages.
// An error just counts: the Machine retransmits what goes unacknowledged.
// A Peer with no Addr is one that cannot be dialed: the transport reaches
// it over a link it opened, if any. The receiving side hands each message
// to Replicator.Deliver with the sender's node ID from its link's
// handshake.
type Transport interface {
	Send(ctx context.Context, to Peer, msg Message) error
}

// Errors of Deliver.
var (
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("upu: replication closed")
	// ErrBusy is returned when the inbox is full: the message is dropped,
	// and its sender will send it again.
	ErrBusy = errors.New("upu: replication busy")
)

// LogFeed wakes the Replicator when the store's log grew; *store.Feed is
// one.
type LogFeed interface {
	C() <-chan struct{}
}

// LogHolder is the ring's hold on the store's log; *store.Holder is one. The
// Replicator acknowledges the stable vector to it: every member has applied
// what it covers, so no member needs those entries from this node's log.
type LogHolder interface {
	Ack(vv crdt.VersionVector)
}

// LogHooks connect the Replicator to the store's log; a nil field is left
// out (without a Feed, Notify is the only wake-up).
type LogHooks struct {
	Feed   LogFeed
	Holder LogHolder
}

// TransportCounters count what the Replicator could not hand on.
type TransportCounters struct {
	InboxDropped  uint64 `json:"inbox_dropped"`  // Deliver refused: inbox full
	WritesDropped uint64 `json:"writes_dropped"` // a push or chunk refused: the store is that far behind
	QueueDropped  uint64 `json:"queue_dropped"`  // a peer's send queue was full
	SendErrors    uint64 `json:"send_errors"`
}

// Replicator runs a Machine: one goroutine feeds it ticks from the clock,
// membership changes, local-write notices, received messages and the
// store writes made, hands the writes it has ready to an applier goroutine
// (so that a slow commit holds up neither ticks nor acks of what is
// already written) and its messages to per-peer sender goroutines.
type Replicator struct {
	cfg     Config
	m       *Machine
	members MemberSource
	tr      Transport
	clk     clock.Clock
	log     *logrus.Entry

	inbox     chan inbound
	notify    chan struct{}
	upKick    chan struct{}
	upMu      sync.Mutex
	upWant    upstream        // what SetUpstream asked last, guarded by upMu
	appended  <-chan struct{} // the log feed's wake-up; nil: none
	holder    LogHolder       // nil: none
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	stats         atomic.Pointer[Stats]
	inboxDropped  atomic.Uint64
	writesDropped atomic.Uint64
	queueDropped  atomic.Uint64
	sendErrors    atomic.Uint64

	// Owned by the loop goroutine.
	st         Store
	senders    map[crdt.NodeID]*sender
	wg         sync.WaitGroup // senders, the applier, and the canceller in run
	writes     chan Write     // to the applier, in Ready's order
	persisted  chan persisted // from the applier
	pending    int            // writes handed to the applier, not yet back
	succ       crdt.NodeID
	succDown   bool
	up         Peer // the upstream the Machine was given
	syncs      map[crdt.NodeID]bool
	stable     crdt.VersionVector // what the holder was last given
	stableSet  bool
	collect    crdt.VersionVector // what the store was last given
	collectSet bool
	contact    contact
	resyncing  bool
}

// upstream is the Machine's upstream as SetUpstream and ClearUpstream ask.
type upstream struct {
	peer  Peer // zero ID: none
	relay bool
	hold  bool // Machine.HoldCollection
}

type inbound struct {
	from crdt.NodeID
	msg  Message
}

// persisted is a write the applier made, or failed to.
type persisted struct {
	w   Write
	err error
}

// sender is one peer's send queue and the goroutine draining it.
type sender struct {
	to     Peer
	ch     chan Message
	cancel context.CancelFunc
}

// New starts replication of st's log among the members that members
// reports, over tr. Ticks come from clk every cfg.TickInterval. log may be
// nil (nothing is logged). hooks.Feed wakes it when the log grew;
// hooks.Holder is acknowledged the stable vector whenever that advances.
//
// It also runs what needs the clock: it gives st the stable vector
// (Store.SetStable) whenever it changes; it notes when a peer last
// answered (any ack), persisting that at most once a minute and on Close
// (Store.SetLastContact); and it makes the node resync (Machine.Resync)
// when that was longer than cfg.ResyncAfter ago, at start (as the store
// recorded it) or when a peer answers again. A resync must finish before
// the contact is persisted again, so a node that stops mid-resync resyncs
// after its restart.
func New(cfg Config, st Store, members MemberSource, tr Transport, clk clock.Clock, log *logrus.Entry, hooks LogHooks) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if members == nil || tr == nil || clk == nil {
		return nil, fmt.Errorf("%w: members, transport and clock are required", ErrInvalidConfig)
	}
	m, err := NewMachine(cfg, st)
	if err != nil {
		return nil, err
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	cfg = cfg.withDefaults()
	r := &Replicator{
		cfg:     cfg,
		m:       m,
		members: members,
		tr:      tr,
		clk:     clk,
		log:     log,
		inbox:   make(chan inbound, cfg.InboxSize),
		notify:  make(chan struct{}, 1),
		upKick:  make(chan struct{}, 1),
		holder:  hooks.Holder,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		st:      st,
		senders: map[crdt.NodeID]*sender{},
		// At most InboxSize writes are pending, so the applier never
		// blocks on its answers.
		writes:    make(chan Write, cfg.InboxSize),
		persisted: make(chan persisted, cfg.InboxSize),
		syncs:     map[crdt.NodeID]bool{},
		contact:   contact{after: cfg.ResyncAfter},
	}
	if hooks.Feed != nil {
		r.appended = hooks.Feed.C()
	}
	last := st.LastContact()
	resync := r.contact.start(last, clk.Now())
	if resync {
		m.Resync()
	}
	r.publish()
	fields := logrus.Fields{
		"tick_ms":          logging.Millis(cfg.TickInterval),
		"retransmit_ticks": cfg.RetransmitTicks,
		"probe_ticks":      cfg.ProbeTicks,
		"max_batch":        cfg.MaxBatchEntries,
		"max_batch_bytes":  cfg.MaxBatchBytes,
		"max_inflight":     cfg.MaxInflight,
		"digest_bits":      cfg.DigestBits,
		"resync_after":     cfg.ResyncAfter.String(),
	}
	if !last.IsZero() {
		fields["last_contact"] = last.UTC().Format(time.RFC3339)
	}
	log.WithFields(fields).Info("replication started")
	if resync {
		log.WithFields(logrus.Fields{"last_contact": last.UTC().Format(time.RFC3339), logging.FieldEvent: logging.EventResync}).
			Info("replication resync: no peer answered for longer than the resync horizon; this node drops what the domain has collected since and serves no sync until done")
	}
	go r.run()
	return r, nil
}

// Notify tells replication that the local log grew. It never blocks;
// notices coalesce. It is the wake-up for a Replicator without a LogFeed.
func (r *Replicator) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// SetUpstream gives the Machine its upstream (Machine.SetUpstream): the
// member of the parent domain this node reports to, which it also pushes
// the log to with relay. It never blocks; the loop takes the latest.
func (r *Replicator) SetUpstream(p Peer, relay bool) {
	r.setUpstream(func(u *upstream) { u.peer, u.relay = p, relay })
}

// ClearUpstream forgets the upstream: the domain has no parent.
func (r *Replicator) ClearUpstream() {
	r.setUpstream(func(u *upstream) { u.peer, u.relay = Peer{}, false })
}

// HoldCollection says whether the domain has child domains
// (Machine.HoldCollection); it never blocks.
func (r *Replicator) HoldCollection(hold bool) { r.setUpstream(func(u *upstream) { u.hold = hold }) }

func (r *Replicator) setUpstream(change func(*upstream)) {
	r.upMu.Lock()
	change(&r.upWant)
	r.upMu.Unlock()
	select {
	case r.upKick <- struct{}{}:
	default:
	}
}

// applyUpstream hands the Machine what SetUpstream asked last.
func (r *Replicator) applyUpstream() {
	r.upMu.Lock()
	u := r.upWant
	r.upMu.Unlock()
	if prev := r.up; prev != u.peer {
		// The sender for the one before (or for the same node at another
		// address) goes: it is no member.
		if s := r.senders[prev.ID]; s != nil && prev.ID != 0 {
			r.dropSender(prev.ID, s)
		}
		if s := r.senders[u.peer.ID]; s != nil && s.to.Addr != u.peer.Addr {
			r.dropSender(u.peer.ID, s)
		}
		r.up = u.peer
	}
	r.m.HoldCollection(u.hold)
	if u.peer.ID == 0 {
		r.m.ClearUpstream()
		return
	}
	r.m.SetUpstream(u.peer, u.relay)
}

// dropSender stops the sender s for id; what it had queued is dropped, and
// retransmitted if it mattered.
func (r *Replicator) dropSender(id crdt.NodeID, s *sender) {
	s.cancel()
	close(s.ch)
	delete(r.senders, id)
}

// Deliver hands over a message received from the member from; the caller
// must not modify msg afterwards. It never blocks: when the inbox is full
// it returns ErrBusy and drops the message.
func (r *Replicator) Deliver(from crdt.NodeID, msg Message) error {
	select {
	case <-r.stop:
		return ErrClosed
	default:
	}
	select {
	case r.inbox <- inbound{from: from, msg: msg}:
		return nil
	default:
		r.inboxDropped.Add(1)
		return ErrBusy
	}
}

// Stats returns the state and counters as of the last tick.
func (r *Replicator) Stats() Stats {
	st := *r.stats.Load()
	st.Transport = TransportCounters{
		InboxDropped:  r.inboxDropped.Load(),
		WritesDropped: r.writesDropped.Load(),
		QueueDropped:  r.queueDropped.Load(),
		SendErrors:    r.sendErrors.Load(),
	}
	return st
}

// StableVector returns the Machine's StableVector as of the last tick.
func (r *Replicator) StableVector() crdt.VersionVector { return r.stats.Load().Stable }

// Close stops replication and waits for its goroutines. Messages not yet
// sent are dropped; nothing is lost, since peers learn what they lack by
// comparing vectors. It is idempotent.
func (r *Replicator) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.log.Info("replication stopped")
	})
	return nil
}

// drainLimit bounds the inputs taken between two Ready calls, so that a
// flood of messages cannot starve ticks.
const drainLimit = 256

func (r *Replicator) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	// Close cancels the applier's store call, and the sends.
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		<-r.stop
		cancel()
	}()
	go r.runApplier(ctx)
	defer func() {
		r.saveContact(true)
		cancel()
		for id, s := range r.senders {
			close(s.ch)
			delete(r.senders, id)
		}
		close(r.writes)
		r.wg.Wait()
	}()
	ticker := r.clk.NewTicker(r.cfg.TickInterval)
	defer ticker.Stop()
	changes, unsubscribe := r.members.Subscribe()
	defer unsubscribe()
	for {
		ticked := false
		select {
		case <-r.stop:
			return
		case <-ticker.C():
			r.m.Tick()
			ticked = true
		case _, ok := <-changes:
			if !ok {
				changes = nil // gossip closed: keep the last view
				continue
			}
			r.setMembers()
		case <-r.notify:
			r.m.LocalWrite()
		case <-r.appended:
			r.m.LocalWrite()
		case <-r.upKick:
			r.applyUpstream()
		case in := <-r.inbox:
			r.step(ctx, in)
		case p := <-r.persisted:
			r.onPersisted(p)
		}
		r.drain(ctx)
		r.flush(ctx)
		r.observe()
		if ticked {
			r.publish()
		}
	}
}

// drain takes the inputs already waiting, so that one Ready batches what
// they cause.
func (r *Replicator) drain(ctx context.Context) {
	for range drainLimit {
		select {
		case in := <-r.inbox:
			r.step(ctx, in)
		case p := <-r.persisted:
			r.onPersisted(p)
		case <-r.notify:
			r.m.LocalWrite()
		case <-r.appended:
			r.m.LocalWrite()
		default:
			return
		}
	}
}

// runApplier makes the Machine's writes in the store, in order, and hands
// each back to the loop; once Close has begun, it only hands them back.
func (r *Replicator) runApplier(ctx context.Context) {
	defer r.wg.Done()
	for w := range r.writes {
		err := ctx.Err()
		if err == nil {
			err = w.Apply(ctx, r.st)
		}
		r.persisted <- persisted{w: w, err: err}
	}
}

// onPersisted reports a write the applier made, or failed to, to the
// Machine.
func (r *Replicator) onPersisted(p persisted) {
	r.pending--
	r.m.Persisted(&p.w, p.err)
	switch {
	case p.err == nil:
	case errors.Is(p.err, store.ErrClosed), errors.Is(p.err, context.Canceled):
		if r.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			r.log.WithError(p.err).Debug("replication write during shutdown")
		}
	default:
		r.log.WithError(p.err).WithFields(logrus.Fields{
			logging.FieldOp:   p.w.Type().String(),
			logging.FieldPeer: p.w.From.String(),
		}).WithField(logging.FieldEvent, logging.EventReplicationError).Warn("replication message not applied")
	}
}

func (r *Replicator) step(ctx context.Context, in inbound) {
	debug := r.log.Logger.IsLevelEnabled(logrus.DebugLevel)
	if debug {
		r.log.WithFields(logrus.Fields{
			logging.FieldOp:   in.msg.Type.String(),
			logging.FieldPeer: in.from.String(),
			"id":              in.msg.ID,
			"entries":         len(in.msg.Entries),
			"records":         len(in.msg.Records),
		}).Debug("replication received")
	}
	err := r.m.Step(ctx, in.from, in.msg)
	// Any message is contact: a node that crashes before its first probe
	// round has still received the domain's entries, and must resync when
	// it comes back after long.
	if r.contact.answered(r.clk.Now()) && !r.m.Resyncing() {
		r.m.Resync()
		r.log.WithFields(logrus.Fields{logging.FieldPeer: in.from.String(), logging.FieldEvent: logging.EventResync}).
			Info("replication resync: a peer is heard again after longer than the resync horizon; this node drops what the domain has collected since and serves no sync until done")
	}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		if debug {
			r.log.WithError(err).Debug("replication step during shutdown")
		}
	default:
		r.log.WithError(err).WithFields(logrus.Fields{
			logging.FieldOp:   in.msg.Type.String(),
			logging.FieldPeer: in.from.String(),
		}).WithField(logging.FieldEvent, logging.EventReplicationError).Warn("replication message not applied")
	}
}

func (r *Replicator) setMembers() {
	var down []crdt.NodeID
	for _, mb := range r.members.Members() {
		if mb.State != gossip.StateFailed && mb.State != gossip.StateLeaving {
			continue
		}
		if id, err := crdt.ParseNodeID(mb.ID); err == nil {
			down = append(down, id)
		}
	}
	r.m.SetDown(down)
	ring := r.members.Ring()
	peers := make([]Peer, 0, len(ring))
	live := make(map[crdt.NodeID]string, len(ring))
	for _, mb := range ring {
		id, err := crdt.ParseNodeID(mb.ID)
		if err != nil {
			r.log.WithError(err).WithField(logging.FieldRemote, mb.GossipAddr).WithField(logging.FieldEvent, logging.EventReplicationError).Warn("member with a bad node id left out of replication")
			continue
		}
		peers = append(peers, Peer{ID: id, Addr: mb.Addr})
		live[id] = mb.Addr
	}
	r.m.SetMembers(peers)
	for id, s := range r.senders {
		if id == r.up.ID && s.to.Addr == r.up.Addr {
			continue // the upstream is no member, yet stays
		}
		if addr, ok := live[id]; !ok || addr != s.to.Addr {
			r.dropSender(id, s)
		}
	}
}

// flush hands the Machine's writes to the applier and its messages to the
// peers' senders. Writes past InboxSize pending are refused: left
// unacknowledged, they come again.
func (r *Replicator) flush(ctx context.Context) {
	rd := r.m.Ready()
	for i := range rd.Writes {
		if r.pending == cap(r.writes) {
			r.writesDropped.Add(1)
			r.m.Persisted(&rd.Writes[i], ErrBusy)
			continue
		}
		r.pending++
		r.writes <- rd.Writes[i]
	}
	if len(rd.Messages) == 0 {
		return
	}
	debug := r.log.Logger.IsLevelEnabled(logrus.DebugLevel)
	for _, env := range rd.Messages {
		s := r.senders[env.To.ID]
		if s == nil {
			sctx, cancel := context.WithCancel(ctx)
			s = &sender{to: env.To, ch: make(chan Message, r.cfg.SendQueue), cancel: cancel}
			r.senders[env.To.ID] = s
			r.wg.Add(1)
			go r.runSender(sctx, s)
		}
		select {
		case s.ch <- env.Msg:
		default:
			r.queueDropped.Add(1)
		}
		if debug {
			r.log.WithFields(logrus.Fields{
				logging.FieldOp:     env.Msg.Type.String(),
				logging.FieldPeer:   env.To.ID.String(),
				logging.FieldRemote: env.To.Addr,
				"id":                env.Msg.ID,
				"entries":           len(env.Msg.Entries),
				"records":           len(env.Msg.Records),
			}).Debug("replication send")
		}
	}
}

// runSender sends s's messages in order until the loop closes s.ch.
func (r *Replicator) runSender(ctx context.Context, s *sender) {
	defer r.wg.Done()
	defer s.cancel()
	for msg := range s.ch {
		if ctx.Err() != nil {
			continue // drain: the peer left or replication is closing
		}
		if err := r.tr.Send(ctx, s.to, msg); err != nil {
			r.sendErrors.Add(1)
			if r.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
				r.log.WithError(err).WithFields(logrus.Fields{
					logging.FieldOp:     msg.Type.String(),
					logging.FieldPeer:   s.to.ID.String(),
					logging.FieldRemote: s.to.Addr,
				}).Debug("replication send failed")
			}
		}
	}
}

// observe logs the ring and reachability changes the last input caused:
// a new successor at info; a successor that stopped answering at warn,
// once, and at info when it answers again. It persists the last contact
// when due, and at once when a resync ends.
func (r *Replicator) observe() {
	if resyncing := r.m.Resyncing(); resyncing != r.resyncing {
		r.resyncing = resyncing
		if !resyncing {
			// The sync's last chunk came from a peer: contact, whether an
			// ack got here since or not.
			r.contact.answered(r.clk.Now())
			r.log.Info("replication resync done")
			r.saveContact(true)
		}
	}
	r.saveContact(false)
	succ, ok := r.m.Successor()
	if succ.ID != r.succ {
		if ok {
			r.log.WithFields(logrus.Fields{
				logging.FieldPeer:   succ.ID.String(),
				logging.FieldRemote: succ.Addr,
			}).Info("replication successor changed")
		} else {
			r.log.Info("replication has no successor: this node is alone")
		}
		r.succ, r.succDown = succ.ID, false
	}
	if !ok {
		return
	}
	down := r.m.Unresponsive(succ.ID)
	if down != r.succDown {
		entry := r.log.WithFields(logrus.Fields{logging.FieldPeer: succ.ID.String(), logging.FieldRemote: succ.Addr})
		if down {
			entry.WithField(logging.FieldEvent, logging.EventPeerUnreachable).Warn("replication successor not answering: partition or overload?")
		} else {
			entry.Info("replication successor answering again")
		}
		r.succDown = down
	}
}

// publish makes the Machine's stats visible to Stats, gives the store the
// stable vector when it changed, and logs digest syncs starting and
// ending.
func (r *Replicator) publish() {
	st := r.m.Stats()
	r.stats.Store(&st)
	if !r.stableSet || (st.Stable == nil) != (r.stable == nil) || !st.Stable.Equal(r.stable) {
		r.stable, r.stableSet = st.Stable, true
		if r.holder != nil && st.Stable != nil {
			r.holder.Ack(st.Stable)
		}
	}
	if !r.collectSet || (st.Collect == nil) != (r.collect == nil) || !st.Collect.Equal(r.collect) {
		r.st.SetStable(st.Collect)
		r.collect, r.collectSet = st.Collect, true
	}
	for id := range r.syncs {
		if !slices.ContainsFunc(st.Peers, func(p PeerStats) bool { return p.ID == id }) {
			delete(r.syncs, id) // the peer left
		}
	}
	for _, p := range st.Peers {
		if p.Snapshot != r.syncs[p.ID] {
			entry := r.log.WithField(logging.FieldPeer, p.ID.String())
			if p.Snapshot {
				entry.Info("replication digest sync started: the log no longer reaches back to what the peer has, or it resyncs")
				r.syncs[p.ID] = true
			} else {
				entry.Info("replication digest sync ended")
				delete(r.syncs, p.ID)
			}
		}
	}
}

// contactSaveEvery is how often, at most, the last contact is persisted
// while peers answer.
const contactSaveEvery = time.Minute

// saveContact persists the last contact when it is due (at most once per
// contactSaveEvery), or whenever it is newer than what was saved if now is
// set; never while a resync is under way.
func (r *Replicator) saveContact(now bool) {
	at := r.clk.Now()
	if r.m.Resyncing() || !r.contact.due(at, now) {
		return
	}
	// Close cancels the loop's context before this last save: give it its
	// own bound.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.st.SetLastContact(ctx, r.contact.last); err != nil {
		r.log.WithError(err).WithField(logging.FieldEvent, logging.EventStoreError).Warn("replication: last contact not saved")
		return
	}
	r.contact.markSaved(at)
}

// contact follows when a peer last answered this node, which decides
// whether it must resync, and what the store holds of it.
type contact struct {
	after   time.Duration // Config.ResyncAfter
	last    time.Time     // the latest answer; zero: none known
	saved   time.Time     // what the store holds
	savedAt time.Time     // when that was saved; zero: not since start
}

// start takes the time the store holds at start-up, and reports whether
// it is older than the horizon.
func (c *contact) start(saved, now time.Time) bool {
	c.last, c.saved = saved, saved
	return !saved.IsZero() && now.Sub(saved) > c.after
}

// answered records an answer at now, and reports whether the silence
// before it was longer than the horizon.
func (c *contact) answered(now time.Time) bool {
	long := !c.last.IsZero() && now.Sub(c.last) > c.after
	c.last = now
	return long
}

// due reports whether the last contact should be persisted at now: it is
// newer than what was saved, and force is set or contactSaveEvery has
// passed since the last save.
func (c *contact) due(now time.Time, force bool) bool {
	return c.last.After(c.saved) && (force || c.savedAt.IsZero() || now.Sub(c.savedAt) >= contactSaveEvery)
}

// markSaved records that the last contact was persisted at now.
func (c *contact) markSaved(now time.Time) { c.saved, c.savedAt = c.last, now }
