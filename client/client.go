package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upu/upu/protocol"
)

// Client talks to a list of UPU nodes. It is safe for concurrent use; Close
// releases it.
type Client struct {
	cfg       Config
	nodes     []*node
	preferred atomic.Uint32 // index of the node that served last
	closed    atomic.Bool
	wg        sync.WaitGroup // every goroutine of the client
	calls     sync.Pool      // *call
	stats     counters
}

type counters struct {
	dials, dialFailures, lateReplies, timeouts, retries, pings, idleCloses atomic.Uint64
	connsOpen                                                              atomic.Int64
}

// Stats counts what the client did since New.
type Stats struct {
	Dials        uint64 // connection attempts
	DialFailures uint64 // attempts that failed to connect or shake hands
	ConnsOpen    int64  // connections open now
	LateReplies  uint64 // replies that came after their call timed out, discarded
	Timeouts     uint64 // calls that ended with ErrTimeout
	Retries      uint64 // calls repeated after their connection broke
	Pings        uint64 // heartbeat pings sent
	IdleCloses   uint64 // connections dropped because nothing arrived for the idle timeout
}

// Item is a value read by Get.
type Item struct {
	Value   []byte
	Counter bool      // Value is a counter's decimal value
	Expiry  time.Time // zero: never expires
	// Context is the causal context to pass to WithContext in a later Set or
	// Del that should supersede exactly what this read saw.
	Context  []byte
	Siblings []Sibling // with WithSiblings: every live concurrent value
	// Domain is the domain that answered a read of scope up or root; empty
	// for a local read.
	Domain string
}

// Sibling is one concurrent value of a key.
type Sibling struct {
	Value   []byte
	Expiry  time.Time // zero: never expires
	Deleted bool
	Node    string    // node that wrote it
	Time    time.Time // when it was written, by that node's clock
}

// New returns a client for cfg. It does not connect: each node is dialled
// when a call first needs it.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Nodes = slices.Clone(cfg.Nodes)
	c := &Client{cfg: cfg}
	c.calls.New = func() any { return newCall() }
	for _, addr := range cfg.Nodes {
		c.nodes = append(c.nodes, &node{c: c, addr: addr, conns: make([]atomic.Pointer[conn], cfg.ConnsPerNode)})
	}
	return c, nil
}

// Dial returns a client for cfg that has reached a node: it pings within
// ctx and fails if no node answers.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes every connection, fails the calls in flight with ErrClosed
// and waits for every goroutine of the client. Later calls fail with
// ErrClosed.
func (c *Client) Close() error {
	if !c.closed.Swap(true) {
		for _, n := range c.nodes {
			for _, cn := range n.close() {
				cn.fail(ErrClosed)
			}
		}
	}
	c.wg.Wait()
	return nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Dials:        s.dials.Load(),
		DialFailures: s.dialFailures.Load(),
		ConnsOpen:    s.connsOpen.Load(),
		LateReplies:  s.lateReplies.Load(),
		Timeouts:     s.timeouts.Load(),
		Retries:      s.retries.Load(),
		Pings:        s.pings.Load(),
		IdleCloses:   s.idleCloses.Load(),
	}
}

// Get reads key. A missing key is ErrNotFound.
func (c *Client) Get(ctx context.Context, key []byte, opts ...GetOption) (Item, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	cl.get.Key = key
	for _, o := range opts {
		o.applyGet(&cl.get)
	}
	if cl.get.Scope > protocol.ScopeRoot {
		return Item{}, fmt.Errorf("%w: unknown scope %d", ErrBadRequest, cl.get.Scope)
	}
	r := request{op: protocol.OpGet, body: &cl.get, key: key, keyed: true, retry: true}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return Item{}, err
	}
	if err := decode(cl, r.op, &cl.getResp); err != nil {
		return Item{}, err
	}
	return newItem(&cl.getResp), nil
}

// Set writes value under key and returns the key's new causal context.
func (c *Client) Set(ctx context.Context, key, value []byte, opts ...SetOption) ([]byte, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	cl.set.Key, cl.set.Value = key, value
	for _, o := range opts {
		o.applySet(&cl.set)
	}
	if cl.set.TTLMS < 0 {
		return nil, fmt.Errorf("%w: negative ttl", ErrBadRequest)
	}
	r := request{op: protocol.OpSet, body: &cl.set, key: key, value: value, keyed: true, valued: true, retry: len(cl.set.Context) > 0}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return nil, err
	}
	if err := decode(cl, r.op, &cl.write); err != nil {
		return nil, err
	}
	return cl.write.Context, nil
}

