package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Distinct is the distinct-token scenario: the verifier's auth-check when
// every request carries the next of N distinct live tokens, in rotation,
// against the bare handler sent the same requests.
type Distinct struct {
	Counts    []int                       // distinct tokens, ascending
	Conc      int                         // the load's concurrency
	HTTP      map[string]map[int][]Result // target → token count → runs
	Order     []string                    // targets, in report order
	MintTime  time.Duration               // signing every token (0: reused)
	Reused    bool                        // the tokens were kept from an earlier run
	Lifetime  time.Duration               // of each token
	CacheSize int                         // the verifier's verified-token cache
}

// Distinct-token targets.
const (
	tDistinctBare     = "bare net/http, forward-auth request"
	tDistinctVerifier = "verifier /authz/forward-auth (cache 10000)"
)

// distinctScenario runs bin/verifier, with its defaults (a verified-token
// cache of 10,000) and the dev stack's revocation feed, trusting a key of
// the bench's own, and the bare handler at c=64, each count of tokens in
// rotation, runs interleaved. A first run over the smallest count, not
// measured, fills the verifier's cache. The tokens (distinctTokens) are
// signed once and kept in the cache directory while they have hours left.
func (b *bench) distinctScenario(ctx context.Context, st *stack, bareURL string) error {
	counts := b.plan.distinct
	if len(counts) == 0 {
		return nil
	}
	tk, err := distinctTokens(filepath.Join(b.cfg.Cache, "tokens"), counts[len(counts)-1], b.log)
	if err != nil {
		return err
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(tk.JWKS)
	}))
	defer jwks.Close()
	dr := &Distinct{Counts: counts, Conc: 64, HTTP: map[string]map[int][]Result{}, MintTime: tk.MintTime, Reused: tk.Reused,
		Lifetime: tokenLifetime, CacheSize: sdk.DefaultCacheSize, Order: []string{tDistinctBare, tDistinctVerifier}}
	v, err := b.servers.Verifier(ctx, "verifier-distinct", b.cfg.ServerCPUs, st.ds.Env, tk.Issuer, "",
		"JOTGUARD_JWKS_URL="+jwks.URL, "JOTGUARD_ACCESS_TTL="+tokenLifetime.String())
	if err != nil {
		return err
	}
	defer v.Stop()
	targets := map[string]string{tDistinctBare: bareURL, tDistinctVerifier: "http://" + v.Addr + "/authz/forward-auth"}
	watch := map[string]CPUWatch{tDistinctVerifier: {"server": v.Cmd.Process.Pid}}
	if bare := b.procs.Named("bare"); bare != nil {
		watch[tDistinctBare] = CPUWatch{"server": bare.Cmd.Process.Pid}
	}
	hdrs := []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /app", "X-Forwarded-Host: app.example"}
	// Each count is measured in a run of its own after a warm-up with its
	// tokens: measured in turn, a count larger than the cache would leave
	// the next run of a smaller one a cold cache.
	for _, n := range counts {
		warm := TokenFile{File: tk.File, N: n}
		if r, err := b.load.RunTokens("warm-up", targets[tDistinctVerifier], dr.Conc, b.plan.d, warm, hdrs...); err != nil || r.Errors > 0 {
			return fmt.Errorf("warm-up: %v %s", err, r.FirstErr)
		}
		for run := range b.cfg.Runs {
			for k := range dr.Order {
				t := dr.Order[(k+run)%len(dr.Order)]
				before := watch[t].Snapshot()
				r, err := b.load.RunTokens(t, targets[t], dr.Conc, b.plan.d, TokenFile{File: tk.File, N: n}, hdrs...)
				if err != nil {
					b.log.Printf("  %s, %d tokens: %v", t, n, err)
					continue
				}
				r.CPU = watch[t].Since(before) // wrk's Lua init included: the server idles then
				if dr.HTTP[t] == nil {
					dr.HTTP[t] = map[int][]Result{}
				}
				dr.HTTP[t][n] = append(dr.HTTP[t][n], r)
				b.log.Printf("  run %d %-44s %7d tokens c=%d %9.0f req/s p99 %-9s errors %d %s", run+1, t, n, dr.Conc, r.RPS(),
					r.Q(0.99).Round(time.Microsecond), r.Errors, r.FirstErr)
			}
		}
	}
	b.rep.Distinct = dr
	return nil
}

