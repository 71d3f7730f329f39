package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := New(Config{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	phc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC = %q", phc)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery", phc); !ok || rehash || err != nil {
		t.Fatalf("Verify(right) = %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, "correct horse batterY", phc); ok {
		t.Fatal("Verify(wrong) = true")
	}
	if ok, _, err := h.Verify(ctx, "x", "garbage"); ok || err != nil {
		t.Fatalf("Verify(garbage hash) = %v %v", ok, err)
	}
	if err := h.Dummy(ctx, "whatever"); err != nil {
		t.Fatal(err)
	}
	// New parameters: the old hash still verifies and asks for a rehash.
	h2, _ := New(Config{Params: Params{Memory: 128, Time: 1, Threads: 1}})
	if ok, rehash, err := h2.Verify(ctx, "correct horse battery", phc); !ok || !rehash || err != nil {
		t.Fatalf("Verify(old params) = %v %v %v, want ok and rehash", ok, rehash, err)
	}
}

func TestDefaultIsOWASP(t *testing.T) {
	h, _ := New(Config{})
	if !strings.HasPrefix(h.dummy, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("dummy = %q", h.dummy)
	}
}

// A saturated hasher answers ErrBusy after the queue wait instead of queueing forever.
func TestSaturatedIsBusy(t *testing.T) {
	h, _ := New(Config{Params: cheap, Concurrency: 1, QueueWait: 10 * time.Millisecond})
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hash(t.Context(), "password12345"); !errors.Is(err, auth.ErrBusy) {
		t.Fatalf("Hash while saturated: %v, want ErrBusy", err)
	}
	// A caller that gives up while queued is told the same, not an unknown error.
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	h.wait = time.Hour
	if _, err := h.Hash(gone, "password12345"); !errors.Is(err, auth.ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash given up while queued: %v, want ErrBusy and context.Canceled", err)
	}
	release()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := h.Hash(context.Background(), "password12345"); err != nil && !errors.Is(err, auth.ErrBusy) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := h.Waiting(); n != 0 {
		t.Fatalf("Waiting() = %d after all done", n)
	}
}
