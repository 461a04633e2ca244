package protocol

// Opcode names the message a frame carries. A response uses its request's
// opcode with FlagResponse set, or OpError.
type Opcode uint8

// Client operations occupy 0x01–0x3F, replication and relay traffic between
// peers 0x40–0x7F, admin operations 0x80–0xBF. Values are part of the wire
// format: never renumber.
const (
	OpHello Opcode = 0x01 // handshake; first frame in each direction
	OpPing  Opcode = 0x02 // liveness probe; any frame also counts as one
	OpGet   Opcode = 0x03
	OpSet   Opcode = 0x04
	OpDel   Opcode = 0x05
	OpIncr  Opcode = 0x06 // signed delta: decr is a negative incr
	OpError Opcode = 0x3F // response only: a typed error

	// OpPeerLink turns the connection into a peer link (package peer): after
	// its empty response, both sides speak the link's multiplexed format on
	// the same socket and no more frames. Only connections with the peer
	// role may send it. 0x40 is reserved: it is not used again.
	OpPeerLink Opcode = 0x41

	OpStatus   Opcode = 0x80
	OpDigest   Opcode = 0x81
	OpLogLevel Opcode = 0x82
	OpMembers  Opcode = 0x83 // the domain's members as this node sees them
	// OpSlowThreshold reads or changes the duration past which a request
	// is logged at warn.
	OpSlowThreshold Opcode = 0x84
	// OpCascadeStatus reads the node's place in the domain hierarchy: its
	// parent, the relay, lag, children (CascadeStatus).
	OpCascadeStatus Opcode = 0x85
	// OpCascadeParent sets or clears the domain's parent (admin role).
	OpCascadeParent Opcode = 0x86
	// OpBackup streams a backup of the node's store (admin role): the one
	// request is answered with a BackupResponse, then BackupChunks, and
	// the connection is closed after the last.
	OpBackup Opcode = 0x87
)

var opcodeNames = [256]string{
	OpHello:         "hello",
	OpPing:          "ping",
	OpGet:           "get",
	OpSet:           "set",
	OpDel:           "del",
	OpIncr:          "incr",
	OpError:         "error",
	OpPeerLink:      "peer-link",
	OpStatus:        "status",
	OpDigest:        "digest",
	OpLogLevel:      "log-level",
	OpMembers:       "members",
	OpSlowThreshold: "slow-threshold",
	OpCascadeStatus: "cascade-status",
	OpCascadeParent: "cascade-parent",
	OpBackup:        "backup",
}

// Known reports whether op is an opcode this version understands.
func (op Opcode) Known() bool { return opcodeNames[op] != "" }

// String returns the opcode's name as used in logs (the "op" field).
func (op Opcode) String() string {
	if n := opcodeNames[op]; n != "" {
		return n
	}
	return "unknown"
}
