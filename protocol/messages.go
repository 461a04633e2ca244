package protocol

import (
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/upu/upu/internal/appendbuf"
)

// Message bodies are msgpack maps with short keys; a missing key is the zero
// value, and unknown keys are ignored, so fields can be added without a
// version bump. Times are Unix milliseconds; durations are milliseconds.

// Role says what a connection may do. Clients read and write data; peers also
// send replication and relay traffic; admins also change node settings.
type Role uint8

const (
	RoleClient Role = 0
	RolePeer   Role = 1
	RoleAdmin  Role = 2
)

// String names the role as logs and refusals do.
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RolePeer:
		return "peer"
	case RoleAdmin:
		return "admin"
	}
	return strconv.Itoa(int(r))
}

// Hello is the first frame each side sends. The client's Hello states its
// version, role and token; the server's reply states what the client must
// adopt: the heartbeat interval and the idle timeout after which the server
// closes a silent connection.
type Hello struct {
	Version       uint8  `msgpack:"v"`
	NodeID        string `msgpack:"n,omitempty"`  // server: its node ID (16 hex digits)
	Domain        string `msgpack:"d,omitempty"`  // server: its domain
	HeartbeatMS   int64  `msgpack:"hb,omitempty"` // server: send something at least this often
	IdleTimeoutMS int64  `msgpack:"it,omitempty"` // server: closes connections silent this long
	MaxBody       uint32 `msgpack:"mb,omitempty"` // server: largest body it accepts
	MaxKey        uint32 `msgpack:"mk,omitempty"` // server: largest key it accepts
	MaxValue      uint32 `msgpack:"mv,omitempty"` // server: largest value it accepts
	Role          Role   `msgpack:"r,omitempty"`  // client: role asked for
	Token         string `msgpack:"t,omitempty"`  // client: secret for the role
	Client        string `msgpack:"c,omitempty"`  // client: name and version, for logs
}

// Scope says how far a read may look (DESIGN.md section 6).
type Scope uint8

const (
	ScopeLocal Scope = 0 // this node only
	ScopeUp    Scope = 1 // on a local miss, ask the parent domain, recursively
	ScopeRoot  Scope = 2 // ask the root domain and merge with the local answer
)

// GetRequest reads a key.
type GetRequest struct {
	Key      []byte `msgpack:"k"`
	Scope    Scope  `msgpack:"s,omitempty"`
	Siblings bool   `msgpack:"sb,omitempty"` // return every live sibling too
	ReqID    string `msgpack:"r,omitempty"`  // caller's request ID, kept across hops
}

// GetResponse is a read's answer. A missing key is an Error with CodeNotFound.
type GetResponse struct {
	Value    []byte    `msgpack:"v"`
	Counter  bool      `msgpack:"cn,omitempty"` // Value is a counter's decimal value
	ExpiryMS int64     `msgpack:"x,omitempty"`  // 0: no expiry
	Context  []byte    `msgpack:"c,omitempty"`  // opaque causal context for a later write
	Siblings []Sibling `msgpack:"sb,omitempty"`
	// Domain names the domain that answered a read with scope up or root;
	// empty for a local read.
	Domain string `msgpack:"dm,omitempty"`
}

// Sibling is one concurrent value of a key, returned when asked for.
type Sibling struct {
	Value    []byte `msgpack:"v"`
	ExpiryMS int64  `msgpack:"x,omitempty"`
	Deleted  bool   `msgpack:"d,omitempty"`
	Node     string `msgpack:"n"` // node that wrote it
	TimeMS   int64  `msgpack:"t"` // its hybrid logical clock, physical part
}

// SetRequest writes a value. With no Context it supersedes everything the
// node has seen of the key; with the Context of an earlier read it supersedes
// only what that read saw, and concurrent writes survive as siblings.
type SetRequest struct {
	Key     []byte `msgpack:"k"`
	Value   []byte `msgpack:"v"`
	TTLMS   int64  `msgpack:"ttl,omitempty"` // 0: no expiry
	Context []byte `msgpack:"c,omitempty"`
	ReqID   string `msgpack:"r,omitempty"`
}

