package kafkafeed_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// BenchmarkIngest is what a verifier spends on one revocation it reads
// from the topic: authenticating the record that carries it and adding it
// to the revocation set (Feed.apply, without the broker). One op is one
// revocation: a SET each (the format of one signature per event), or a
// share of a batch of n events under one signature. ES256, as issued by
// default.
func BenchmarkIngest(b *testing.B) {
	iss := sdktest.NewIssuer(b)
	trust := iss.Trust()
	const pool = 4096 // distinct revocations, applied in turn
	now := time.Now()
	events := make([]revocation.Event, pool)
	for i := range events {
		events[i] = revocation.Event{ID: fmt.Sprintf("evt-%026d", i), Issuer: iss.URL, Subject: fmt.Sprintf("user-%022d", i),
			SessionID: fmt.Sprintf("sid-%022d", i), At: now, Reason: revocation.ReasonLogout, Initiator: "user",
			TxnID: fmt.Sprintf("req-%022d", i)}
	}
	run := func(b *testing.B, n int, records [][]byte) {
		f, err := kafkafeed.New(kafkafeed.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "bench", Replay: time.Hour,
			Set: revocation.NewSet(sdk.Retention(sdk.DefaultMaxTokenLifetime, 30*time.Second), nil)})
		if err != nil {
			b.Fatal(err)
		}
		f.Ingest(b.Context(), trust, records[0]) // keys parsed once, as in a running feed
		b.ReportAllocs()
		cpu0 := processCPU(b)
		b.ResetTimer()
		for i := 0; i < b.N; i += n {
			f.Ingest(b.Context(), trust, records[i/n%len(records)])
		}
		b.StopTimer()
		// On a shared machine the time an op takes counts the time the
		// process waited for a core too; the CPU it used does not.
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		if st := f.Stats(); st.Poison != 0 || st.Applied == 0 {
			b.Fatalf("Stats = %+v", st)
		}
	}
	b.Run("SET", func(b *testing.B) {
		records := make([][]byte, pool)
		for i, e := range events {
			records[i] = iss.RevocationSET(b, e)
		}
		run(b, 1, records)
	})
	for _, n := range []int{1, 16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			var records [][]byte
			for i := 0; i+n <= pool; i += n {
				records = append(records, iss.RevocationBatch(b, events[i:i+n]...))
			}
			run(b, n, records)
		})
	}
}

// processCPU is the user and system CPU time of the process so far: the
// benchmark's goroutine, and the garbage collector's work for it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
