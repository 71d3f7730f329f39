package kafkafeed_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
)

// memBound is how much a feed's memory may grow over its idle state,
// whatever is on the topic, compression bombs included.
const memBound = 64 << 20

// bombSize is what one compressed record inflates to: a few KiB on the
// wire. Before the cap, the feed held it whole, twice.
const bombSize = 150 << 20

// writeBomb writes, as a kafka-go Writer does, one batch compressed with
// codec whose one record value is size zero bytes. The writer's memory is
// released before a memProbe starts.
func writeBomb(t *testing.T, brokers []string, topic string, codec kafka.Compression, size int) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: toPartition(0), Transport: tr,
		RequiredAcks: kafka.RequireAll, Compression: codec, BatchBytes: int64(size) + 1<<20}
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("bomb"), Value: make([]byte, size)}); err != nil {
		t.Fatalf("write a %s bomb of %d MiB: %v", codec, size>>20, err)
	}
}

// memProbe measures how far the process's Go heap and resident memory rise
// above where they were when it started.
type memProbe struct {
	heap0, rss0 uint64
	peakHeap    uint64
	hwm         bool // VmHWM was reset: it is the peak RSS since
	stop        chan struct{}
	done        sync.WaitGroup
}

func startMemProbe(t *testing.T) *memProbe {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	m := &memProbe{heap0: heapBytes(), rss0: procStatus(t, "VmRSS"), stop: make(chan struct{})}
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
	m.hwm = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.peakHeap = m.heap0
	m.done.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			m.peakHeap = max(m.peakHeap, heapBytes())
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	})
	return m
}

// Stop returns the peak growth of the Go heap (objects, live or not yet
// swept) and of the resident set.
func (m *memProbe) Stop(t *testing.T) (heap, rss uint64) {
	t.Helper()
	close(m.stop)
	m.done.Wait()
	peakRSS := procStatus(t, "VmHWM")
	if !m.hwm {
		peakRSS = procStatus(t, "VmRSS") // no reset: only the current RSS
	}
	return m.peakHeap - min(m.heap0, m.peakHeap), peakRSS - min(m.rss0, peakRSS)
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return n << 10
		}
	}
	t.Fatalf("%s not in /proc/self/status", field)
	return 0
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// warnings counts the feed's warnings by message.
type warnings struct {
	slog.Handler
	mu   sync.Mutex
	msgs map[string]int
}

func newWarnings(t *testing.T) *warnings {
	return &warnings{Handler: testLogger(t).Handler(), msgs: map[string]int{}}
}

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		w.msgs[r.Message]++
		w.mu.Unlock()
	}
	return w.Handler.Handle(ctx, r)
}

func (w *warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnings{Handler: w.Handler.WithAttrs(as), msgs: w.msgs}
}

func (w *warnings) count() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.msgs))
	for k, v := range w.msgs {
		out[k] = v
	}
	return out
}

// skipMsg is what a Feed logs, once, for a batch it skips whole.
const skipMsg = "skipping a revocation record batch that cannot be decoded"

// watchFeed runs a Feed over topic until it has caught up, and returns it
// with the peak growth of the heap and RSS while it did, and its warnings.
func watchFeed(t *testing.T, fx *fixture, brokers []string, topic string) (f *kafkafeed.Feed, heap, rss uint64, warn *warnings) {
	t.Helper()
	warn = newWarnings(t)
	probe := startMemProbe(t)
	f = newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now), Logger: slog.New(warn)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	heap, rss = probe.Stop(t)
	return f, heap, rss, warn
}

func checkBound(t *testing.T, heap, rss uint64) {
	t.Helper()
	if heap > memBound {
		t.Errorf("the Go heap grew by %s, want at most %s", mib(heap), mib(memBound))
	}
	if rss > memBound && !raceEnabled { // the race detector's shadow memory is not the feed's
		t.Errorf("the RSS grew by %s, want at most %s", mib(rss), mib(memBound))
	}
}

// A compressed record that inflates to 150 MiB (or says it will, to 4 GiB)
// does not blow up the feed's memory; the revocation written after it is
// applied; the bomb is counted and logged once.
func TestCompressionBomb(t *testing.T) {
	brokers := sharedBroker(t)
	tests := []struct {
		name  string
		write func(t *testing.T, topic string)
	}{
		{"gzip", func(t *testing.T, topic string) { writeBomb(t, brokers, topic, kafka.Gzip, bombSize) }},
		{"zstd", func(t *testing.T, topic string) { writeBomb(t, brokers, topic, kafka.Zstd, bombSize) }},
		{"lz4", func(t *testing.T, topic string) { writeBomb(t, brokers, topic, kafka.Lz4, bombSize) }},
		{"snappy declaring 4 GiB", func(t *testing.T, topic string) {
			rawProduce(t, brokers, topic, 0, rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<32-1, true)))
		}},
		{"zstd window of 2 GiB", func(t *testing.T, topic string) {
			rawProduce(t, brokers, topic, 0, rawBatch(kafka.Zstd, 1, zstdRLE(31, 1200)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			topic := topicName(t)
			createTopic(t, brokers, topic, 1)
			now := time.Now()
			w := newWriter(t, brokers, topic, nil)
			old := fx.userEvent("old", now.Add(-2*time.Hour)) // older than the replay window
			write(t, w, record("old", fx.Sign(t, old), old.At))
			tt.write(t, topic)
			after := fx.userEvent("after-bomb", now)
			write(t, w, record("after-bomb", fx.Sign(t, after), now))

			f, heap, rss, warn := watchFeed(t, fx, brokers, topic)
			t.Logf("%s: the feed's peak growth: Go heap +%s, RSS +%s", tt.name, mib(heap), mib(rss))
			checkBound(t, heap, rss)
			if !fx.revoked(t, f, "after-bomb", now) {
				t.Error("the revocation after the bomb was not applied")
			}
			if fx.revoked(t, f, "old", now) {
				t.Error("an event older than the replay window was applied")
			}
			if st := f.Stats(); st.Undecodable != 1 || st.Poison != 1 || st.Applied != 1 {
				t.Errorf("Stats = %+v, want the bomb counted as 1 undecodable (and poison), 1 applied", st)
			}
			if n := warn.count()[skipMsg]; n != 1 {
				t.Errorf("the bomb was logged %d times, want once", n)
			}
		})
	}
}