// Del deletes key.
func (c *Client) Del(ctx context.Context, key []byte, opts ...DelOption) error {
	cl := c.getCall()
	defer c.putCall(cl)
	cl.del.Key = key
	for _, o := range opts {
		o.applyDel(&cl.del)
	}
	r := request{op: protocol.OpDel, body: &cl.del, key: key, keyed: true, retry: len(cl.del.Context) > 0}
	return c.roundTrip(ctx, cl, &r)
}

// Incr adds n to the counter under key and returns its value on the node
// that applied it. A broken connection is not retried once the request may
// have been sent: then the error says the outcome is unknown.
func (c *Client) Incr(ctx context.Context, key []byte, n int64, opts ...IncrOption) (int64, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	cl.incr.Key, cl.incr.Delta = key, n
	for _, o := range opts {
		o.applyIncr(&cl.incr)
	}
	r := request{op: protocol.OpIncr, body: &cl.incr, key: key, keyed: true}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return 0, err
	}
	if err := decode(cl, r.op, &cl.incrResp); err != nil {
		return 0, err
	}
	return cl.incrResp.Value, nil
}

// Decr subtracts n from the counter under key, as Incr(-n).
func (c *Client) Decr(ctx context.Context, key []byte, n int64, opts ...IncrOption) (int64, error) {
	if n == math.MinInt64 {
		return 0, fmt.Errorf("%w: decrement out of range", ErrBadRequest)
	}
	return c.Incr(ctx, key, -n, opts...)
}

// Ping checks that a node answers.
func (c *Client) Ping(ctx context.Context) error {
	cl := c.getCall()
	defer c.putCall(cl)
	return c.roundTrip(ctx, cl, &request{op: protocol.OpPing, retry: true})
}

// Status describes the node that answers.
func (c *Client) Status(ctx context.Context) (protocol.StatusResponse, error) {
	var st protocol.StatusResponse
	err := c.admin(ctx, protocol.OpStatus, &st)
	return st, err
}

// Digest returns the digest of the live data of the node that answers.
func (c *Client) Digest(ctx context.Context) (protocol.DigestResponse, error) {
	var d protocol.DigestResponse
	err := c.admin(ctx, protocol.OpDigest, &d)
	return d, err
}

// Members lists the members of the answering node's domain as it sees
// them, itself included, in any state.
func (c *Client) Members(ctx context.Context) ([]protocol.Member, error) {
	var m protocol.MembersResponse
	err := c.admin(ctx, protocol.OpMembers, &m)
	return m.Members, err
}

func (c *Client) admin(ctx context.Context, op protocol.Opcode, reply any) error {
	cl := c.getCall()
	defer c.putCall(cl)
	r := request{op: op, retry: true}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return err
	}
	return decode(cl, op, reply)
}

// LogLevel sets the log level of the node that answers and returns the level
// now; an empty level only reads it. Changing it needs the admin role.
func (c *Client) LogLevel(ctx context.Context, level string) (string, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	cl.level.Level = level
	r := request{op: protocol.OpLogLevel, body: &cl.level, retry: level == ""}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return "", err
	}
	var now protocol.LogLevelRequest
	if err := decode(cl, r.op, &now); err != nil {
		return "", err
	}
	return now.Level, nil
}

// SlowThreshold sets the slow-operation threshold of the node that answers
// (a Go duration, "50ms") and returns the threshold now; an empty one only
// reads it. Changing it needs the admin role.
func (c *Client) SlowThreshold(ctx context.Context, threshold string) (string, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	req := protocol.SlowThresholdRequest{Threshold: threshold}
	r := request{op: protocol.OpSlowThreshold, body: &req, retry: threshold == ""}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return "", err
	}
	var now protocol.SlowThresholdRequest
	if err := decode(cl, r.op, &now); err != nil {
		return "", err
	}
	return now.Threshold, nil
}

// CascadeStatus describes the answering node's place in the domain
// hierarchy: its parent and path to the root, the relay, lag, the child
// domains relaying to it.
func (c *Client) CascadeStatus(ctx context.Context) (protocol.CascadeStatus, error) {
	var st protocol.CascadeStatus
	err := c.admin(ctx, protocol.OpCascadeStatus, &st)
	return st, err
}

// SetParent makes domain the parent of the answering node's domain, seeds
// being the binary-protocol addresses (HOST:PORT) of some of its members,
// and returns the cascade status after. The setting reaches every member
// of the domain. It needs the admin role; a parent that would make a cycle
// is ErrBadRequest, one that cannot be reached ErrUnavailable.
func (c *Client) SetParent(ctx context.Context, domain string, seeds []string) (protocol.CascadeStatus, error) {
	if domain == "" || len(seeds) == 0 {
		return protocol.CascadeStatus{}, fmt.Errorf("%w: a parent needs its domain and at least one seed", ErrBadRequest)
	}
	return c.cascadeParent(ctx, &protocol.CascadeParentRequest{Domain: domain, Seeds: seeds})
}

