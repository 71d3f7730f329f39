package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A request in flight when the context ends completes; readiness went off
// before the server stopped accepting.
func TestServeDrainsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var drained atomic.Bool
	var drainedBeforeReply atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		drainedBeforeReply.Store(drained.Load())
		if r.Context().Err() != nil {
			http.Error(w, "cancelled", 499)
			return
		}
		_, _ = io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, srv, func() { drained.Store(true) }, "127.0.0.1:0", 0, 10*time.Second,
			slog.New(slog.DiscardHandler), func(a string) { addr <- a })
	}()
	base := "http://" + <-addr
	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		res, err := http.Get(base + "/slow")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		resc <- result{status: res.StatusCode, body: string(b)}
	}()
	<-started
	cancel()
	for !drained.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	r := <-resc
	if r.err != nil || r.status != 200 || r.body != "done" {
		t.Fatalf("in-flight request: %+v", r)
	}
	if !drainedBeforeReply.Load() {
		t.Fatal("readiness was not turned off before the drain")
	}
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
