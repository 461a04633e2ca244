package auth

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/upu/upu/internal/clock"
	"github.com/upu/upu/internal/confcheck"
	"github.com/upu/upu/internal/logging"
	"github.com/upu/upu/protocol"
)

// Kind is why a connection was refused.
type Kind uint8

const (
	// KindBadToken: the token presented does not grant the role asked
	// (logged as EventBadToken).
	KindBadToken Kind = iota
	// KindForbidden: the connection's grant does not allow the request
	// (logged as EventForbidden).
	KindForbidden
	kinds
)

func (k Kind) event() string {
	if k == KindForbidden {
		return logging.EventForbidden
	}
	return logging.EventBadToken
}

// FailuresConfig configures a listener's failure reporting. Zero fields
// take their defaults.
type FailuresConfig struct {
	// Protocol names the listener in the metric and the log lines:
	// native, resp or http.
	Protocol string
	// Interval is the least time between two log lines of one kind: a scan
	// trying tokens makes one line per interval, with the count of the
	// refusals it stands for.
	Interval time.Duration
}

// DefaultFailuresConfig returns the defaults.
func DefaultFailuresConfig() FailuresConfig { return FailuresConfig{Interval: 10 * time.Second} }

// ErrInvalidConfig is wrapped by every problem FailuresConfig.Validate
// reports.
var ErrInvalidConfig = errors.New("upu: invalid auth config")

// Validate reports every invalid field.
func (c FailuresConfig) Validate() error {
	var l confcheck.List
	if c.Protocol == "" {
		l.Add("Protocol", c.Protocol, "must name the listener")
	}
	if c.Interval < 0 {
		l.Add("Interval", c.Interval, "must not be negative")
	}
	return l.Err(ErrInvalidConfig)
}

// FailuresDeps are what Failures reports to. Clock may be nil (the system
// clock); Registerer may be nil (the metric is kept but not exported).
type FailuresDeps struct {
	Log        *logrus.Entry
	Clock      clock.Clock
	Registerer prometheus.Registerer
}

// Failures counts the refusals of one listener in
// upu_auth_failures_total{protocol,role} and logs them at warn, at most
// one line per kind per interval. It is safe for concurrent use.
type Failures struct {
	interval time.Duration
	log      *logrus.Entry
	clk      clock.Clock
	total    *prometheus.CounterVec

	mu      sync.Mutex
	windows [kinds]window
}

// window is the log state of one kind: when its last line was written and
// how many refusals went unlogged since.
type window struct {
	last       time.Time
	suppressed int
}

// NewFailures makes a listener's failure reporting.
func NewFailures(cfg FailuresConfig, deps FailuresDeps) (*Failures, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		return nil, errors.New("auth: FailuresDeps.Log is required")
	}
	f := &Failures{
		interval: cmp.Or(cfg.Interval, DefaultFailuresConfig().Interval),
		log:      deps.Log.WithField("protocol", cfg.Protocol),
		clk:      cmp.Or[clock.Clock](deps.Clock, clock.Real()),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "upu_auth_failures_total",
			Help:        "Requests refused for a bad token or a role not granted, by protocol and by the role needed.",
			ConstLabels: prometheus.Labels{"protocol": cfg.Protocol},
		}, []string{"role"}),
	}
	for _, r := range []protocol.Role{protocol.RoleClient, protocol.RolePeer, protocol.RoleAdmin} {
		f.total.WithLabelValues(r.String())
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(f.total); err != nil {
			return nil, fmt.Errorf("auth: metrics: %w", err)
		}
	}
	return f, nil
}

// Record counts a refusal of kind from remote, which needed role need to do
// what (empty for a handshake), and logs it unless a line of its kind was
// written less than an interval ago. No token is ever logged.
func (f *Failures) Record(kind Kind, remote string, need protocol.Role, what string) {
	f.total.WithLabelValues(need.String()).Inc()
	now := f.clk.Now()
	f.mu.Lock()
	w := &f.windows[kind]
	if !w.last.IsZero() && now.Sub(w.last) < f.interval {
		w.suppressed++
		f.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.last, w.suppressed = now, 0
	f.mu.Unlock()
	// suppressed is how many refusals of this kind went unlogged since the
	// last line.
	fields := logrus.Fields{logging.FieldRemote: remote, "role": need.String(), "suppressed": suppressed}
	if what != "" {
		fields[logging.FieldOp] = what
	}
	msg := "refused: the token presented does not grant the role asked"
	if kind == KindForbidden {
		msg = "refused: the connection's role may not do this"
	}
	f.log.WithFields(fields).WithField(logging.FieldEvent, kind.event()).Warn(msg)
}

// FailureCount reads upu_auth_failures_total{protocol,role} from g: zero
// when the series is absent. Tests and checks of every front end use it.
func FailureCount(g prometheus.Gatherer, proto string, role protocol.Role) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, fam := range families {
		if fam.GetName() != "upu_auth_failures_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["protocol"] == proto && labels["role"] == role.String() {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, nil
}
