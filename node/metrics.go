package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/upu/upu/protocol"
)

// metrics holds the node's Prometheus collectors, in a registry of its own
// (no global state). Request counters for successful operations are
// resolved once per opcode so the hot path only adds to an atomic.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	okByOp   [256]prometheus.Counter
	batch    prometheus.Histogram
	badFrame prometheus.Counter

	// The Redis listener's commands, by name, and its error replies.
	respCalls  *prometheus.CounterVec
	respErrors prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upu_requests_total",
			Help: "Requests answered, by operation and result (ok or an error code).",
		}, []string{"op", "result"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "upu_batch_seconds",
			Help:    "Time from reading a batch of pipelined requests to having all their answers.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		badFrame: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upu_bad_frames_total",
			Help: "Connections closed for a framing error.",
		}),
		respCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upu_resp_commands_total",
			Help: "Redis-protocol commands received, by command (unknown: not a command UPU serves).",
		}, []string{"cmd"}),
		respErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upu_resp_errors_total",
			Help: "Redis-protocol error replies.",
		}),
	}
	for op := range m.okByOp {
		if protocol.Opcode(op).Known() {
			m.okByOp[op] = m.requests.WithLabelValues(protocol.Opcode(op).String(), "ok")
		}
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.batch, m.badFrame, m.respCalls, m.respErrors,
		gauge("upu_connections", "Open client connections.", func() float64 { return float64(n.srv.open.Load()) }),
		gauge("upu_log_entries", "Entries in the replication log.", func() float64 { return float64(n.store.LogLen()) }),
		gauge("upu_dead_records", "Deleted or expired keys kept only for their causal context.", func() float64 { return float64(n.store.GCStats().DeadRecords) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "upu_tombstones_dropped_total", Help: "Dead records dropped, by why.", ConstLabels: prometheus.Labels{"reason": "stable"},
		}, func() float64 { return float64(n.store.GCStats().DroppedStable) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "upu_tombstones_dropped_total", Help: "Dead records dropped, by why.", ConstLabels: prometheus.Labels{"reason": "horizon"},
		}, func() float64 { return float64(n.store.GCStats().DroppedHorizon) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "upu_log_forced_trims_total", Help: "Log entries trimmed past max-log-entries while a holder (the ring) still lacked them: repaired by digest sync.",
		}, func() float64 { return float64(n.store.LogForcedTrims()) }),
		gauge("upu_up", "1 while the node serves.", func() float64 {
			if n.srv.closing.Load() {
				return 0
			}
			return 1
		}),
		domainCollector{n},
	)
	return m
}

// domainCollector reports the domain's membership and replication from one
// snapshot of the replicator's stats per scrape. It describes nothing up
// front (an unchecked collector): peers come and go, and a node without a
// domain has none of these.
type domainCollector struct{ n *Node }

var (
	descMembers = prometheus.NewDesc("upu_domain_members",
		"Alive members of the domain's ring, this node included.", nil, nil)
	descPeerBehind = prometheus.NewDesc("upu_replication_peer_behind_entries",
		"Log entries this node holds that the peer has not reported having.", []string{"peer"}, nil)
	descPeerUnresponsive = prometheus.NewDesc("upu_replication_peer_unresponsive",
		"1 while a wait for the peer's answer has run out.", []string{"peer"}, nil)
	descEntriesSent = prometheus.NewDesc("upu_replication_entries_sent_total",
		"Log entries pushed to peers.", nil, nil)
	descEntriesApplied = prometheus.NewDesc("upu_replication_entries_applied_total",
		"Peers' log entries applied here.", nil, nil)
	descSendErrors = prometheus.NewDesc("upu_replication_send_errors_total",
		"Replication messages that failed to send.", nil, nil)
	descSyncs = prometheus.NewDesc("upu_replication_digest_syncs_total",
		"Digest syncs completed towards peers whose logs this node could no longer serve.", nil, nil)
	descResyncing = prometheus.NewDesc("upu_replication_resyncing",
		"1 while the node, back after longer than the tombstone horizon, resyncs from a peer.", nil, nil)
)

func (domainCollector) Describe(chan<- *prometheus.Desc) {}

func (c domainCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.n.domain
	if d == nil {
		return
	}
	rs := d.repl.Stats()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v))
	}
	gauge(descMembers, float64(rs.Members))
	for _, p := range rs.Peers {
		id := p.ID.String()
		gauge(descPeerBehind, float64(p.Behind), id)
		unresponsive := 0.0
		if p.Unresponsive {
			unresponsive = 1
		}
		gauge(descPeerUnresponsive, unresponsive, id)
	}
	counter(descEntriesSent, rs.EntriesSent)
	counter(descEntriesApplied, rs.EntriesApplied)
	counter(descSendErrors, rs.Transport.SendErrors)
	counter(descSyncs, rs.SyncsDone)
	resyncing := 0.0
	if rs.Resyncing {
		resyncing = 1
	}
	gauge(descResyncing, resyncing)
}

// observe counts one answered request.
func (m *metrics) observe(op protocol.Opcode, err error) {
	if err == nil {
		if c := m.okByOp[op]; c != nil {
			c.Inc()
		}
		return
	}
	m.requests.WithLabelValues(op.String(), errorCode(err).String()).Inc()
}

// httpServer serves /metrics, /healthz and /debug/pprof when --http-addr is set.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done sync.WaitGroup
}

func startHTTP(n *Node, addr string) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upu: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if n.srv.closing.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	h := &httpServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: n.logger.StdLogger("http")},
		ln:  ln,
	}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.WithError(err).Error("http listener failed")
		}
	}()
	return h, nil
}

func (h *httpServer) addr() net.Addr { return h.ln.Addr() }

func (h *httpServer) close(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	h.done.Wait()
	return err
}
