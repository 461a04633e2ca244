package kv

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// op indexes the operations the service counts and times: the write ops,
// then the reads.
type op uint8

const (
	opSet    = op(OpSet)
	opDel    = op(OpDel)
	opIncr   = op(OpIncr)
	opExpire = op(OpExpire)
	opAppend = op(OpAppend)
	opGet    = opAppend + 1
	opScan   = opAppend + 2
	numOps   = opAppend + 3
)

var opNames = [numOps]string{
	opSet: "set", opDel: "del", opIncr: "incr", opExpire: "expire", opAppend: "append",
	opGet: "get", opScan: "scan",
}

// metrics counts every operation by result and times it. The series of
// successes and misses and the timers are resolved once, so the hot path
// only adds to atomics.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	ok       [numOps]prometheus.Counter
	notFound [numOps]prometheus.Counter
	timer    [numOps]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upu_requests_total",
			Help: "Data operations answered, from either protocol, by operation and result (ok or what failed).",
		}, []string{"op", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "upu_request_seconds",
			Help:    "Time a data operation took in the service: a read's, or the commit of the batch a write went in.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18),
		}, []string{"op"}),
	}
	for o, name := range opNames {
		if name != "" {
			m.ok[o] = m.requests.WithLabelValues(name, KindOK.String())
			m.notFound[o] = m.requests.WithLabelValues(name, KindNotFound.String())
			m.timer[o] = m.seconds.WithLabelValues(name)
		}
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds)
	}
	return m
}

// observe counts one operation's result.
func (m *metrics) observe(o op, err error) {
	switch err {
	case nil:
		m.ok[o].Inc()
		return
	case ErrNotFound:
		m.notFound[o].Inc()
		return
	}
	m.requests.WithLabelValues(opNames[o], KindOf(err).String()).Inc()
}

// time records how long an operation took.
func (m *metrics) time(o op, d time.Duration) { m.timer[o].Observe(d.Seconds()) }
