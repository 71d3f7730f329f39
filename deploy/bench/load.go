package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one closed-loop load run: N operations by Conc workers.
type Result struct {
	Name    string        `json:"name"`
	Conc    int           `json:"conc"`
	N       int           `json:"n"`
	Errors  int           `json:"errors"`
	Elapsed time.Duration `json:"elapsed"`
	// Quantiles holds the latency at q = i/1000, i = 0…1000 (1001 points).
	Quantiles []time.Duration `json:"quantiles"`
	FirstErr  string          `json:"first_err,omitempty"`
	// CPU is the CPU time watched processes used during the run (issuer
	// workloads only).
	CPU map[string]time.Duration `json:"cpu,omitempty"`
}

// RPS is the completed operations (errors included) per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N) / r.Elapsed.Seconds()
}

// Q returns the latency quantile q (0…1).
func (r Result) Q(q float64) time.Duration {
	if len(r.Quantiles) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Quantiles)-1) + 0.5)
	return r.Quantiles[min(max(i, 0), len(r.Quantiles)-1)]
}

// Op is one operation of worker w; i numbers operations over all workers
// (0, 1, …), and is negative for warm-up operations.
type Op func(ctx context.Context, w, i int) error

// Load runs op with conc closed-loop workers until n operations are done
// (n > 0) or for d (n == 0), after warm operations per worker that are not
// counted. Latencies are kept as raw samples and reduced to quantiles.
func Load(ctx context.Context, name string, conc, n int, d time.Duration, warm int, op Op) Result {
	var wwg sync.WaitGroup
	for w := range conc {
		wwg.Go(func() {
			for i := range warm {
				_ = op(ctx, w, -1-i)
			}
		})
	}
	wwg.Wait()
	var (
		next   atomic.Int64
		errs   atomic.Int64
		first  atomic.Value
		wg     sync.WaitGroup
		lats   = make([][]time.Duration, conc)
		stopAt time.Time
	)
	start := time.Now()
	if n == 0 {
		stopAt = start.Add(d)
	}
	for w := range conc {
		wg.Go(func() {
			buf := make([]time.Duration, 0, 4096)
			for {
				i := int(next.Add(1)) - 1 // global sequence number
				if n > 0 && i >= n || n == 0 && time.Now().After(stopAt) {
					break
				}
				t0 := time.Now()
				err := op(ctx, w, i)
				buf = append(buf, time.Since(t0))
				if err != nil {
					if errs.Add(1) == 1 {
						first.Store(err.Error())
					}
				}
				if ctx.Err() != nil {
					break
				}
			}
			lats[w] = buf
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := Result{Name: name, Conc: conc, N: len(all), Errors: int(errs.Load()), Elapsed: elapsed}
	if len(all) > 0 {
		r.Quantiles = make([]time.Duration, 1001)
		for i := range r.Quantiles {
			r.Quantiles[i] = all[min(len(all)-1, i*len(all)/1000)]
		}
	}
	if s, ok := first.Load().(string); ok {
		r.FirstErr = s
	}
	return r
}

// NewClient is a keep-alive HTTP client with enough idle connections for
// conc workers.
func NewClient(conc int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     &tls.Config{},
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
