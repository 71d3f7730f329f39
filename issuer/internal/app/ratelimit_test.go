package app_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/redis/go-redis/v9"
)

// productLimits undoes the harness's generous test limits: the issuer runs
// with the product's default rate limits.
var productLimits = map[string]string{"JOTGUARD_RATE_LIMITS": ""}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// from returns a copy of s whose requests come from the loopback address ip
// (any of 127.0.0.0/8 reaches a server on 127.0.0.1): a distinct client
// network for the issuer.
func (s *issuer) from(ip string) *issuer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := *s
	c.http = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8},
		CheckRedirect: s.http.CheckRedirect}
	s.t.Cleanup(c.http.CloseIdleConnections)
	return &c
}

func loginBody(id, password string) string {
	return `{"identifier":"` + id + `","password":"` + password + `"}`
}

// A password guesser with eight client networks, alternating between two
// replicas, gets at most 30 guesses at one account evaluated (the account limit: each
// network alone would get 5 before its slow-down, 40 in all); every guess
// past that is refused with 429 and Retry-After, before the password is
// checked. Meanwhile the owner, from a network the guesser has not used,
// still logs in.
func TestPasswordGuessesAreCappedPerAccountAcrossReplicasAndNetworks(t *testing.T) {
	shared := with(productLimits, "JOTGUARD_MONGO_DB", randName(), "JOTGUARD_REDIS_PREFIX", randName())
	replicas := []*issuer{startIssuer(t, shared), startIssuer(t, shared)}
	email := replicas[0].register(pw)

	var evaluated, refused atomic.Int32
	var wg sync.WaitGroup
	for n := range 8 { // 127.0.0.2 … 127.0.0.9
		ip := fmt.Sprintf("127.0.0.%d", n+2)
		from := []*issuer{replicas[0].from(ip), replicas[1].from(ip)}
		wg.Go(func() {
			for i := range 25 {
				r := from[i%2].do("POST", "/login", loginBody(email, fmt.Sprintf("guess %d from %s", i, ip)))
				switch {
				case r.StatusCode == 401 && r.code() == "invalid_credentials":
					evaluated.Add(1)
				case r.StatusCode == 429 && r.code() == "rate_limited":
					if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
						t.Errorf("429 with Retry-After %q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
					}
					refused.Add(1)
				default:
					t.Errorf("guess %d from %s: %d %s", i, ip, r.StatusCode, r.body)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("200 guesses from 8 networks over 2 replicas: %d evaluated (401), %d refused (429)", evaluated.Load(), refused.Load())
	if evaluated.Load() > 30 {
		t.Errorf("%d guesses at one account were evaluated; the account limit allows at most 30 per 15 minutes across replicas and networks", evaluated.Load())
	}
	// The owner, from a network the guesser has not failed from, on either replica.
	for i, s := range replicas {
		if r := s.from("127.0.0.10").do("POST", "/login", loginBody(email, pw)); r.StatusCode != 200 {
			t.Errorf("the owner's correct password from a fresh network (replica %d) during the attack: %d %s", i, r.StatusCode, r.body)
		}
	}
}

// The client network of an IPv6 client is its /64: every address in it
// shares one budget. The client address comes from X-Forwarded-For, believed
// from the trusted proxy (the test, on loopback).
func TestCredentialLimitPerIPv6Slash64(t *testing.T) {
	s := startIssuer(t, with(productLimits, "JOTGUARD_RATE_LIMITS", "credentials=5/1m",
		"JOTGUARD_TRUSTED_PROXIES", "127.0.0.1/32"))
	attempt := func(client string) resp {
		t.Helper()
		return s.do("POST", "/login", loginBody(strings.ToLower(rand.Text())+"@example.com", "wrong password!"), "X-Forwarded-For", client)
	}
	for i := range 5 {
		if r := attempt(fmt.Sprintf("2001:db8:1:2::%x", i+1)); r.StatusCode != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
	r := attempt("2001:db8:1:2:ffff:ffff:ffff:fffe") // same /64, an address not used yet
	if r.StatusCode != 429 || r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th attempt from the same /64 (limit 5 a minute): %d %s, Retry-After %q; want 429 rate_limited", r.StatusCode, r.body, r.Header.Get("Retry-After"))
	}
	if r := attempt("2001:db8:1:3::1"); r.StatusCode != 401 {
		t.Fatalf("another /64: %d %s, want its own budget", r.StatusCode, r.body)
	}
	if r := attempt("198.51.100.7"); r.StatusCode != 401 {
		t.Fatalf("an IPv4 client: %d %s, want its own budget", r.StatusCode, r.body)
	}
}

// Every endpoint that checks a credential is limited per client network:
// register, login, /oauth/token (both grants) and /access_token.
func TestEveryCredentialEndpointIsLimited(t *testing.T) {
	s := startIssuer(t, with(productLimits, "JOTGUARD_RATE_LIMITS", "credentials=3/1m,refresh=3/1m"))
	bogus := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well-formed, unknown refresh token
	endpoints := []struct {
		name, ip string
		send     func(c *issuer) resp
	}{
		{"register", "127.0.0.2", func(c *issuer) resp {
			return c.do("POST", "/register", `{"email":"`+strings.ToLower(rand.Text())+`@example.com","password":"`+pw+`"}`)
		}},
		{"login", "127.0.0.3", func(c *issuer) resp {
			return c.do("POST", "/login", loginBody(strings.ToLower(rand.Text())+"@example.com", "wrong password!"))
		}},
		{"oauth password grant", "127.0.0.4", func(c *issuer) resp {
			return c.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {strings.ToLower(rand.Text()) + "@example.com"}, "password": {"wrong!"}})
		}},
		{"access_token", "127.0.0.5", func(c *issuer) resp {
			return c.do("POST", "/access_token", `{"refresh_token":"`+bogus+`"}`)
		}},
		{"oauth refresh grant", "127.0.0.6", func(c *issuer) resp {
			return c.form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bogus}})
		}},
	}
	for _, e := range endpoints {
		t.Run(e.name, func(t *testing.T) {
			c := s.from(e.ip)
			for i := range 3 {
				if r := e.send(c); r.StatusCode == 429 {
					t.Fatalf("request %d of 3 allowed a minute: 429", i+1)
				}
			}
			r := e.send(c)
			if r.StatusCode != 429 || r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("4th request (limit 3 a minute): %d %s, Retry-After %q; want 429 rate_limited", r.StatusCode, r.body, r.Header.Get("Retry-After"))
			}
		})
	}
}