// WriteResponse answers a set or del with the key's new causal context.
type WriteResponse struct {
	Context []byte `msgpack:"c,omitempty"`
}

// DelRequest deletes a key, with the same causal rule as SetRequest.
type DelRequest struct {
	Key     []byte `msgpack:"k"`
	Context []byte `msgpack:"c,omitempty"`
	ReqID   string `msgpack:"r,omitempty"`
}

// IncrRequest adds Delta (which may be negative) to a counter.
type IncrRequest struct {
	Key   []byte `msgpack:"k"`
	Delta int64  `msgpack:"d"`
	ReqID string `msgpack:"r,omitempty"`
}

// IncrResponse holds the counter's value on this node after the change.
type IncrResponse struct {
	Value int64 `msgpack:"v"`
}

// StatusResponse describes a node.
type StatusResponse struct {
	NodeID    string            `msgpack:"n"`
	Domain    string            `msgpack:"d"`
	Version   string            `msgpack:"ver"`
	Addr      string            `msgpack:"a"`
	StartedMS int64             `msgpack:"st"`
	Keys      int64             `msgpack:"k"`
	LogLen    int64             `msgpack:"ll"`
	Applied   map[string]uint64 `msgpack:"vv"` // origin node ID -> highest contiguous log sequence applied
	Conns     int64             `msgpack:"cc"`

	// Domain membership and replication; zero on a node that does not
	// replicate.
	Members        int64        `msgpack:"m,omitempty"`  // alive members, this node included
	Successor      string       `msgpack:"su,omitempty"` // node ID of the ring successor
	Peers          []PeerStatus `msgpack:"ps,omitempty"` // every other member in the ring
	EntriesSent    uint64       `msgpack:"es,omitempty"` // log entries pushed to peers
	EntriesApplied uint64       `msgpack:"ea,omitempty"` // peers' log entries applied here
	SendErrors     uint64       `msgpack:"se,omitempty"` // replication messages that failed to send

	// Deleted and expired keys.
	DeadRecords    int64             `msgpack:"dr,omitempty"` // records kept only for their causal context (tombstones)
	DroppedStable  uint64            `msgpack:"gs,omitempty"` // tombstones dropped once every member had seen them
	DroppedHorizon uint64            `msgpack:"gh,omitempty"` // tombstones dropped when the horizon passed
	Stable         map[string]uint64 `msgpack:"sv,omitempty"` // what every member has applied, as last reported
	Resyncing      bool              `msgpack:"rs,omitempty"` // back after longer than the horizon, resyncing
	Resyncs        uint64            `msgpack:"rc,omitempty"` // resyncs completed since start
	Syncs          uint64            `msgpack:"sy,omitempty"` // digest syncs completed towards peers since start
}

// PeerStatus is what a node knows of another member's replication.
type PeerStatus struct {
	NodeID string `msgpack:"n"`
	Addr   string `msgpack:"a"`
	// Behind counts log entries this node holds that the peer has not
	// reported having, as of its last report (exact for the successor,
	// which acknowledges every push; an upper bound for the others).
	Behind       uint64 `msgpack:"b"`
	Heard        bool   `msgpack:"h,omitempty"`  // the peer has reported its vector
	Unresponsive bool   `msgpack:"u,omitempty"`  // a wait for its answer ran out
	Snapshot     bool   `msgpack:"sn,omitempty"` // a snapshot stream to it is under way
}

// MembersResponse lists every member of the node's domain that it knows of,
// itself included, in any state, sorted by node ID.
type MembersResponse struct {
	Members []Member `msgpack:"m"`
}

