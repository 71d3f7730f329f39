package app

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jotguard/jotguard/verifier/internal/authz"

	"github.com/jotguard/jotguard/sdk/buildinfo"
)

// metrics are the verifier's Prometheus series. Decision counters are
// resolved once, so a decision costs a map lookup and two atomic adds.
type metrics struct {
	decisions map[string]prometheus.Counter
	latency   prometheus.Histogram
	handler   http.Handler
}

func newMetrics(st *state, build buildinfo.Info) *metrics {
	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_verifier_decisions_total",
		Help: "Auth decisions by reason: allowed, public, or why the token was refused."}, []string{"reason"})
	m := &metrics{
		decisions: map[string]prometheus.Counter{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "jotguard_verifier_decision_seconds",
			Help:    "Time to decide one request (token parse, verification, revocation check).",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1}}),
	}
	for _, r := range authz.Reasons() {
		m.decisions[r] = vec.WithLabelValues(r)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	bool01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jotguard_build_info",
		Help: "1, labelled with what the binary was built from."}, []string{"binary", "version", "revision", "goversion"})
	info.WithLabelValues("verifier", build.Version, build.Revision, build.GoVersion).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		vec, m.latency, info,
		gauge("jotguard_verifier_ready", "1 when /readyz answers 200.",
			func() float64 { return bool01(st.ready() == nil) }),
		gauge("jotguard_verifier_jwks_age_seconds", "Time since the JWKS was last fetched successfully.",
			func() float64 { return st.v.JWKSAge().Seconds() }),
		gauge("jotguard_verifier_revocations_enabled", "1 when a revocation feed is configured (JOTGUARD_KAFKA_BROKERS).",
			func() float64 { return bool01(st.feed != nil) }),
		gauge("jotguard_verifier_revocation_degraded", "1 while the open policy answers without a live revocation feed.",
			func() float64 { return bool01(st.degraded()) }),
	)
	if st.feed != nil {
		reg.MustRegister(
			gauge("jotguard_verifier_revocation_lag", "Revocation records written but not yet applied, over all partitions.",
				func() float64 { return float64(st.feed.Stats().Lag) }),
			gauge("jotguard_verifier_revocation_set_size", "Revocation entries held in memory.",
				func() float64 { return float64(st.set.Len()) }),
			gauge("jotguard_verifier_revocation_set_bytes", "Memory of the revocation entries' hash tables (16 bytes a slot, mostly outside the Go heap).",
				func() float64 { return float64(st.set.Bytes()) }),
			gauge("jotguard_verifier_revocation_caught_up", "1 once the start-up replay reached the end of every partition.",
				func() float64 { return bool01(st.feed.CaughtUp()) }),
			gauge("jotguard_verifier_revocation_stale", "1 while the feed has had no broker contact for longer than JOTGUARD_REVOCATION_MAX_STALENESS.",
				func() float64 { return bool01(st.feed.Stale()) }),
			gauge("jotguard_verifier_revocation_contact_age_seconds", "Time since the last successful broker round trip (-1: none yet).",
				func() float64 {
					if lc := st.feed.Stats().LastContact; !lc.IsZero() {
						return time.Since(lc).Seconds()
					}
					return -1
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_verifier_revocation_events_applied_total",
				Help: "Revocation events applied to the set."}, func() float64 { return float64(st.feed.Stats().Applied) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_verifier_revocation_batches_applied_total",
				Help: "Signed batches of revocation events verified and applied (one signature checked for all their events)."},
				func() float64 { return float64(st.feed.Stats().Batches) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_verifier_revocation_events_rejected_total",
				Help: "Revocation records that failed verification (bad signature or claims) and were skipped."},
				func() float64 { return float64(st.feed.Stats().Poison) }),
		)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// observe implements authz.Observer.
func (m *metrics) observe(reason string, took time.Duration) {
	if c, ok := m.decisions[reason]; ok {
		c.Inc()
	}
	if took > 0 {
		m.latency.Observe(took.Seconds())
	}
}
