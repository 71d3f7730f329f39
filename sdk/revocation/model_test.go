package revocation_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// model is the Set's contract on a plain map, with exact keys and jtis.
type model struct {
	retention int64
	m         map[string]modelEntry
}

type modelEntry struct {
	at  int64
	evt string
}

func (m *model) live(e modelEntry, ok bool, now int64) bool { return ok && e.at+m.retention > now }

func (m *model) add(e revocation.Event, now int64) bool {
	at := e.At.Unix()
	if at <= 0 || at > int64(^uint32(0)) || at+m.retention <= now || e.Issuer == "" {
		return false
	}
	var k string
	switch {
	case e.TokenID != "":
		k = "t|" + e.Issuer + "|" + e.TokenID
	case e.SessionID != "":
		k = "s|" + e.Issuer + "|" + e.SessionID
	case e.Subject != "":
		k = "u|" + e.Issuer + "|" + e.Subject
	default:
		return false
	}
	old, ok := m.m[k]
	live := m.live(old, ok, now)
	if !live || at >= old.at {
		m.m[k] = modelEntry{at: at, evt: e.ID}
	}
	return !(live && old.evt == e.ID)
}

func (m *model) revoked(c *sdk.Claims, now int64) bool {
	if c.SessionID != "" {
		if e, ok := m.m["s|"+c.Issuer+"|"+c.SessionID]; m.live(e, ok, now) {
			return true
		}
	}
	if c.ID != "" {
		if e, ok := m.m["t|"+c.Issuer+"|"+c.ID]; m.live(e, ok, now) {
			return true
		}
	}
	if c.Subject != "" {
		if e, ok := m.m["u|"+c.Issuer+"|"+c.Subject]; m.live(e, ok, now) {
			return c.IssuedAt == nil || c.IssuedAt.Unix() <= e.at
		}
	}
	return false
}

func (m *model) len(now int64) int {
	n := 0
	for _, e := range m.m {
		if m.live(e, true, now) {
			n++
		}
	}
	return n
}

// TestSetMatchesModel runs random bursts of adds (new events, replays,
// older and newer ones for the same id) and lookups, with the clock moving
// and Sweep called now and then, against the model. Bursts of up to 40 000
// events grow the tables past the size that is mapped; the quiet periods
// after them shrink them back.
func TestSetMatchesModel(t *testing.T) {
	for _, heap := range []bool{false, true} {
		t.Run(fmt.Sprint("heap=", heap), func(t *testing.T) {
			if heap {
				revocation.ForceHeap(t)
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			testSetMatchesModel(t, rand.New(rand.NewPCG(seed, 1)))
		})
	}
}

func testSetMatchesModel(t *testing.T, r *rand.Rand) {
	const retention = time.Minute
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := revocation.NewSet(retention, clk.Now)
	m := &model{retention: 61, m: map[string]modelEntry{}} // whole seconds, + 1
	issuers := []string{iss, "https://other.example", ""}
	id := func(pool int) string { return fmt.Sprint(r.IntN(pool)) }
	var sent []revocation.Event
	evt := 0
	maxBytes := int64(0)
	for round := range 60 {
		burst := []int{10, 300, 5000, 40_000}[r.IntN(4)]
		pool := burst/2 + 1 // ids repeat: updates, replays
		for range burst {
			now := clk.Now()
			newEvent := func() revocation.Event {
				evt++
				e := revocation.Event{ID: fmt.Sprint("e", evt), Issuer: issuers[r.IntN(2)],
					At: now.Add(time.Duration(r.IntN(80_000)-75_000) * time.Millisecond)}
				if r.IntN(50) == 0 {
					e.Issuer = issuers[2]
				}
				switch r.IntN(4) {
				case 0:
					e.TokenID = "j" + id(pool)
				case 1:
					e.Subject = "u" + id(pool)
				case 2:
					e.Subject, e.SessionID = "u"+id(pool), "s"+id(pool)
				} // 3: no scope
				sent = append(sent, e)
				return e
			}
			switch op := r.IntN(100); {
			case op < 50:
				e := newEvent()
				if got, want := s.Add(e), m.add(e, now.Unix()); got != want {
					t.Fatalf("round %d: Add(%+v) = %v, model %v", round, e, got, want)
				}
			case op < 55: // a batch: new events, maybe a repeat among them
				batch := make([]revocation.Event, 1+r.IntN(20))
				want := 0
				for i := range batch {
					if batch[i] = newEvent(); i > 0 && r.IntN(5) == 0 {
						batch[i] = batch[r.IntN(i)]
					}
					if m.add(batch[i], now.Unix()) {
						want++
					}
				}
				if got := s.AddAll(batch); got != want {
					t.Fatalf("round %d: AddAll(%d events) = %d new, model %d", round, len(batch), got, want)
				}
			case op < 65 && len(sent) > 0: // a redelivery, maybe of an old one
				e := sent[len(sent)-1-r.IntN(min(len(sent), 1000))]
				if got, want := s.Add(e), m.add(e, now.Unix()); got != want {
					t.Fatalf("round %d: Add(%+v) again = %v, model %v", round, e, got, want)
				}
			case op < 99:
				c := &sdk.Claims{SessionID: "s" + id(pool), RegisteredClaims: jwt.RegisteredClaims{
					Issuer: issuers[r.IntN(2)], Subject: "u" + id(pool), ID: "j" + id(pool),
					IssuedAt: jwt.NewNumericDate(now.Add(time.Duration(r.IntN(120)-90) * time.Second))}}
				switch r.IntN(4) {
				case 0:
					c.SessionID = ""
				case 1:
					c.ID = ""
				case 2:
					c.IssuedAt = nil
				}
				if got, err := s.Revoked(c); err != nil || got != m.revoked(c, now.Unix()) {
					t.Fatalf("round %d: Revoked(%+v) = %v, %v; model %v", round, c, got, err, !got)
				}
			default: // about 20 s a burst
				clk.Add(time.Duration(r.IntN(4_000_000/burst)) * time.Millisecond)
			}
		}
		maxBytes = max(maxBytes, s.Bytes())
		clk.Add(time.Duration(r.IntN(90)) * time.Second) // a quiet period
		if r.IntN(2) == 0 {
			checkSwept(t, s, m, clk.Now().Unix())
		}
	}
	clk.Add(2 * retention)
	checkSwept(t, s, m, clk.Now().Unix())
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("all expired and swept: Len %d, Bytes %d; want 0, 0", s.Len(), s.Bytes())
	}
	if maxBytes < 64*256*16 {
		t.Errorf("the tables never reached %d bytes (max %d): no mapped table was tested", 64*256*16, maxBytes)
	}
	t.Logf("tables up to %d bytes", maxBytes)
}