// Member is one member of a domain as the answering node sees it.
type Member struct {
	NodeID     string `msgpack:"n"`
	Domain     string `msgpack:"d"`
	Addr       string `msgpack:"a"`            // binary protocol address
	GossipAddr string `msgpack:"g"`            // gossip address
	State      string `msgpack:"s"`            // alive, leaving, left or failed
	Self       bool   `msgpack:"me,omitempty"` // the answering node
}

// DigestResponse holds a hex digest of the node's live data.
type DigestResponse struct {
	Digest string `msgpack:"h"`
	Keys   int64  `msgpack:"k"`
}

// BackupResponse is the first answer to a backup request: the snapshot's
// description, before its bytes follow in BackupChunks.
type BackupResponse struct {
	NodeID    string `msgpack:"n"`           // the node backed up
	Domain    string `msgpack:"d,omitempty"` // its domain
	Digest    string `msgpack:"h"`           // the snapshot's digest, as DigestResponse's
	Keys      int64  `msgpack:"k"`           // the live keys it covers
	CreatedMS int64  `msgpack:"t"`           // when the snapshot was taken, Unix ms
	Size      int64  `msgpack:"sz"`          // the backup file's length in bytes
}

// BackupChunk carries the next bytes of the backup file; the last one
// says so.
type BackupChunk struct {
	Data []byte `msgpack:"b,omitempty"`
	End  bool   `msgpack:"e,omitempty"`
}

// LogLevelRequest changes the node's log level at run time; an empty Level
// only reads it. The response is a LogLevelRequest holding the level now.
type LogLevelRequest struct {
	Level string `msgpack:"l,omitempty"`
}

// SlowThresholdRequest changes the node's slow-operation threshold at run
// time; an empty Threshold only reads it. The response holds the threshold
// now. A threshold is a Go duration ("50ms", "1s").
type SlowThresholdRequest struct {
	Threshold string `msgpack:"t,omitempty"`
}

// CascadeParentRequest sets the domain's parent (Domain, and Seeds: binary
// protocol addresses of some of its members) or, with Clear, removes it.
// The response is the CascadeStatus after the change.
type CascadeParentRequest struct {
	Domain string   `msgpack:"d,omitempty"`
	Seeds  []string `msgpack:"sd,omitempty"`
	Clear  bool     `msgpack:"c,omitempty"`
}

// CascadeStatus is a node's view of the domain hierarchy (DESIGN.md
// section 6). Lag counts what this domain holds that the parent has not
// reported having.
type CascadeStatus struct {
	Domain string   `msgpack:"d" json:"domain"`
	Parent string   `msgpack:"p,omitempty" json:"parent,omitempty"` // empty: this domain is a root
	Seeds  []string `msgpack:"sd,omitempty" json:"seeds,omitempty"`
	// Path is this domain's path to the root as last learned, this domain
	// first and the root last.
	Path []string `msgpack:"pa,omitempty" json:"path,omitempty"`
	// State is one of root, relaying, standby (another member relays),
	// connecting, unreachable, cycle.
	State  string `msgpack:"s" json:"state"`
	Reason string `msgpack:"why,omitempty" json:"reason,omitempty"` // why not relaying, when it should
	Relay  string `msgpack:"r,omitempty" json:"relay,omitempty"`    // node ID of the domain's relay member
	// Upstream is the parent member this node reports to (the relay's
	// stream goes there).
	Upstream     string `msgpack:"u,omitempty" json:"upstream,omitempty"`
	UpstreamAddr string `msgpack:"ua,omitempty" json:"upstream_addr,omitempty"`
	// ParentMembers are the parent's members as the parent last said.
	ParentMembers  []string           `msgpack:"pm,omitempty" json:"parent_members,omitempty"`
	LagEntries     uint64             `msgpack:"le" json:"lag_entries"`
	LagSeconds     float64            `msgpack:"ls" json:"lag_seconds"`
	Origins        []CascadeOriginLag `msgpack:"o,omitempty" json:"origins,omitempty"`
	EntriesRelayed uint64             `msgpack:"er,omitempty" json:"entries_relayed"`
	BytesRelayed   uint64             `msgpack:"br,omitempty" json:"bytes_relayed"`
	LastError      string             `msgpack:"e,omitempty" json:"last_error,omitempty"`
	LastErrorMS    int64              `msgpack:"em,omitempty" json:"last_error_ms,omitempty"`
	Children       []CascadeChild     `msgpack:"ch,omitempty" json:"children,omitempty"`
}

