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

// Protocol names the front end a connection's requests come by (NewBatch),
// for the metrics.
type Protocol uint8

const (
	ProtocolNative Protocol = iota // the binary protocol
	ProtocolRESP                   // the Redis protocol
	numProtocols
)

var protocolNames = [numProtocols]string{ProtocolNative: "native", ProtocolRESP: "resp"}

// metrics counts every operation by protocol and result and times it. The
// series of successes and misses and the timers are resolved once, so the
// hot path only adds to atomics.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	ok       [numProtocols][numOps]prometheus.Counter
	notFound [numProtocols][numOps]prometheus.Counter
	timer    [numProtocols][numOps]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upu_requests_total",
			Help: "Data operations answered, by protocol, operation and result (ok or what failed).",
		}, []string{"protocol", "op", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "upu_request_seconds",
			Help:    "Time a data operation took in the service, by protocol and operation: a read's, or the commit of the batch a write went in.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18),
		}, []string{"protocol", "op"}),
	}
	for p, proto := range protocolNames {
		for o, name := range opNames {
			if name != "" {
				m.ok[p][o] = m.requests.WithLabelValues(proto, name, KindOK.String())
				m.notFound[p][o] = m.requests.WithLabelValues(proto, name, KindNotFound.String())
				m.timer[p][o] = m.seconds.WithLabelValues(proto, name)
			}
		}
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds)
	}
	return m
}

// observe counts one operation's result.
func (m *metrics) observe(p Protocol, o op, err error) {
	switch err {
	case nil:
		m.ok[p][o].Inc()
		return
	case ErrNotFound:
		m.notFound[p][o].Inc()
		return
	}
	m.requests.WithLabelValues(protocolNames[p], opNames[o], KindOf(err).String()).Inc()
}

// time records how long an operation took.
func (m *metrics) time(p Protocol, o op, d time.Duration) { m.timer[p][o].Observe(d.Seconds()) }
