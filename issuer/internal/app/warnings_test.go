package app_test

import (
	"strings"
	"sync"
	"testing"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// A setting left out at start is warned about once, by the issuer, not by
// every part it affects: the missing key encryption key (signing keys and
// queued mail in the clear), Kafka (events kept in the outbox), SMTP (mail
// dropped).
func TestOneWarningPerConditionAtStart(t *testing.T) {
	smtp := "smtp://127.0.0.1:1" // mail on, so that the queue's encryption matters
	for name, tt := range map[string]struct {
		settings map[string]string
		once     []string // each named in exactly one warning
	}{
		"no key encryption key, no Kafka, no SMTP": {
			settings: map[string]string{"JOTGUARD_KAFKA_BROKERS": "", "JOTGUARD_SMTP_URL": ""},
			once:     []string{"JOTGUARD_KEY_ENCRYPTION_KEY", "Kafka", "JOTGUARD_SMTP_URL"},
		},
		"no key encryption key, mail on": {
			settings: map[string]string{"JOTGUARD_KAFKA_BROKERS": "", "JOTGUARD_SMTP_URL": smtp},
			once:     []string{"JOTGUARD_KEY_ENCRYPTION_KEY", "Kafka"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var logs syncBuffer
			s := runIssuer(t, tt.settings, &logs)
			s.waitReady()
			s.stop()
			for _, what := range tt.once {
				var named []string
				for _, l := range logs.lines() {
					if strings.Contains(l, "level=WARN") && strings.Contains(l, what) {
						named = append(named, l)
					}
				}
				if len(named) != 1 {
					t.Errorf("%d warnings name %s, want 1:\n%s", len(named), what, strings.Join(named, "\n"))
				}
			}
		})
	}
}