// CascadeOriginLag is the lag of one origin's log towards the parent.
type CascadeOriginLag struct {
	Origin  string  `msgpack:"o" json:"origin"`
	Entries uint64  `msgpack:"n" json:"entries"`
	Seconds float64 `msgpack:"s" json:"seconds"`
}

// CascadeChild is a child domain: one whose parent setting names this
// domain, or whose relay was heard from lately; Relay and LastSeenMS are
// empty when its relay reports to another member.
type CascadeChild struct {
	Domain     string `msgpack:"d" json:"domain"`
	Relay      string `msgpack:"r" json:"relay"`
	LastSeenMS int64  `msgpack:"t" json:"last_seen_ms"`
}

// AppendFrame appends a frame with header h and body msg (msgpack-encoded; nil
// means an empty body) to dst, setting h.Len. The hot messages are encoded
// without reflection and without allocating (see msgfast.go).
func AppendFrame(dst []byte, h Header, msg any) ([]byte, error) {
	start := len(dst)
	h.Len = 0
	dst = AppendHeader(dst, h)
	if msg == nil {
		return dst, nil
	}
	dst, ok := appendBodyFast(dst, msg)
	if !ok {
		var err error
		if dst, err = appendBodyLibrary(dst, msg); err != nil {
			return dst[:start], fmt.Errorf("upu: encode %s body: %w", h.Opcode, err)
		}
	}
	putLen(dst[start:], uint32(len(dst)-start-HeaderSize))
	return dst, nil
}

// appendBodyLibrary appends msg encoded by the msgpack library.
func appendBodyLibrary(dst []byte, msg any) ([]byte, error) {
	w := appendbuf.Writer{B: dst}
	enc := msgpack.GetEncoder()
	enc.Reset(&w)
	enc.UseCompactInts(true)
	err := enc.Encode(msg)
	msgpack.PutEncoder(enc)
	return w.B, err
}

// DecodeBody decodes a frame body into msg, which should be a pointer to a
// zero message: keys missing from the body leave fields as they are. The body
// must be exactly one msgpack map. Failures wrap ErrBadBody. Nothing decoded
// shares memory with body. The []byte and string fields of a hot message
// share one copy of it (one allocation), which any one of them keeps alive.
func DecodeBody(body []byte, msg any) error {
	return decodeBody(body, msg, true)
}

// DecodeBodyNoCopy is DecodeBody, except that the []byte fields of the hot
// messages (GetRequest, GetResponse and its Siblings, SetRequest,
// WriteResponse, DelRequest, IncrRequest) alias body instead of copying it:
// they are valid only while body is, which for a Frame's Body means until
// the decoder's next Write or ReadOnce. A caller that keeps a field longer,
// or hands it to code that might, must copy it or use DecodeBody. Strings
// are always copied, and other messages decode as with DecodeBody.
func DecodeBodyNoCopy(body []byte, msg any) error {
	return decodeBody(body, msg, false)
}

func decodeBody(body []byte, msg any, clone bool) error {
	if err := checkBody(body); err != nil {
		return fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	handled, err := decodeBodyFast(body, msg, clone)
	if !handled {
		err = decodeBodyLibrary(body, msg)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	return nil
}

// decodeBodyLibrary decodes a body that passed checkBody with the msgpack
// library.
func decodeBodyLibrary(body []byte, msg any) error {
	return msgpack.Unmarshal(body, msg)
}

func putLen(hdr []byte, n uint32) {
	hdr[12], hdr[13], hdr[14], hdr[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}
