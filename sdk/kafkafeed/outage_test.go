package kafkafeed_test

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
)

// lockedLog collects a feed's log lines while it runs.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count is the number of lines at level ("" for any) that hold msg.
func (l *lockedLog) count(level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, msg) && (level == "" || strings.Contains(line, "level="+level)) {
			n++
		}
	}
	return n
}

// Brokers down when the feed starts are warned about once, however often
// it retries (the retries are logged at debug level), and their return is
// said once.
func TestAnOutageIsWarnedOnce(t *testing.T) {
	fx := newFixture(t)
	topic := topicName(t)
	b := startBroker(t, topic, 1)
	b.stop()
	var logs lockedLog
	f := newFeed(t, kafkafeed.Config{Brokers: b.Brokers, Topic: topic, Set: fx.NewSet(time.Now),
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, &logs), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	runFeed(t, fx.run(f))
	const down = "revocation topic unavailable"
	eventually(t, "four attempts on the brokers that are down", func() bool { return logs.count("", down) >= 4 })
	b.start()
	eventually(t, "the feed to say the topic is back", func() bool { return logs.count("INFO", "revocation topic reachable") == 1 })
	if n := logs.count("WARN", down); n != 1 {
		t.Errorf("%d warnings that the topic is unavailable over %d attempts, want 1", n, logs.count("", down))
	}
}
