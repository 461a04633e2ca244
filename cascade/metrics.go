package cascade

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics exports the status as metrics, read when scraped.
func registerMetrics(reg prometheus.Registerer, c *Cascade) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("upu_cascade_relay", "1 while this node relays its domain's log to the parent domain.", func() float64 {
			return one(c.status.Load().State == StateRelaying)
		}),
		gauge("upu_cascade_has_parent", "1 when the domain has a parent.", func() float64 {
			return one(c.status.Load().Parent != "")
		}),
		gauge("upu_cascade_cycle", "1 while the parent's path to the root passes through this domain (relaying stopped).", func() float64 {
			return one(c.status.Load().State == StateCycle)
		}),
		gauge("upu_cascade_lag_entries", "Log entries this node holds that its parent-domain upstream has not reported having.", func() float64 {
			return float64(c.status.Load().LagEntries)
		}),
		gauge("upu_cascade_lag_seconds", "Age of the oldest log entry the parent domain lacks, over every origin.", func() float64 {
			return c.status.Load().LagSeconds
		}),
		counter("upu_cascade_relayed_entries_total", "Log entries pushed to the parent domain.", func() float64 {
			return float64(c.status.Load().EntriesRelayed)
		}),
		counter("upu_cascade_relayed_bytes_total", "Encoded bytes pushed to the parent domain.", func() float64 {
			return float64(c.status.Load().BytesRelayed)
		}),
		gauge("upu_cascade_children", "Child domains: by their parent settings, or their relay heard from lately.", func() float64 {
			return float64(len(c.childList()))
		}),
		originLag{c},
	)
}

// originLag reports the lag of each origin the parent lacks entries of. It
// describes nothing up front (an unchecked collector): origins come and go.
type originLag struct{ c *Cascade }

var (
	descOriginLagEntries = prometheus.NewDesc("upu_cascade_origin_lag_entries",
		"Log entries of one origin that the parent-domain upstream has not reported having; only lagging origins are listed.", []string{"origin"}, nil)
	descOriginLagSeconds = prometheus.NewDesc("upu_cascade_origin_lag_seconds",
		"Age of the oldest entry of one origin that the parent domain lacks; only lagging origins are listed.", []string{"origin"}, nil)
)

func (originLag) Describe(chan<- *prometheus.Desc) {}

func (o originLag) Collect(ch chan<- prometheus.Metric) {
	for _, l := range o.c.status.Load().Origins {
		ch <- prometheus.MustNewConstMetric(descOriginLagEntries, prometheus.GaugeValue, float64(l.Entries), l.Origin)
		ch <- prometheus.MustNewConstMetric(descOriginLagSeconds, prometheus.GaugeValue, l.Seconds, l.Origin)
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
