package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/upu/upu/protocol"
)

// Action is a kind of thing a connection asks to do.
type Action uint8

const (
	// ActionData reads and writes data (get, set, del, incr, ping).
	ActionData Action = iota
	// ActionStatus reads the node's state: status, members, digest,
	// cascade status, the log level and slow threshold.
	ActionStatus
	// ActionReplicate sends replication and relay traffic (a peer link).
	ActionReplicate
	// ActionAdmin changes the node: the cascade's parent, the log level and
	// thresholds; takes backups; reads pprof.
	ActionAdmin
)

// Role is the role an action needs.
func (a Action) Role() protocol.Role {
	switch a {
	case ActionReplicate:
		return protocol.RolePeer
	case ActionAdmin:
		return protocol.RoleAdmin
	}
	return protocol.RoleClient
}

// OpAction is the action an opcode of the binary protocol asks for. A
// request that only reads a setting (log level, slow threshold) is status;
// changing one is ActionAdmin, which its handler checks.
func OpAction(op protocol.Opcode) Action {
	switch op {
	case protocol.OpStatus, protocol.OpDigest, protocol.OpMembers, protocol.OpCascadeStatus,
		protocol.OpLogLevel, protocol.OpSlowThreshold:
		return ActionStatus
	case protocol.OpPeerLink:
		return ActionReplicate
	case protocol.OpCascadeParent, protocol.OpBackup:
		return ActionAdmin
	}
	return ActionData
}

// Grant is the set of roles a connection holds.
type Grant uint8

func roleBit(r protocol.Role) Grant { return 1 << r }

// Grants of one role and what it includes: peers and admins are clients
// too.
const (
	GrantClient = Grant(1 << protocol.RoleClient)
	GrantPeer   = GrantClient | Grant(1<<protocol.RolePeer)
	GrantAdmin  = GrantClient | Grant(1<<protocol.RoleAdmin)
	GrantAll    = GrantPeer | GrantAdmin
)

// Has reports whether g holds role r.
func (g Grant) Has(r protocol.Role) bool { return r <= protocol.RoleAdmin && g&roleBit(r) != 0 }

// May reports whether g allows action a.
func (g Grant) May(a Action) bool { return g.Has(a.Role()) }

// Tokens are the configured secrets of the roles. With none set every role
// is open (a development node). Otherwise a role whose own token is unset
// falls back to a stronger rule: the client role is open, the admin role
// needs the client token, and the peer role is closed, so that holding the
// client token never lets a connection inject replication traffic.
type Tokens struct {
	Client, Peer, Admin string
}

// Open reports whether no token is set: anyone may do anything.
func (t Tokens) Open() bool { return t.Client == "" && t.Peer == "" && t.Admin == "" }

// Grant is what presenting token grants. Every configured token is
// compared, each through its SHA-256 so that neither the comparison's time
// nor its length gives a token away.
func (t Tokens) Grant(token string) Grant {
	if t.Open() {
		return GrantAll
	}
	sum := sha256.Sum256([]byte(token))
	is := func(want string) bool {
		w := sha256.Sum256([]byte(want))
		return want != "" && subtle.ConstantTimeCompare(sum[:], w[:]) == 1
	}
	client, peer, admin := is(t.Client), is(t.Peer), is(t.Admin)
	var g Grant
	if client || t.Client == "" {
		g |= GrantClient
	}
	if peer {
		g |= GrantPeer
	}
	if admin || t.Admin == "" && (client || t.Client == "") {
		g |= GrantAdmin
	}
	return g
}

// ErrUnauthorized is wrapped by every refusal.
var ErrUnauthorized = errors.New("upu: unauthorized")

// Refusal is a request refused for want of a role: Need is the role needed,
// What the operation asked (an opcode's or command's name), empty for the
// handshake.
type Refusal struct {
	Need protocol.Role
	What string
}

// Message is the refusal without the sentinel's prefix, as an error frame
// carries it under the code unauthorized.
func (r *Refusal) Message() string {
	if r.What == "" {
		return r.Need.String() + " role needed: the token presented does not grant it"
	}
	return r.Need.String() + " role needed for " + r.What
}

func (r *Refusal) Error() string { return ErrUnauthorized.Error() + ": " + r.Message() }

// Unwrap returns ErrUnauthorized.
func (r *Refusal) Unwrap() error { return ErrUnauthorized }
