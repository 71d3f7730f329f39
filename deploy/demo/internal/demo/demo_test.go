package demo_test

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/deploy/demo/internal/demo"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestHello(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	revs := sdktest.NewRevocations(nil)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	srv := httptest.NewServer(demo.Handler(v, nil))
	t.Cleanup(srv.Close)

	claims := iss.Claims("user-1")
	claims.Email, claims.Roles = "ada@example.com", []string{"admin"}
	good := iss.Mint(t, claims)
	revokedClaims := iss.Claims("user-2")
	revoked := iss.Mint(t, revokedClaims)
	revs.Add(revocation.Event{ID: "evt-1", Issuer: iss.URL, Subject: "user-2",
		SessionID: revokedClaims.SessionID, At: time.Now().Add(time.Second)})

	get := func(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, []byte(b.String())
	}

	t.Run("valid token, identity headers echoed", func(t *testing.T) {
		resp, body := get(t, "/hello", map[string]string{"Authorization": "Bearer " + good,
			"X-Auth-Request-User": "user-1"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %s", resp.StatusCode, body)
		}
		var h demo.Hello
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatal(err)
		}
		if h.Sub != "user-1" || h.Email != "ada@example.com" || len(h.Roles) != 1 || h.Roles[0] != "admin" ||
			h.Session != claims.SessionID || h.FromProxy["X-Auth-Request-User"] != "user-1" {
			t.Fatalf("hello = %+v", h)
		}
	})
	for _, tt := range []struct {
		name      string
		hdr       map[string]string
		wantChall string
	}{
		{"no token, even with identity headers", map[string]string{"X-Auth-Request-User": "user-1"}, "Bearer"},
		{"garbage token", map[string]string{"Authorization": "Bearer abc.def.ghi"}, `Bearer error="invalid_token"`},
		{"revoked session", map[string]string{"Authorization": "Bearer " + revoked}, `Bearer error="invalid_token"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, "/hello", tt.hdr)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tt.wantChall) {
				t.Fatalf("status %d, WWW-Authenticate %q, body %s; want 401 %s", resp.StatusCode,
					resp.Header.Get("WWW-Authenticate"), body, tt.wantChall)
			}
		})
	}
	t.Run("healthz, readyz and /public/ are public", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/public/info"} {
			if resp, body := get(t, p, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d, body %s", p, resp.StatusCode, body)
			}
		}
	})
	t.Run("unknown path needs a token too", func(t *testing.T) {
		if resp, _ := get(t, "/admin", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func TestReadyzReportsNotReady(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	srv := httptest.NewServer(demo.Handler(iss.Verifier(t), func() error { return errors.New("replay not caught up") }))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestLoad(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := demo.Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8090" || c.Issuer != "http://127.0.0.1:8080" || c.JWKSURL != "http://127.0.0.1:8080/.well-known/jwks.json" ||
		len(c.KafkaBrokers) != 0 || c.RevocationTopic != "jotguard.revocations" || c.AccessTTL != 5*time.Minute || c.FailClosed {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = demo.Load([]string{"--addr", "127.0.0.1:9999"}, env(map[string]string{"JOTGUARD_DEMO_ADDR": "127.0.0.1:1",
		"JOTGUARD_KAFKA_BROKERS": "a:1, b:2", "JOTGUARD_REVOCATION_FAILURE": "closed"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || len(c.KafkaBrokers) != 2 || !c.FailClosed {
		t.Fatalf("flag over env = %+v", c)
	}
	for name, val := range map[string]string{"JOTGUARD_DEMO_ADDR": "nope", "JOTGUARD_ISSUER": "ftp://x",
		"JOTGUARD_LEEWAY": "-1s", "JOTGUARD_REVOCATION_FAILURE": "maybe"} {
		_, err := demo.Load(nil, env(map[string]string{name: val}))
		if err == nil || !strings.HasPrefix(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: error %v, want one line naming the variable", name, val, err)
		}
	}
	if _, err := demo.Load([]string{"--help"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
	// Kafka's TLS and SASL, as the verifier reads them.
	c, err = demo.Load([]string{"--kafka-tls", "on"}, env(map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"JOTGUARD_KAFKA_SASL_USERNAME": "demo", "JOTGUARD_KAFKA_SASL_PASSWORD": "pw"}))
	if err != nil || !c.Kafka.TLS || c.Kafka.Mechanism != "SCRAM-SHA-256" {
		t.Errorf("Kafka security = %+v, %v", c.Kafka, err)
	}
	if _, err := demo.Load(nil, env(map[string]string{"JOTGUARD_KAFKA_SASL_USERNAME": "demo"})); err == nil ||
		!strings.HasPrefix(err.Error(), "JOTGUARD_KAFKA_SASL_USERNAME") {
		t.Errorf("a user name without a mechanism: %v, want an error naming JOTGUARD_KAFKA_SASL_USERNAME", err)
	}
}