// ClearParent makes the answering node's domain a root and returns the
// cascade status after. It needs the admin role.
func (c *Client) ClearParent(ctx context.Context) (protocol.CascadeStatus, error) {
	return c.cascadeParent(ctx, &protocol.CascadeParentRequest{Clear: true})
}

// cascadeParent sends req, which may be repeated on another node when a
// connection breaks: asking for the parent a domain already has changes
// nothing.
func (c *Client) cascadeParent(ctx context.Context, req *protocol.CascadeParentRequest) (protocol.CascadeStatus, error) {
	cl := c.getCall()
	defer c.putCall(cl)
	r := request{op: protocol.OpCascadeParent, body: req, retry: true}
	if err := c.roundTrip(ctx, cl, &r); err != nil {
		return protocol.CascadeStatus{}, err
	}
	var st protocol.CascadeStatus
	err := decode(cl, r.op, &st)
	return st, err
}

// roundTrip sends r from the preferred node on and leaves the reply in cl.
// It moves to the next node when a node is down or a connection breaks
// before the request could have been applied (or r.retry says repeating it
// is safe). It visits each node once, and the first once more at the end
// when its connection broke: a restarted node is redialled at once.
func (c *Client) roundTrip(ctx context.Context, cl *call, r *request) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if ctx.Err() != nil {
		return c.expired(ctx, r.op)
	}
	cl.startTimer(c.cfg.RequestTimeout)
	n := len(c.nodes)
	start := int(c.preferred.Load())
	var lastErr error
	redial := false
	for attempt := 0; attempt < n || attempt == n && redial; attempt++ {
		i := (start + attempt) % n
		cn, err := c.nodes[i].conn(ctx, cl.timer.C)
		if err == nil {
			err = cn.exchange(ctx, cl, r, cl.timer.C)
			if err == nil {
				if i != start {
					c.preferred.CompareAndSwap(uint32(start), uint32(i))
				}
				return c.reply(cn, cl, r.op)
			}
		}
		var broken *connFailure
		switch {
		case err == errExpired:
			return c.expired(ctx, r.op)
		case errors.Is(err, ErrClosed):
			return ErrClosed
		case errors.As(err, &broken):
			if broken.sent && !r.retry {
				return fmt.Errorf("%w: %s may have been applied before the connection broke: %w", ErrUnavailable, r.op, broken)
			}
			c.stats.retries.Add(1)
			redial = redial || attempt == 0
		case cn != nil:
			return err // refused before sending: too large or malformed
		}
		lastErr = err
	}
	return &unavailableError{cause: lastErr}
}

func (c *Client) expired(ctx context.Context, op protocol.Opcode) error {
	err := expiredError(ctx, op)
	if errors.Is(err, ErrTimeout) {
		c.stats.timeouts.Add(1)
	}
	return err
}

// reply turns an error reply into a *ServerError and checks the opcode of
// any other.
func (c *Client) reply(cn *conn, cl *call, op protocol.Opcode) error {
	switch cl.op {
	case op:
		return nil
	case protocol.OpError:
		var e protocol.Error
		if err := protocol.DecodeBody(cl.body, &e); err != nil {
			return fmt.Errorf("%w: %s error reply: %w", ErrProtocol, op, err)
		}
		return &ServerError{Code: e.Code, Message: e.Message, ReqID: e.ReqID, Node: cn.node.addr, Op: op}
	}
	return fmt.Errorf("%w: %s reply to a %s request", ErrProtocol, cl.op, op)
}

func decode(cl *call, op protocol.Opcode, msg any) error {
	if err := protocol.DecodeBody(cl.body, msg); err != nil {
		return fmt.Errorf("%w: %s reply: %w", ErrProtocol, op, err)
	}
	return nil
}

func (c *Client) getCall() *call { return c.calls.Get().(*call) }

func (c *Client) putCall(cl *call) {
	cl.reset()
	c.calls.Put(cl)
}

func newItem(r *protocol.GetResponse) Item {
	it := Item{Value: r.Value, Counter: r.Counter, Expiry: msTime(r.ExpiryMS), Context: r.Context, Domain: r.Domain}
	if len(r.Siblings) > 0 {
		it.Siblings = make([]Sibling, len(r.Siblings))
		for i, s := range r.Siblings {
			it.Siblings[i] = Sibling{Value: s.Value, Expiry: msTime(s.ExpiryMS), Deleted: s.Deleted, Node: s.Node, Time: msTime(s.TimeMS)}
		}
	}
	return it
}

// msTime converts the wire's Unix milliseconds; 0 means no time.
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
