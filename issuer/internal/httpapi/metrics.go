package httpapi

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	outcomes  *Outcomes
	refreshes *prometheus.CounterVec
	logouts   *prometheus.CounterVec
}

// Outcomes counts logins and registrations by outcome ("ok" or the
// problem code), wherever they happen: the API and the account pages
// share one.
type Outcomes struct{ logins, registrations *prometheus.CounterVec }

// NewOutcomes registers the counters with r.
func NewOutcomes(r prometheus.Registerer) *Outcomes {
	o := &Outcomes{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_logins_total",
			Help: "Logins by outcome (ok or the problem code)."}, []string{"outcome"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_registrations_total",
			Help: "Registrations by outcome."}, []string{"outcome"}),
	}
	r.MustRegister(o.logins, o.registrations)
	return o
}

// Login counts a login that ended with err (nil: signed in).
func (o *Outcomes) Login(err error) { o.logins.WithLabelValues(outcome(err)).Inc() }

// Registration counts a registration that ended with err (nil: created).
func (o *Outcomes) Registration(err error) { o.registrations.WithLabelValues(outcome(err)).Inc() }

func newMetrics(r prometheus.Registerer, outcomes *Outcomes) *metrics {
	if outcomes == nil {
		outcomes = NewOutcomes(r)
	}
	m := &metrics{
		outcomes: outcomes,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_http_requests_total",
			Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "jotguard_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route", "method"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_refreshes_total",
			Help: "Refresh token rotations by outcome."}, []string{"outcome"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_logouts_total",
			Help: "Logouts by outcome."}, []string{"outcome"}),
	}
	r.MustRegister(m.requests, m.latency, m.refreshes, m.logouts)
	return m
}

func (h *handler) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the problem now, so the status is known
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		method := c.Request().Method
		nameSpan(c.Request().Context(), method, c.Path())
		took := time.Since(start)
		h.m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		h.m.latency.WithLabelValues(route, method).Observe(took.Seconds())
		// The access log: the route (never the raw path or query, which
		// could carry a token), the request id from the context. Probes and
		// scrapes only at debug.
		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			level = slog.LevelDebug
		}
		if ctx := c.Request().Context(); h.log.Enabled(ctx, level) { // spare the arguments' cost
			h.log.LogAttrs(ctx, level, "request", slog.String("method", method), slog.String("route", route),
				slog.Int("status", status), slog.String("ip", c.RealIP()), slog.Duration("duration", took))
		}
		return nil
	}
}
