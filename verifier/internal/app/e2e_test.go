package app_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitReady polls /readyz until 200.
func waitReady(t *testing.T, v *verifier, d time.Duration) {
	t.Helper()
	eventually(t, d, "verifier /readyz 200", func() bool { code, _ := v.get(t, "/readyz"); return code == 200 })
}

// untilDenied polls the verifier every 2 ms until token gets 401 and returns
// how long that took (a 401 at the first poll counts the poll's own round
// trip).
func untilDenied(t *testing.T, v *verifier, token string, limit time.Duration) time.Duration {
	d, _ := untilDeniedPolls(t, v, token, limit)
	return d
}

func untilDeniedPolls(t *testing.T, v *verifier, token string, limit time.Duration) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	for polls := 1; ; polls++ {
		switch code := v.check(t, token); code {
		case 401:
			return time.Since(start), polls
		case 200:
		default:
			t.Fatalf("status %d while waiting for the revocation", code)
		}
		if time.Since(start) > limit {
			t.Fatalf("token still accepted %s after logout", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuer(t, stack)
	v := startVerifier(t, is.verifierEnv(stack))
	waitReady(t, v, 30*time.Second)
	email := is.register(t)

	t.Run("login, allowed, logout, denied", func(t *testing.T) {
		tok := is.login(t, email)
		if code := v.check(t, tok); code != 200 {
			t.Fatalf("fresh token: %d, want 200", code)
		}
		is.logout(t, tok, "local")
		d := untilDenied(t, v, tok, 5*time.Second)
		t.Logf("revocation propagation (logout response -> first 401): %s", d)
	})

	t.Run("propagation over 50 logouts", func(t *testing.T) {
		const n = 50
		var ds []time.Duration
		first := 0
		for range n {
			tok := is.login(t, email)
			if code := v.check(t, tok); code != 200 {
				t.Fatalf("fresh token: %d, want 200", code)
			}
			is.logout(t, tok, "local")
			d, polls := untilDeniedPolls(t, v, tok, 5*time.Second)
			ds = append(ds, d)
			if polls == 1 {
				first++
			}
		}
		slices.Sort(ds)
		t.Logf("revocation propagation over %d logouts: median %s, p90 %s, max %s; denied at the first poll %d times",
			n, ds[n/2], ds[n*9/10], ds[n-1], first)
	})

	t.Run("global logout, then a new login in the same second", func(t *testing.T) {
		user := is.register(t)
		old1, old2 := is.login(t, user), is.login(t, user)
		for _, tok := range []string{old1, old2} {
			if code := v.check(t, tok); code != 200 {
				t.Fatalf("before logout: %d", code)
			}
		}
		is.logout(t, old1, "global")
		fresh := is.login(t, user)
		loggedOut := time.Now()
		untilDenied(t, v, old1, 5*time.Second)
		untilDenied(t, v, old2, 5*time.Second)
		if code := v.check(t, fresh); code != 200 {
			t.Fatalf("a login right after the global logout: %d, want 200", code)
		}
		same := iat(t, fresh) == loggedOut.Unix() || iat(t, fresh) == iat(t, old1)
		t.Logf("new token iat %d, old token iat %d, logout around %d (same second: %v)",
			iat(t, fresh), iat(t, old1), loggedOut.Unix(), same)
	})
}

// iat reads a token's iat without verifying it (for logging).
func iat(t *testing.T, tok string) int64 {
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		IAT float64 `json:"iat"`
	}
	_ = json.Unmarshal(b, &c)
	return int64(c.IAT)
}

func TestRestartReplaysRevocations(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuer(t, stack)
	env := is.verifierEnv(stack)
	v1 := startVerifier(t, env)
	waitReady(t, v1, 30*time.Second)
	email := is.register(t)
	revoked, kept := is.login(t, email), is.login(t, email)
	is.logout(t, revoked, "local")
	untilDenied(t, v1, revoked, 5*time.Second)
	if err := v1.stop(); err != nil {
		t.Fatalf("stopping the first verifier: %v", err)
	}

	v2 := startVerifier(t, env)
	var notReady int
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := v2.get(t, "/readyz")
		if code == 200 {
			break
		}
		if code != 503 {
			t.Fatalf("/readyz: %d, want 503 or 200", code)
		}
		notReady++
		// before the replay has caught up, the revoked token is never let through
		if c := v2.check(t, revoked); c == 200 {
			t.Fatalf("revoked token accepted by a verifier that is not ready")
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted verifier not ready within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("/readyz answered 503 %d times before 200", notReady)
	if code := v2.check(t, revoked); code != 401 {
		t.Fatalf("revoked token after the replay: %d, want 401", code)
	}
	if code := v2.check(t, kept); code != 200 {
		t.Fatalf("other session after the replay: %d, want 200", code)
	}
}

func TestJWKSOutage(t *testing.T) {
	stack := stackEnv(t)
	t.Run("issuer stopped: known keys keep verifying", func(t *testing.T) {
		is := startIssuer(t, stack)
		v := startVerifier(t, is.verifierEnv(stack))
		waitReady(t, v, 30*time.Second)
		email := is.register(t)
		seen, unseen := is.login(t, email), is.login(t, email)
		if code := v.check(t, seen); code != 200 {
			t.Fatalf("before the outage: %d", code)
		}
		is.stop()
		// unseen is not in the verified-token cache: its signature is checked now
		for _, tok := range []string{seen, unseen} {
			if code := v.check(t, tok); code != 200 {
				t.Fatalf("issuer down: %d, want 200", code)
			}
		}
		if code, body := v.get(t, "/readyz"); code != 200 {
			t.Fatalf("issuer down: /readyz %d %s, want 200 (keys are cached)", code, body)
		}
	})
	t.Run("cold start without the issuer: not ready until it appears", func(t *testing.T) {
		addr := freeAddr(t)
		env := map[string]string{"JOTGUARD_ISSUER": "http://" + addr,
			"JOTGUARD_KAFKA_BROKERS": stack["JOTGUARD_KAFKA_BROKERS"], "JOTGUARD_REVOCATION_TOPIC": stack["JOTGUARD_REVOCATION_TOPIC"],
			"JOTGUARD_ACCESS_TTL": accessTTL}
		v := startVerifier(t, env)
		for range 5 {
			if code, _ := v.get(t, "/readyz"); code != 503 {
				t.Fatalf("no issuer: /readyz %d, want 503", code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code := v.check(t, "a.b.c"); code != 401 { // malformed needs no keys
			t.Fatalf("malformed token without keys: %d", code)
		}
		is := startIssuerAt(t, stack, addr)
		waitReady(t, v, 30*time.Second)
		tok := is.login(t, is.register(t))
		if code := v.check(t, tok); code != 200 {
			t.Fatalf("after the issuer appeared: %d, want 200", code)
		}
	})
}

// An issuer whose tokens live longer than a verifier is configured for
// (issuer 40 s, verifier 2 s with a 1 s leeway) must not get a logged-out
// token accepted again once the verifier has forgotten the revocation: the
// verifier refuses tokens that outlive its setting, before and after the
// logout.
func TestLifetimeMismatchNeverResurrects(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuerAt(t, stack, freeAddr(t), "JOTGUARD_ACCESS_TTL=40s")
	env := is.verifierEnv(stack)
	env["JOTGUARD_ACCESS_TTL"], env["JOTGUARD_LEEWAY"] = "2s", "1s"
	v := startVerifier(t, env)
	waitReady(t, v, 30*time.Second)
	tok := is.login(t, is.register(t))
	first := v.check(t, tok)
	is.logout(t, tok, "local")
	untilDenied(t, v, tok, 5*time.Second)
	time.Sleep(5 * time.Second) // past the verifier's retention of the logout (2 s + 2 × 1 s)
	if code := v.check(t, tok); code != 401 {
		t.Fatalf("logged-out token %s after the logout: %d, want 401 (before the logout: %d)", 5*time.Second, code, first)
	}
	if first != 401 {
		t.Fatalf("a 40 s token at a verifier for 2 s tokens: %d, want 401", first)
	}
}
