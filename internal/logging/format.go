package logging

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// Field names. Use these, never ad-hoc spellings, so that logs of every
// component can be grepped and parsed alike.
const (
	FieldNode      = "node"      // node ID of the process writing the entry
	FieldDomain    = "domain"    // the node's domain
	FieldComponent = "component" // package or subsystem: protocol, store, gossip, …
	FieldReqID     = "req_id"    // request ID (internal/reqid), on every entry about a request
	FieldOp        = "op"        // operation: get, set, push, relay, purge, …
	FieldDuration  = "duration_ms"
	FieldThreshold = "threshold_ms" // the slow threshold a slow entry was measured against
	FieldKey       = "key"          // the key a request is about
	FieldPeer      = "peer"         // node ID of another node
	FieldRemote    = "remote"       // network address of the other end
	FieldError     = "error"        // an error value; what logrus's WithError uses

	// FieldEvent is the stable keyword of what happened, on every entry
	// at warn and above (and on some info ones): what operators alert on.
	// Its values are the Event constants; docs/OPERATIONS.md lists them.
	FieldEvent = "event"

	// Audit entries.
	FieldActor  = "actor"  // who asked: a token name, "cli", a peer
	FieldAction = "action" // what was done, e.g. "cascade.set-parent"
	FieldBefore = "before" // the value before the change
	FieldAfter  = "after"  // the value after the change
)

// Events: the values of FieldEvent. They are a contract with operators'
// alerts: add new ones, never rename.
const (
	EventPeerUnreachable  = "peer_unreachable"  // a peer, the successor or the parent domain does not answer
	EventSlow             = "slow_operation"    // an operation took longer than the slow threshold
	EventRelayLag         = "relay_lag"         // the parent domain is behind this one past the lag threshold
	EventCascadeCycle     = "cascade_cycle"     // the domain tree is a cycle: relaying stopped
	EventCascadeError     = "cascade_error"     // the cascade failed otherwise (its setting, a read for a child)
	EventResync           = "resync"            // this node resyncs: it was away longer than the horizon
	EventLogTrimmed       = "log_trimmed"       // log entries trimmed before every holder had them
	EventBadToken         = "bad_token"         // a connection gave a wrong token
	EventForbidden        = "forbidden"         // a connection asked what its role may not do
	EventConnLimit        = "conn_limit"        // a connection refused: too many
	EventSlowClient       = "slow_client"       // a connection closed: its client did not read its answers
	EventProtocolError    = "protocol_error"    // a peer or client sent what cannot be read
	EventReplicationError = "replication_error" // a replication message could not be applied or a member is unusable
	EventStoreError       = "store_error"       // the store failed a write, a sync or its background work
	EventCorruptRecord    = "corrupt_record"    // a stored record does not decode
	EventInternalError    = "internal_error"    // the server failed a request
	EventListenerError    = "listener_error"    // a listener failed to accept or serve
	EventPeerLinkError    = "peer_link_error"   // a peer link could not be served
	EventShutdownTimeout  = "shutdown_timeout"  // connections closed with requests in flight
	EventMembership       = "membership"        // joining or leaving the domain did not complete
	EventLogError         = "log_error"         // the log files could not be rotated
	EventDiskFilling      = "disk_filling"      // the data directory's disk is nearly full
)

// Millis renders a duration as decimal milliseconds ("12.5") in text and
// JSON, the one way durations appear in logs: log
// logging.Millis(d) under FieldDuration.
type Millis time.Duration

func (m Millis) String() string { return string(m.append(nil)) }

// MarshalJSON writes the milliseconds as a JSON number.
func (m Millis) MarshalJSON() ([]byte, error) { return m.append(nil), nil }

func (m Millis) append(dst []byte) []byte {
	return strconv.AppendFloat(dst, float64(m)/float64(time.Millisecond), 'f', -1, 64)
}

// MaxKeyLen is how many bytes of a key Key shows.
const MaxKeyLen = 64

// Key renders a key for FieldKey: as text when it is printable UTF-8,
// otherwise as 0x and hex; past MaxKeyLen bytes it is cut, and the total
// length follows ("…(1024 bytes)"), since a log line is no place for a
// whole key of up to a kibibyte.
func Key(k []byte) string {
	shown := k
	if len(k) > MaxKeyLen {
		cut := MaxKeyLen
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut-- // do not split a rune of a text key
		}
		shown = k[:cut]
	}
	var b []byte
	if printable(shown) {
		b = append(b, shown...)
	} else {
		b = append(b, "0x"...)
		b = hex.AppendEncode(b, shown)
	}
	if len(shown) < len(k) {
		b = fmt.Appendf(b, "…(%d bytes)", len(k))
	}
	return string(b)
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

const timestampFormat = "2006-01-02T15:04:05.000000Z07:00"

func newFormatter(format string) logrus.Formatter {
	if format == FormatJSON {
		return utcFormatter{&logrus.JSONFormatter{TimestampFormat: timestampFormat}}
	}
	return utcFormatter{&logrus.TextFormatter{
		DisableColors:    true,
		FullTimestamp:    true,
		TimestampFormat:  timestampFormat,
		QuoteEmptyFields: true,
		SortingFunc:      sortKeys,
	}}
}

// utcFormatter writes timestamps in UTC, so that logs of nodes in different
// zones line up, and with the time in request IDs.
type utcFormatter struct{ inner logrus.Formatter }

func (f utcFormatter) Format(e *logrus.Entry) ([]byte, error) {
	e.Time = e.Time.UTC()
	return f.inner.Format(e)
}

// sortKeys orders text entries: time, level, msg, the fixed fields, the
// audit fields, then the rest alphabetically.
func sortKeys(keys []string) {
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(keyRank(a), keyRank(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func keyRank(key string) int {
	switch key {
	case logrus.FieldKeyTime:
		return 0
	case logrus.FieldKeyLevel:
		return 1
	case logrus.FieldKeyMsg:
		return 2
	case FieldNode:
		return 3
	case FieldDomain:
		return 4
	case FieldComponent:
		return 5
	case FieldReqID:
		return 6
	case FieldOp:
		return 7
	case FieldDuration:
		return 8
	case FieldActor:
		return 9
	case FieldAction:
		return 10
	case FieldBefore:
		return 11
	case FieldAfter:
		return 12
	}
	return 13
}
