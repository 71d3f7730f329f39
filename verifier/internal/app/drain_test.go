package app_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A rolling update: on the signal the verifier turns /readyz to 503 and
// keeps answering for JOTGUARD_DRAIN_DELAY, the time an endpoint controller
// takes to stop sending it traffic (here: one second after it first sees
// the 503), so no check fails, neither refused nor reset.
func TestSignalDropsNoRequests(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_DRAIN_DELAY": "3s"})
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))
	check := func() error {
		req, _ := http.NewRequest(http.MethodGet, v.URL+"/authz/forward-auth", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/")
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return &statusError{res.StatusCode}
		}
		return nil
	}
	var served, failed atomic.Int64
	var first atomic.Value
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
				if err := check(); err != nil {
					if failed.Add(1) == 1 {
						first.Store(err.Error())
					}
					continue
				}
				served.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- v.stop() }() // the signal
	signalled := served.Load()
	eventually(t, 30*time.Second, "/readyz 503 while still serving", func() bool {
		code, _ := v.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	time.Sleep(time.Second) // the endpoint controller notices, and stops sending
	close(stop)
	wg.Wait()
	t.Logf("%d checks answered, %d after the signal; %d failed", served.Load(), served.Load()-signalled, failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d checks failed across the signal, the first: %v", failed.Load(), first.Load())
	}
	if served.Load() == signalled {
		t.Fatal("no check was answered after the signal")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("app.Run: %v", err)
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
