package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"strconv"

	"github.com/upu/upu/crdt"
	"github.com/upu/upu/gossip"
	"github.com/upu/upu/replication"
	"github.com/upu/upu/store"
)

// registerMetrics adds the node's own collectors to its registry (no global
// state): the process, the store, and the domain. The data service and the
// protocol servers register theirs.
func registerMetrics(n *Node) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	n.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("upu_log_entries", "Entries in the replication log.", func() float64 { return float64(n.store.LogLen()) }),
		gauge("upu_keys", "Keys that are not deleted (an expired key counts until the purger finds it).", func() float64 { return float64(n.store.Stats().Keys) }),
		gauge("upu_store_bytes", "Size of the store's files on disk (0: in memory).", func() float64 { return float64(n.store.Stats().DiskBytes) }),
		gauge("upu_record_cache_bytes", "Bytes of decoded records held in memory, as the cache accounts them; at most upu_record_cache_limit_bytes.", func() float64 {
			b, _ := n.store.RecordCacheUsage()
			return float64(b)
		}),
		gauge("upu_record_cache_entries", "Keys held in the record cache, absent keys included.", func() float64 {
			_, e := n.store.RecordCacheUsage()
			return float64(e)
		}),
		gauge("upu_record_cache_limit_bytes", "The record cache's share of --max-memory.", func() float64 { return float64(n.store.Budget().RecordCache) }),
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
		gauge("upu_disk_free_bytes", "Free space of the data directory's file system, as last read (0: in memory).", func() float64 { return float64(n.store.Disk().Free) }),
		gauge("upu_disk_total_bytes", "Size of the data directory's file system, as last read (0: in memory).", func() float64 { return float64(n.store.Disk().Total) }),
		gauge("upu_up", "1 while the node serves.", func() float64 {
			if !(nodeAdmin{n}).Serving() {
				return 0
			}
			return 1
		}),
		domainCollector{n},
		levelsCollector{n},
	)
}

// levelsCollector reports Badger's LSM levels: how much each holds and how
// far behind its compactions are.
type levelsCollector struct{ n *Node }

var (
	descLevelBytes  = prometheus.NewDesc("upu_badger_level_bytes", "Bytes in one level of Badger's LSM tree.", []string{"level"}, nil)
	descLevelTables = prometheus.NewDesc("upu_badger_level_tables", "Tables in one level of Badger's LSM tree.", []string{"level"}, nil)
	descLevelScore  = prometheus.NewDesc("upu_badger_level_compaction_score",
		"Badger's compaction score of one level: over 1, a compaction of it is due; staying over 1 means compactions fall behind the writes.", []string{"level"}, nil)
)

func (levelsCollector) Describe(chan<- *prometheus.Desc) {}

func (c levelsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.n.store.Levels() {
		lv := strconv.Itoa(l.Level)
		ch <- prometheus.MustNewConstMetric(descLevelBytes, prometheus.GaugeValue, float64(l.Bytes), lv)
		ch <- prometheus.MustNewConstMetric(descLevelTables, prometheus.GaugeValue, float64(l.Tables), lv)
		ch <- prometheus.MustNewConstMetric(descLevelScore, prometheus.GaugeValue, l.Score, lv)
	}
}

// domainCollector reports the domain's membership and replication from one
// snapshot of the replicator's stats per scrape. It describes nothing up
// front (an unchecked collector): peers come and go, and a node without a
// domain has none of these.
type domainCollector struct{ n *Node }

var (
	descMembers = prometheus.NewDesc("upu_domain_members",
		"Alive members of the domain's ring, this node included.", nil, nil)
	descMembersByState = prometheus.NewDesc("upu_domain_members_by_state",
		"Members of the domain as gossip knows them, this node included, by state.", []string{"state"}, nil)
	descPeerBehind = prometheus.NewDesc("upu_replication_peer_behind_entries",
		"Log entries this node holds that the peer has not reported having.", []string{"peer"}, nil)
	descPeerLagSeconds = prometheus.NewDesc("upu_replication_peer_lag_seconds",
		"Age of the oldest log entry this node holds that the peer has not reported having (0: none).", []string{"peer"}, nil)
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
	states := map[string]int{}
	for _, m := range d.gossip.Members() {
		states[m.State.String()]++
	}
	for _, st := range []gossip.State{gossip.StateAlive, gossip.StateLeaving, gossip.StateLeft, gossip.StateFailed} {
		gauge(descMembersByState, float64(states[st.String()]), st.String())
	}
	for _, p := range rs.Peers {
		id := p.ID.String()
		gauge(descPeerBehind, float64(p.Behind), id)
		gauge(descPeerLagSeconds, c.lagSeconds(p), id)
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

// lagSeconds is the age of the oldest entry p lacks, over the origins it
// lags in: read from the log, whose entries carry their write's time.
func (c domainCollector) lagSeconds(p replication.PeerStats) float64 {
	now := c.n.clk.Now()
	var oldest float64
	for _, e := range p.Lag {
		if at, ok := store.WrittenAfter(c.n.store, e.Node, p.Acked.Get(e.Node)); ok {
			oldest = max(oldest, now.Sub(at).Seconds())
		} // else trimmed: a digest sync stands in for those entries
	}
	return oldest
}

// vectorMap renders a version vector as node ID -> counter; nil for none.
func vectorMap(vv crdt.VersionVector) map[string]uint64 {
	if len(vv) == 0 {
		return nil
	}
	m := make(map[string]uint64, len(vv))
	for _, e := range vv {
		m[e.Node.String()] = e.Counter
	}
	return m
}
