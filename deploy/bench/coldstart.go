package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// ColdStart is scenario 12: bin/verifier started on a topic whose replay
// window holds N live revocations, written as the issuer writes them
// (signed batches) and, for comparison, as it wrote them before (one SET
// each): how long until /readyz answers 200, the CPU that took, and the
// RSS the revocations add to an idle verifier.
type ColdStart struct {
	Batch  int       // events a batch in the batched series
	Idle   ColdPoint // on an empty topic
	Series []ColdSeries
}

// ColdSeries is one record format at each window size.
type ColdSeries struct {
	Name   string
	Points []ColdPoint
}

// ColdPoint is one verifier start.
type ColdPoint struct {
	Entries   int           // live revocations in the window
	Records   int           // records they take on the topic
	Produce   time.Duration // for the bench to sign and write them (step by step, cumulative window)
	Ready     time.Duration // process start → /readyz 200
	CPU       time.Duration // the verifier's user+system CPU until then
	RSS       int64         // once ready and settled
	RSSReady  int64         // the moment it was ready
	SetSize   int           // the verifier's own count
	Applied   int           // events applied, from its metrics
	ReadyFail string        // why it never became ready
}

// coldSteps are the window sizes: batched, and one SET each (slow to write
// and to replay: up to 100,000).
func coldSteps(quick bool) (batched, sets []int) {
	if quick {
		return []int{10_000}, []int{10_000}
	}
	return []int{10_000, 100_000, 1_000_000}, []int{10_000, 100_000}
}

// coldBatch is the events a batch of the batched series: what one issuer
// replica writes with the default 20 ms batch wait at 3,200 logouts a
// second (a window of a million revocations is 2,800 a second).
const coldBatch = 64

// coldStartScenario is 12. The verifiers of the earlier scenarios are
// stopped: they would spend CPU on these records too.
func (b *bench) coldStartScenario(ctx context.Context, st *stack) {
	b.procs.StopNamed("verifier")
	iss, err := sdktest.StartIssuer()
	if err != nil {
		b.note("cold start: %v", err)
		return
	}
	defer iss.Close()
	brokers := st.ds.Env["JOTGUARD_KAFKA_BROKERS"]
	settle := 2 * time.Second
	if b.cfg.Quick {
		settle = 500 * time.Millisecond
	}
	cs := &ColdStart{Batch: coldBatch}
	b.rep.Cold = cs
	topic, err := createTopic(ctx, brokers, "bench-cold-idle")
	if err == nil {
		cs.Idle, err = b.coldRun(ctx, iss, brokers, topic, 0, settle)
	}
	if err != nil {
		b.note("cold start, idle verifier: %v", err)
		return
	}
	b.log.Printf("cold start: idle verifier ready in %s, RSS %.1f MiB", cs.Idle.Ready.Round(time.Millisecond), mib(cs.Idle.RSS))
	batched, sets := coldSteps(b.cfg.Quick)
	for _, s := range []struct {
		name  string
		per   int
		steps []int
	}{
		{fmt.Sprintf("batches of %d", coldBatch), coldBatch, batched},
		{"one SET each (before batches)", 1, sets},
	} {
		series := ColdSeries{Name: s.name}
		topic, err := createTopic(ctx, brokers, "bench-cold")
		if err != nil {
			b.note("cold start: %v", err)
			return
		}
		have, records := 0, 0
		for _, n := range s.steps {
			t0 := time.Now()
			k, err := produceRevocations(ctx, iss, brokers, topic, have, n-have, s.per)
			if err != nil {
				b.note("cold start, %s: writing %d revocations: %v", s.name, n, err)
				break
			}
			have, records = n, records+k
			produce := time.Since(t0)
			pt, err := b.coldRun(ctx, iss, brokers, topic, n, settle)
			pt.Records, pt.Produce = records, produce
			if err != nil {
				pt.ReadyFail = err.Error()
				b.note("cold start, %s, %d revocations: %v", s.name, n, err)
			}
			series.Points = append(series.Points, pt)
			b.log.Printf("cold start, %s: %d revocations (%d records, written in %s): ready in %s, CPU %s, RSS +%.1f MiB (%.1f B each), set %d",
				s.name, n, records, produce.Round(time.Millisecond), pt.Ready.Round(time.Millisecond), pt.CPU.Round(time.Millisecond),
				mib(pt.RSS-cs.Idle.RSS), float64(pt.RSS-cs.Idle.RSS)/float64(n), pt.SetSize)
			if err != nil {
				break
			}
		}
		cs.Series = append(cs.Series, series)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// coldRun starts a verifier on topic, times its readiness, and measures it
// once it settled; want is the entries it should hold.
func (b *bench) coldRun(ctx context.Context, iss *sdktest.Issuer, brokers, topic string, want int, settle time.Duration) (ColdPoint, error) {
	pt := ColdPoint{Entries: want}
	addr := freeAddr()
	t0 := time.Now()
	p, err := b.procs.Start(fmt.Sprintf("verifier-cold-%d", want), b.cfg.ServerCPUs, []string{
		"JOTGUARD_VERIFIER_ADDR=" + addr, "JOTGUARD_ISSUER=" + iss.URL, "JOTGUARD_LOG_LEVEL=warn",
		"JOTGUARD_ACCESS_TTL=" + accessTTL, "JOTGUARD_KAFKA_BROKERS=" + brokers, "JOTGUARD_REVOCATION_TOPIC=" + topic,
		"JOTGUARD_DRAIN_DELAY=0s",
	}, b.servers.verifierBin)
	if err != nil {
		return pt, err
	}
	defer p.Stop()
	c := &http.Client{Timeout: time.Second}
	for {
		if p.Cmd.ProcessState != nil {
			return pt, fmt.Errorf("the verifier exited: see %s", p.log.Name())
		}
		if time.Since(t0) > 2*time.Minute {
			return pt, fmt.Errorf("not ready after 2 minutes: see %s", p.log.Name())
		}
		if resp, err := c.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				pt.Ready = time.Since(t0)
				break
			}
		}
		select {
		case <-ctx.Done():
			return pt, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	pt.CPU, _ = procCPU(p.Cmd.Process.Pid)
	pt.RSSReady = p.RSS()
	metrics := "http://" + addr + "/metrics"
	pt.SetSize = int(metric(metrics, "jotguard_verifier_revocation_set_size"))
	pt.Applied = int(metric(metrics, "jotguard_verifier_revocation_events_applied_total"))
	time.Sleep(settle)
	pt.RSS = p.RSS()
	if pt.SetSize < want {
		return pt, fmt.Errorf("ready with %d entries of %d", pt.SetSize, want)
	}
	return pt, nil
}

// createTopic makes a fresh topic of 6 partitions, as the dev stack's.
func createTopic(ctx context.Context, brokers, prefix string) (string, error) {
	topic := prefix + "-" + strings.ToLower(rand.Text()[:8])
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 6, ReplicationFactor: 1}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", topic, err)
	}
	return topic, nil
}