// Batches of real events compressed by every codec a client may use are
// applied: a batch of the issuer's largest size (1 MiB) too.
func TestCompressedEventsApplied(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	now := time.Now()
	var subs []string
	for _, codec := range codecs[1:] {
		var msgs []kafka.Message
		for i := 0; i == 0 || msgs[0].Value != nil && len(msgs)*len(msgs[0].Value) < 900<<10; i++ {
			sub := fmt.Sprintf("%s-%d", codec, i)
			msgs = append(msgs, record(sub, fx.Sign(t, fx.userEvent(sub, now)), now))
			subs = append(subs, sub)
		}
		w := newWriter(t, brokers, topic, nil)
		w.Compression, w.BatchSize, w.BatchTimeout = codec, len(msgs), time.Second // one batch
		write(t, w, msgs...)
	}
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now),
		Logger: slog.New(slog.DiscardHandler)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	for _, sub := range subs {
		if !fx.revoked(t, f, sub, now) {
			t.Fatalf("%s: event not applied", sub)
		}
	}
	if st := f.Stats(); st.Applied != uint64(len(subs)) || st.Poison != 0 || st.Undecodable != 0 {
		t.Errorf("Stats = %+v, want %d applied, nothing skipped", st, len(subs))
	}
	t.Logf("%d events in %d compressed batches applied", len(subs), len(codecs)-1)
}

// Whatever is on the topic, on every partition at once, the feed's memory
// stays within memBound of where it was; every event after the junk is
// applied, and every skipped batch logged once.
func TestMemoryBoundWhateverIsOnTheTopic(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	const partitions = 6 // the dev stack's and docs/operations.md's
	createTopic(t, brokers, topic, partitions)
	var nearLimit [][]byte // inflates to just under MaxBatchBytes, each value too large for an event
	for range kafkafeed.MaxBatchBytes/(64<<10) - 1 {
		nearLimit = append(nearLimit, make([]byte, 64<<10))
	}
	junk := []struct {
		name  string
		batch []byte
	}{
		{"gzip bomb", bombBatch(t, kafka.Gzip, bombSize)},
		{"zstd bomb", bombBatch(t, kafka.Zstd, bombSize)},
		{"lz4 bomb", bombBatch(t, kafka.Lz4, bombSize)},
		{"snappy declaring 4 GiB", rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<32-1, true))},
		{"zstd window of 2 GiB", rawBatch(kafka.Zstd, 1, zstdRLE(31, 1200))},
		{"near the limit", encodeBatch(t, kafka.Zstd, nearLimit...)},
		{"1000 KiB uncompressed", encodeBatch(t, 0, make([]byte, 1000<<10))},
	}
	now := time.Now()
	w := newWriter(t, brokers, topic, nil)
	for p := range partitions {
		for _, j := range junk {
			rawProduce(t, brokers, topic, p, j.batch)
		}
		w.Balancer = toPartition(p)
		sub := fmt.Sprint("after-junk-", p)
		write(t, w, record(sub, fx.Sign(t, fx.userEvent(sub, now)), now))
	}

	f, heap, rss, warn := watchFeed(t, fx, brokers, topic)
	t.Logf("%d kinds of junk on %d partitions: the feed's peak growth: Go heap +%s, RSS +%s",
		len(junk), partitions, mib(heap), mib(rss))
	checkBound(t, heap, rss)
	for p := range partitions {
		if sub := fmt.Sprint("after-junk-", p); !fx.revoked(t, f, sub, now) {
			t.Errorf("%s: the event after the junk was not applied", sub)
		}
	}
	const skipped = 5 // bombs and lies; the rest decodes and fails verification
	st := f.Stats()
	if st.Undecodable != skipped*partitions || st.Applied != partitions ||
		st.Poison != uint64(skipped+len(nearLimit)+1)*partitions {
		t.Errorf("Stats = %+v, want %d undecodable, %d applied", st, skipped*partitions, partitions)
	}
	if n := warn.count()[skipMsg]; n != skipped*partitions {
		t.Errorf("%d batches skipped with a warning, want %d", n, skipped*partitions)
	}
}
