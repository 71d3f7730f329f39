package main

import (
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A rolling update: on SIGTERM the issuer turns /readyz to 503 and keeps
// serving for JOTGUARD_DRAIN_DELAY, the time an endpoint controller takes to
// stop sending it traffic (here: one second after it first sees the 503),
// so no request fails, neither refused nor reset.
func TestSIGTERMDropsNoRequests(t *testing.T) {
	p := sdktest.StartIssuerProcess(t, map[string]string{"JOTGUARD_DRAIN_DELAY": "3s"})
	client := &http.Client{Timeout: 5 * time.Second}
	var served, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := client.Get(p.URL + "/.well-known/jwks.json")
				if err != nil || res.StatusCode != http.StatusOK {
					if failed.Add(1) == 1 {
						firstErr.Store([]any{err, res})
					}
				} else {
					served.Add(1)
				}
				if res != nil {
					res.Body.Close()
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := served.Load()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(p.URL + "/readyz")
		if err == nil {
			res.Body.Close()
		}
		if err == nil && res.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("/readyz after SIGTERM: %v, want 503 while still serving", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the endpoint controller notices, and stops sending
	close(stop)
	wg.Wait()
	t.Logf("%d requests served, %d after SIGTERM; %d failed", served.Load(), served.Load()-signalled, failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed across the SIGTERM, the first: %v", failed.Load(), firstErr.Load())
	}
	if served.Load() == signalled {
		t.Fatal("no request was served after the SIGTERM")
	}
}
