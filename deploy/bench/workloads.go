package main

import (
	"context"
	"fmt"
	"sync"
)

// IssuerResults are the figures of scenarios 1–3 for one run.
type IssuerResults struct {
	Register, RegisterLogin, Refresh, Login Result
	RefreshEmails                           []string // the users of the /access_token workload
	refreshUsers                            []int    // the same, as user numbers of the run
}

// authixWorkloads runs the three Authix workloads and a login-only pass
// against the issuer at concurrency conc. n is 1000 in full mode.
// watch, when not nil, records each workload's CPU time per process.
func authixWorkloads(ctx context.Context, log *logger, c *IssuerClient, watch CPUWatch, run, conc, n, refreshUsers int) (IssuerResults, error) {
	w := issuerWorkload{c: c, watch: watch, run: run, conc: conc}
	var out IssuerResults
	var ok []int
	out.Register, ok = w.register(ctx, n) // 1.
	if len(ok) < refreshUsers {
		return out, fmt.Errorf("only %d of %d registrations succeeded", len(ok), n)
	}
	out.Login = w.login(ctx, n, ok)
	out.RegisterLogin = w.registerLogin(ctx, n) // 2.
	for _, x := range []Result{out.Register, out.Login, out.RegisterLogin} {
		if x.Errors > 0 {
			log.Printf("  %s: %d errors, first: %s", x.Name, x.Errors, x.FirstErr)
		}
	}
	for u := range refreshUsers {
		out.RefreshEmails = append(out.RefreshEmails, c.Email(run, ok[u]))
	}
	out.refreshUsers = ok[:refreshUsers]
	var err error
	out.Refresh, err = w.refresh(ctx, n, out.refreshUsers) // 3.
	return out, err
}

// issuerWorkload runs the workloads of one run against the issuer: its
// users are those of run, conc workers drive each, and watch records the
// CPU each process spends on it.
type issuerWorkload struct {
	c         *IssuerClient
	watch     CPUWatch
	run, conc int
}

// load runs n operations of op as workload name.
func (w issuerWorkload) load(ctx context.Context, name string, n int, op Op) Result {
	before := w.watch.Snapshot()
	r := Load(ctx, name, w.conc, n, 0, 0, op)
	if w.watch != nil {
		r.CPU = w.watch.Since(before)
	}
	return r
}

// register is n × /register, users 0…n-1; it answers which succeeded.
func (w issuerWorkload) register(ctx context.Context, n int) (Result, []int) {
	registered := make([]bool, n)
	r := w.load(ctx, "register", n, func(ctx context.Context, _, i int) error {
		err := w.c.Register(ctx, w.c.Email(w.run, i))
		registered[i] = err == nil
		return err
	})
	var ok []int
	for i, reg := range registered {
		if reg {
			ok = append(ok, i)
		}
	}
	return r, ok
}

// login is /login alone, n times over the users registered (for scenario
// 3; a registration refused with 503 is not logged in: its error counts
// once).
func (w issuerWorkload) login(ctx context.Context, n int, users []int) Result {
	return w.load(ctx, "login", n, func(ctx context.Context, _, i int) error {
		_, err := w.c.Login(ctx, w.c.Email(w.run, users[i%len(users)]))
		return err
	})
}

// registerLogin is n × (/register then /login), users n…2n-1.
func (w issuerWorkload) registerLogin(ctx context.Context, n int) Result {
	return w.load(ctx, "register+login", n, func(ctx context.Context, _, i int) error {
		e := w.c.Email(w.run, n+i)
		if err := w.c.Register(ctx, e); err != nil {
			return err
		}
		_, err := w.c.Login(ctx, e)
		return err
	})
}

// refresh is len(users) × n /access_token: conc sessions (worker k is a
// session of user k mod len(users)), each following its rotated cookie on
// its own connection.
func (w issuerWorkload) refresh(ctx context.Context, n int, users []int) (Result, error) {
	sess, err := w.sessions(ctx, users)
	if err != nil {
		return Result{}, fmt.Errorf("refresh setup: %w", err)
	}
	rf, err := newRefresher(w.c.Base, w.conc)
	if err != nil {
		return Result{}, err
	}
	defer rf.Close()
	return w.load(ctx, "access_token", len(users)*n, func(ctx context.Context, k, _ int) error {
		s, err := rf.Refresh(ctx, k, sess[k].Refresh)
		if err != nil {
			return err
		}
		sess[k] = s
		return nil
	}), nil
}

// sessions logs in one session per worker, worker k as user k mod
// len(users), a few at a time: 64 at once would wait for the hashing slots
// past the issuer's queue limit on a busy machine (503).
func (w issuerWorkload) sessions(ctx context.Context, users []int) ([]Session, error) {
	sess := make([]Session, w.conc)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for k := range w.conc {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := w.c.Login(ctx, w.c.Email(w.run, users[k%len(users)]))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			sess[k] = s
		})
	}
	wg.Wait()
	return sess, firstErr
}
