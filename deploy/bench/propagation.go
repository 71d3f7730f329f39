package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Propagation is scenario 6: per verifier, logout response → first 401.
type Propagation struct {
	Delays  map[string][]time.Duration
	Missing map[string]int // never saw 401 within the timeout
}

// propagationScenario is 6: logouts against two verifiers, bin/verifier
// (verifier-1 and a second one) or, when it did not start, two sdk servers
// with the kafkafeed consumer.
func (b *bench) propagationScenario(ctx context.Context, st *stack) error {
	vs := map[string]string{}
	if st.verifier != nil {
		v2, err := b.servers.Verifier(ctx, "verifier-2", b.cfg.ServerCPUs, st.ds.Env, st.ic.Base, "")
		if err != nil {
			return err
		}
		vs["verifier-1"] = "http://" + st.verifier.Addr + "/authz/forward-auth"
		vs["verifier-2"] = "http://" + v2.Addr + "/authz/forward-auth"
	} else {
		for i := 1; i <= 2; i++ {
			p, err := b.servers.Own(ctx, fmt.Sprint("sdkfeed-", i), b.cfg.ServerCPUs, "jwt", "--issuer", st.ic.Base,
				"--kafka", st.ds.Env["JOTGUARD_KAFKA_BROKERS"], "--topic", st.ds.Env["JOTGUARD_REVOCATION_TOPIC"])
			if err != nil {
				return err
			}
			vs[fmt.Sprint("sdk kafkafeed ", i)] = "http://" + p.Addr + "/app"
		}
		time.Sleep(2 * time.Second) // partitions assigned, replay done
	}
	b.log.Printf("revocation propagation: %d logouts, verifiers %v", b.plan.propN, vs)
	p, err := propagation(ctx, st.ic, vs, 500, b.plan.propN)
	if err != nil {
		b.note("propagation: %v", err)
	}
	b.rep.Prop = &p
	return nil
}

// propagation logs out n sessions one at a time and polls each verifier
// with the session's access token until it answers 401. Its users are
// those of run.
func propagation(ctx context.Context, c *IssuerClient, verifiers map[string]string, run, n int) (Propagation, error) {
	out := Propagation{Delays: map[string][]time.Duration{}, Missing: map[string]int{}}
	sess, err := loginSessions(ctx, c, run, n)
	if err != nil {
		return out, err
	}
	hc := NewClient(4)
	names := slices.Sorted(maps.Keys(verifiers))
	for _, s := range sess {
		for _, name := range names {
			if st := forwardAuth(ctx, hc, verifiers[name], s.Access); st != 200 {
				return out, fmt.Errorf("%s: a fresh token got %d", name, st)
			}
		}
		if err := c.Logout(ctx, s.Access); err != nil {
			return out, err
		}
		out.await(ctx, hc, verifiers, s.Access)
	}
	return out, nil
}

// loginSessions registers n/10+1 users of run and logs in n sessions over
// them, 8 at a time (the login rate limit is off in the bench).
func loginSessions(ctx context.Context, c *IssuerClient, run, n int) ([]Session, error) {
	users := n/10 + 1
	for u := range users {
		if err := c.Register(ctx, c.Email(run, u)); err != nil {
			return nil, err
		}
	}
	sess := make([]Session, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := c.Login(ctx, c.Email(run, i%users))
			if err != nil {
				errc <- err
			}
			sess[i] = s
		})
	}
	wg.Wait()
	close(errc)
	return sess, <-errc
}

// await polls every verifier with the logged-out token, back to back, and
// records when each first answers 401, or that it did not within 5 s.
func (out *Propagation) await(ctx context.Context, hc *http.Client, verifiers map[string]string, token string) {
	t0 := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, url := range verifiers {
		wg.Go(func() {
			for time.Since(t0) < 5*time.Second {
				if forwardAuth(ctx, hc, url, token) == 401 {
					d := time.Since(t0)
					mu.Lock()
					out.Delays[name] = append(out.Delays[name], d)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			out.Missing[name]++
			mu.Unlock()
		})
	}
	wg.Wait()
}

// forwardAuth asks the verifier at url about token as a proxy's
// forward-auth request; 0 when it did not answer.
func forwardAuth(ctx context.Context, hc *http.Client, url, token string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/")
	req.Header.Set("X-Forwarded-Host", "app.example")
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