// checkSwept sweeps and compares what is left with the model; the tables
// must be sized for it (at least 3/8 full, or of the smallest size).
func checkSwept(t *testing.T, s *revocation.Set, m *model, now int64) {
	t.Helper()
	before := s.Len()
	dropped := s.Sweep()
	n := s.Len()
	if n != before-dropped || n != m.len(now) {
		t.Fatalf("Sweep: Len %d before, %d dropped, %d after; the model holds %d", before, dropped, n, m.len(now))
	}
	if b := s.Bytes(); b > 16*(64*8+int64(n)*8/3) {
		t.Fatalf("Sweep: %d entries in %d bytes of tables: not shrunk", n, b)
	}
}

// TestSetConcurrentGrowAndSweep: lookups race with growth and with sweeps
// that rebuild (and free) tables. A lookup in a freed mapping would crash;
// run with -race, which checks the heap-backed tables.
func TestSetConcurrentGrowAndSweep(t *testing.T) {
	for _, heap := range []bool{false, true} {
		t.Run(fmt.Sprint("heap=", heap), func(t *testing.T) {
			if heap {
				revocation.ForceHeap(t)
			}
			t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			clk := &clock{t: t0}
			s := revocation.NewSet(time.Minute, clk.Now)
			var work, sweeper sync.WaitGroup
			for p := range 2 {
				work.Go(func() { // writers: bursts that expire
					for i := range 20_000 {
						s.Add(revocation.Event{ID: fmt.Sprint(p, "-", i), Issuer: iss, Subject: "u",
							SessionID: fmt.Sprint(p, "-", i), At: clk.Now()})
						if i%5000 == 4999 {
							clk.Add(2 * time.Minute)
						}
					}
				})
				work.Go(func() { // readers
					for i := range 20_000 {
						_, _ = s.Revoked(token("u", fmt.Sprint(p, "-", i), "j", clk.Now().Add(time.Hour)))
					}
				})
			}
			done := make(chan struct{})
			sweeper.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
						s.Sweep()
						_ = s.Bytes()
					}
				}
			})
			work.Wait()
			close(done)
			sweeper.Wait()
		})
	}
}