// produceRevocations writes n session revocations, numbered from from, as
// records of per events each: batches signed by iss (per > 1), or one SET
// each, keyed by the user, as the issuer writes them. The signing runs on
// every core; it answers how many records it wrote.
func produceRevocations(ctx context.Context, iss *sdktest.Issuer, brokers, topic string, from, n, per int) (int, error) {
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Topic: topic,
		Balancer: &kafka.Hash{}, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireOne, AllowAutoTopicCreation: false} // BatchBytes: 1 MiB, under a feed's 2 MiB
	defer w.Close()
	now := time.Now()
	event := func(i int) revocation.Event {
		return revocation.Event{ID: fmt.Sprintf("cold-evt-%017d", i), Issuer: iss.URL,
			Subject: fmt.Sprintf("cold-user-%016d", i%50_000), SessionID: fmt.Sprintf("cold-sid-%017d", i),
			At: now, IssuedAt: now, Reason: revocation.ReasonLogout, Initiator: "user", TxnID: fmt.Sprintf("cold-req-%017d", i)}
	}
	records := (n + per - 1) / per
	const chunk = 2000 // records signed, then written, at a time
	workers := runtime.NumCPU()
	for lo := 0; lo < records; lo += chunk {
		hi := min(lo+chunk, records)
		msgs := make([]kafka.Message, hi-lo)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Go(func() {
				for r := lo + k; r < hi; r += workers {
					first := from + r*per
					last := min(first+per, from+n)
					if per == 1 {
						e := event(first)
						msgs[r-lo] = kafka.Message{Key: []byte(e.Subject), Value: iss.RevocationSET(nil, e),
							Headers: []kafka.Header{{Key: "content-type", Value: []byte(revocation.ContentType)}}}
						continue
					}
					events := make([]revocation.Event, 0, last-first)
					for i := first; i < last; i++ {
						events = append(events, event(i))
					}
					msgs[r-lo] = kafka.Message{Value: iss.RevocationBatch(nil, events...),
						Headers: []kafka.Header{{Key: "content-type", Value: []byte(revocation.BatchContentType)}}}
				}
			})
		}
		wg.Wait()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return lo, err
		}
	}
	return records, nil
}
