package kafkafeed_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// fixture is how the tests make records and check them.
type fixture struct {
	Issuer string
	Events kafkafeed.EventVerifier
	Sign   func(t *testing.T, e revocation.Event) []byte // a valid record value
	Forge  func(t *testing.T, e revocation.Event) []byte // same event, bad signature
	NewSet func(now func() time.Time) kafkafeed.Sink
}

// newFixture: a test-local stand-in for revocation.SETVerifier and Set.
func newFixture(t *testing.T) *fixture {
	const iss = "https://issuer.test"
	enc := func(t *testing.T, prefix string, e revocation.Event) []byte {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(prefix), b...)
	}
	return &fixture{
		Issuer: iss,
		Events: verifierFunc(func(raw []byte) (revocation.Event, error) {
			s, ok := strings.CutPrefix(string(raw), "signed.")
			if !ok {
				return revocation.Event{}, errors.New("bad signature")
			}
			var e revocation.Event
			if err := json.Unmarshal([]byte(s), &e); err != nil {
				return revocation.Event{}, err
			}
			if e.Issuer != iss {
				return revocation.Event{}, errors.New("wrong iss")
			}
			return e, nil
		}),
		Sign:   func(t *testing.T, e revocation.Event) []byte { return enc(t, "signed.", e) },
		Forge:  func(t *testing.T, e revocation.Event) []byte { return enc(t, "forged.", e) },
		NewSet: func(func() time.Time) kafkafeed.Sink { return &memSet{byID: map[string]revocation.Event{}} },
	}
}

type verifierFunc func([]byte) (revocation.Event, error)

func (f verifierFunc) Verify(raw []byte) (revocation.Event, error) { return f(raw) }

// memSet dedupes by ID and revokes a subject's tokens issued before an event.
type memSet struct {
	mu   sync.Mutex
	byID map[string]revocation.Event
}

func (s *memSet) Add(e revocation.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[e.ID]; ok {
		return false
	}
	s.byID[e.ID] = e
	return true
}

func (s *memSet) Revoked(c *sdk.Claims) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.byID {
		if e.Subject == c.Subject && c.IssuedAt != nil && !c.IssuedAt.After(e.At) {
			return true, nil
		}
	}
	return false, nil
}
