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

	// Audit entries.
	FieldActor  = "actor"  // who asked: a token name, "cli", a peer
	FieldAction = "action" // what was done, e.g. "cascade.set-parent"
	FieldBefore = "before" // the value before the change
	FieldAfter  = "after"  // the value after the change
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
