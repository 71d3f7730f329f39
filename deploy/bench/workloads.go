package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// IssuerResults are the figures of scenarios 1–3 for one run.
type IssuerResults struct {
	Register, RegisterLogin, Refresh, Login Result
	RefreshEmails                           []string // the users of the /access_token workload
}

// authixWorkloads runs the three Authix workloads and a login-only pass
// against the issuer at concurrency conc. n is 1000 in full mode.
// watch, when not nil, records each workload's CPU time per process.
func authixWorkloads(ctx context.Context, log *logger, c *IssuerClient, watch CPUWatch, run, conc, n, refreshUsers int) (IssuerResults, error) {
	var out IssuerResults
	load := func(ctx context.Context, name string, conc, n int, d time.Duration, warm int, op Op) Result {
		before := watch.Snapshot()
		r := Load(ctx, name, conc, n, d, warm, op)
		if watch != nil {
			r.CPU = watch.Since(before)
		}
		return r
	}
	// 1. n × /register
	registered := make([]bool, n)
	out.Register = load(ctx, "register", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		err := c.Register(ctx, c.Email(run, i))
		registered[i] = err == nil
		return err
	})
	var ok []int
	for i, r := range registered {
		if r {
			ok = append(ok, i)
		}
	}
	if len(ok) < refreshUsers {
		return out, fmt.Errorf("only %d of %d registrations succeeded", len(ok), n)
	}
	// /login alone, n times over the users just registered (for scenario 3;
	// a registration refused with 503 is not logged in: its error counts once)
	out.Login = load(ctx, "login", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		_, err := c.Login(ctx, c.Email(run, ok[i%len(ok)]))
		return err
	})
	// 2. n × (/register then /login)
	out.RegisterLogin = load(ctx, "register+login", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		e := c.Email(run, n+i)
		if err := c.Register(ctx, e); err != nil {
			return err
		}
		_, err := c.Login(ctx, e)
		return err
	})
	// 3. refreshUsers users × n /access_token: conc sessions (worker w is a
	// session of user w % refreshUsers), each following its rotated cookie.
	for _, x := range []Result{out.Register, out.Login, out.RegisterLogin} {
		if x.Errors > 0 {
			log.Printf("  %s: %d errors, first: %s", x.Name, x.Errors, x.FirstErr)
		}
	}
	for u := range refreshUsers {
		out.RefreshEmails = append(out.RefreshEmails, c.Email(run, ok[u]))
	}
	sess := make([]Session, conc)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			s, err := c.Login(ctx, c.Email(run, ok[w%refreshUsers]))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			sess[w] = s
		})
	}
	wg.Wait()
	if firstErr != nil {
		return out, fmt.Errorf("refresh setup: %w", firstErr)
	}
	rf, err := newRefresher(c.Base, conc)
	if err != nil {
		return out, err
	}
	defer rf.Close()
	out.Refresh = load(ctx, "access_token", conc, refreshUsers*n, 0, 0, func(ctx context.Context, w, i int) error {
		s, err := rf.Refresh(ctx, w, sess[w].Refresh)
		if err != nil {
			return err
		}
		sess[w] = s
		return nil
	})
	return out, nil
}