// tokenLifetime is the lifetime of the distinct tokens (the verifier of the
// scenario is told so, JOTGUARD_ACCESS_TTL): long enough that one signing
// serves the bench runs of a working day.
const tokenLifetime = 12 * time.Hour

// tokenIssuer is the iss of the distinct tokens; the verifier reads their
// key from the bench's JWKS (JOTGUARD_JWKS_URL).
const tokenIssuer = "http://bench-issuer.jotguard.invalid"

// tokenSet is a file of distinct tokens and what verifies them.
type tokenSet struct {
	File, Issuer string
	JWKS         []byte
	MintTime     time.Duration
	Reused       bool
}

// tokenMeta describes the tokens kept in a cache directory.
type tokenMeta struct {
	Count   int       `json:"count"`
	Expires time.Time `json:"expires"`
	Kid     string    `json:"kid"`
}

// distinctTokens answers n distinct access tokens in dir/tokens.txt: those
// kept there when there are enough, with an hour left at least; else it
// signs n new ones with a new ES256 key (dir/key.pem), shaped as the
// issuer's: its claims (distinct users, sessions and ids), typ at+jwt.
func distinctTokens(dir string, n int, log *logger) (tokenSet, error) {
	ts := tokenSet{File: filepath.Join(dir, "tokens.txt"), Issuer: tokenIssuer}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ts, err
	}
	var meta tokenMeta
	b, merr := os.ReadFile(filepath.Join(dir, "meta.json"))
	kb, kerr := os.ReadFile(filepath.Join(dir, "key.pem"))
	if merr == nil && kerr == nil && json.Unmarshal(b, &meta) == nil && meta.Count >= n && time.Until(meta.Expires) > time.Hour {
		if key, err := parseKey(kb); err == nil {
			ts.JWKS, _ = json.Marshal(map[string]any{"keys": []any{sdktest.PublicJWK(meta.Kid, &key.PublicKey)}})
			ts.Reused = true
			log.Printf("distinct tokens: %d kept in %s, valid until %s", meta.Count, dir, meta.Expires.Format(time.TimeOnly))
			return ts, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ts, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return ts, err
	}
	kid := strings.ToLower(rand.Text()[:10])
	t0 := time.Now()
	exp, err := mintTokens(key, kid, ts.File, n)
	if err != nil {
		return ts, err
	}
	ts.MintTime = time.Since(t0)
	log.Printf("distinct tokens: %d signed in %s into %s", n, ts.MintTime.Round(time.Millisecond), ts.File)
	mb, _ := json.Marshal(tokenMeta{Count: n, Expires: exp, Kid: kid})
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return ts, err
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), mb, 0o644); err != nil {
		return ts, err
	}
	ts.JWKS, _ = json.Marshal(map[string]any{"keys": []any{sdktest.PublicJWK(kid, &key.PublicKey)}})
	return ts, nil
}

// parseKey reads a PKCS #8 PEM ECDSA private key.
func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

// mintTokens writes n access tokens signed with key (kid) to file, one
// per line, each valid for tokenLifetime, and answers their expiry.
func mintTokens(key *ecdsa.PrivateKey, kid, file string, n int) (time.Time, error) {
	f, err := os.Create(file)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	now := time.Now()
	exp := now.Add(tokenLifetime)
	const batch = 10_000
	workers := runtime.NumCPU()
	toks := make([]string, batch)
	errs := make([]error, workers)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Go(func() {
				for i := lo + k; i < hi && errs[k] == nil; i += workers {
					id := strconv.Itoa(i)
					t := jwt.NewWithClaims(jwt.SigningMethodES256, sdk.Claims{
						RegisteredClaims: jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: "bench-user-" + id,
							Audience: jwt.ClaimStrings{sdktest.Audience}, IssuedAt: jwt.NewNumericDate(now),
							ExpiresAt: jwt.NewNumericDate(exp), ID: "bench-jti-" + id},
						ClientID: "jotguard", SessionID: "bench-sid-" + id, Email: "user" + id + "@bench.example"})
					t.Header["kid"], t.Header["typ"] = kid, sdk.TokenType
					toks[i-lo], errs[k] = t.SignedString(key)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return time.Time{}, err
		}
		for _, t := range toks[:hi-lo] {
			_, _ = w.WriteString(t)
			_ = w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		return time.Time{}, err
	}
	return exp, f.Close()
}