// Revocations (logout, /oauth/revoke) are limited per subject, so a client
// cannot make the issuer emit events without end; another user's are not.
func TestRevocationsAreLimitedPerSubject(t *testing.T) {
	s := startIssuer(t, with(productLimits, "JOTGUARD_RATE_LIMITS", "revoke=3/1m"))
	ann, bob := s.register(pw), s.register(pw)
	var refresh []string
	for range 4 {
		_, rt := s.login(ann, pw)
		refresh = append(refresh, rt)
	}
	for i, rt := range refresh[:3] {
		if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 204 {
			t.Fatalf("logout %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
	r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+refresh[3])
	if r.StatusCode != 429 || r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th logout of one user within a minute (limit 3): %d %s; want 429 rate_limited with Retry-After", r.StatusCode, r.body)
	}
	r = s.form("/oauth/revoke", url.Values{"token": {refresh[3]}})
	if r.StatusCode != 429 || r.code() != "rate_limited" {
		t.Fatalf("/oauth/revoke of the same user's token: %d %s; want 429 rate_limited", r.StatusCode, r.body)
	}
	_, rt := s.login(bob, pw)
	if r := s.form("/oauth/revoke", url.Values{"token": {rt}}); r.StatusCode != 200 {
		t.Fatalf("another user's revocation: %d %s", r.StatusCode, r.body)
	}
}

// Limiter state lives in Redis, shared by the replicas, under keys built
// from bounded values (a network, a hash), each with an expiry: however long
// the identifiers sent, no key carries one.
func TestLimitKeysAreBoundedAndExpire(t *testing.T) {
	s := startIssuer(t, productLimits)
	email := s.register(pw)
	long := strings.Repeat("x", 60<<10)
	for _, body := range []string{
		loginBody(long+"@example.com", "wrong password!"),
		loginBody(long, "wrong password!"),
		loginBody(long, ""),
		loginBody(email, "wrong password!"),
		loginBody("nobody-"+strings.ToLower(rand.Text())+"@example.com", "wrong password!"),
		loginBody(email, pw),
	} {
		if r := s.do("POST", "/login", body); r.StatusCode >= 500 || r.StatusCode == 429 {
			t.Fatalf("login: %d %s", r.StatusCode, r.body)
		}
	}
	s.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {long}, "password": {"wrong!"}})

	o, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	ctx := context.Background()
	var limiterKeys int
	iter := rdb.Scan(ctx, 0, "*"+s.cfg.RedisPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if len(k) > 160 {
			t.Errorf("a %d-byte Redis key: %.80s…", len(k), k)
		}
		if !strings.Contains(k, ":rl:") {
			continue // sessions
		}
		limiterKeys++
		if strings.Contains(k, "example.com") || strings.Contains(k, "xxxx") {
			t.Errorf("limiter key %q holds an identifier, not a hash of it", k)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > 31*24*time.Hour {
			t.Errorf("limiter key %q: TTL %v, %v; want it to expire by itself", k, ttl, err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if limiterKeys == 0 {
		t.Fatalf("no limiter state in Redis under %q: the limits are not shared by the replicas", s.cfg.RedisPrefix+":rl:")
	}
}

// A flood of logins with a 60 KiB identifier and no password, each answered
// 400, leaves the issuer's memory where it was: no input allocates lasting
// state before it is validated and bounded (measured as the VmRSS of a real
// bin/issuer).
func TestLoginFloodLeavesNoState(t *testing.T) {
	base, pid := startIssuerBinary(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=1000000/1m"})
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer hc.CloseIdleConnections()
	flood := func(n int) {
		var wg sync.WaitGroup
		var next atomic.Int32
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= int32(n) {
					id := strings.Repeat(strings.ToLower(rand.Text()), 60<<10/26+1)[:60<<10]
					res, err := hc.Post(base+"/login", "application/json", strings.NewReader(`{"identifier":"`+id+`"}`))
					if err != nil {
						t.Error(err)
						return
					}
					res.Body.Close()
					if res.StatusCode != 400 {
						t.Errorf("login with a 60 KiB identifier and no password: %d, want 400", res.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	flood(200) // warm up: buffers, pools, the heap's first growth
	before := vmRSS(t, pid)
	flood(2000)
	after := vmRSS(t, pid)
	t.Logf("issuer VmRSS %d MiB before, %d MiB after 2,000 logins with 60 KiB identifiers (%+d MiB)", before>>20, after>>20, (after-before)>>20)
	if after-before > 64<<20 {
		t.Fatalf("2,000 rejected logins grew the issuer's RSS by %d MiB (bound: 64 MiB)", (after-before)>>20)
	}
}

// startIssuerBinary runs $JOTGUARD_ISSUER_BIN on the dev stack, with its own
// database and prefix and the settings env, and returns its URL and pid.
func startIssuerBinary(t *testing.T, env map[string]string) (string, int) {
	t.Helper()
	bin := sdktest.RequireEnv(t, "JOTGUARD_ISSUER_BIN")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "JOTGUARD_ISSUER_ADDR="+addr, "JOTGUARD_ISSUER=http://"+addr,
		"JOTGUARD_MONGO_DB="+randName(), "JOTGUARD_REDIS_PREFIX="+randName(), "JOTGUARD_COOKIE_SECURE=false",
		"JOTGUARD_ARGON2_MEMORY=64", "JOTGUARD_ARGON2_TIME=1", "JOTGUARD_LOG_LEVEL=error", "JOTGUARD_SHUTDOWN_GRACE=2s")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return base, cmd.Process.Pid
			}
		}
		select {
		case <-done:
			t.Fatalf("%s exited before it was ready", bin)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s", bin)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vmRSS reads the resident set size of process pid from /proc.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
