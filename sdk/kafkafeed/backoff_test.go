package kafkafeed_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
)

// The Feed's retries wait d/2 to d, d doubling from 100 ms to 10 s, with
// jitter; Reset starts again from 100 ms.
func TestBackOffDoublesToTenSecondsWithJitter(t *testing.T) {
	b := kafkafeed.NewBackOff()
	distinct := map[time.Duration]bool{}
	for range 3 {
		d := 100 * time.Millisecond
		for range 12 {
			wait := b.NextBackOff()
			if wait < d/2 || wait > d+time.Nanosecond {
				t.Fatalf("wait %s, want %s to %s", wait, d/2, d)
			}
			distinct[wait] = true
			d = min(2*d, 10*time.Second)
		}
		b.Reset()
	}
	if len(distinct) < 30 {
		t.Errorf("%d distinct waits in 36: too little jitter", len(distinct))
	}
}
