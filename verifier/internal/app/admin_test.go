package app_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// app is an upstream with its own /healthz, /readyz and /metrics: it
// answers "app <path>".
func startApp(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "app "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var operational = []string{"/healthz", "/readyz", "/metrics"}

// In proxy mode every path of the main port is the application's (and
// checked); the verifier's own endpoints are on the admin listener only.
func TestAdminListenerInProxyMode(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, withAdmin(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_UPSTREAM": startApp(t)}))
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))
	for _, p := range append(operational, "/authz/forward-auth", "/authz/ext-authz/x") {
		if code, body := getURL(t, v.URL+p, ""); code != http.StatusUnauthorized {
			t.Errorf("main port %s without a token: %d %q, want 401 (checked like any path)", p, code, body)
		}
		if code, body := getURL(t, v.URL+p, tok); code != 200 || body != "app "+p {
			t.Errorf("main port %s with a token: %d %.40q…, want the app's answer", p, code, body)
		}
	}
	for p, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n", "/metrics": "jotguard_verifier_decisions_total"} {
		if code, body := getURL(t, v.AdminURL+p, ""); code != 200 || !strings.Contains(body, want) {
			t.Errorf("admin port %s: %d %q, want 200 with %q", p, code, body, want)
		}
	}
	for _, p := range []string{"/", "/authz/forward-auth", "/hello"} {
		if code, _ := getURL(t, v.AdminURL+p, tok); code != http.StatusNotFound {
			t.Errorf("admin port %s: %d, want 404 (nothing is proxied there)", p, code)
		}
	}
}

// Without JOTGUARD_ADMIN_ADDR a proxy serves no operational endpoint, and
// says so once at start.
func TestNoAdminListenerInProxyMode(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v, tok := startProxy(t, iss, startApp(t), nil)
	for _, p := range operational {
		if code, body := getURL(t, v.URL+p, tok); code != 200 || body != "app "+p {
			t.Errorf("%s with a token: %d %.40q…, want the app's answer", p, code, body)
		}
	}
	if n := strings.Count(v.log.String(), "JOTGUARD_ADMIN_ADDR"); n != 1 {
		t.Errorf("the log names JOTGUARD_ADMIN_ADDR %d times, want once:\n%s", n, v.log)
	}
}

// In check-only mode the operational endpoints move to the admin listener
// when there is one; the check endpoints stay on the main port.
func TestAdminListenerInCheckMode(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, withAdmin(t, map[string]string{"JOTGUARD_ISSUER": iss.URL}))
	waitReady(t, v, 10*time.Second)
	for _, p := range operational {
		if code, _ := getURL(t, v.URL+p, ""); code != http.StatusNotFound {
			t.Errorf("main port %s: %d, want 404", p, code)
		}
		if code, _ := getURL(t, v.AdminURL+p, ""); code != 200 {
			t.Errorf("admin port %s: %d, want 200", p, code)
		}
	}
	if code := v.check(t, iss.Mint(t, iss.Claims("alice"))); code != 200 {
		t.Errorf("forward-auth on the main port: %d", code)
	}
}

// /readyz names the dependency that is not ready, never a backend address
// or a driver's error text (those go to the log).
func TestReadyzNamesTheDependency(t *testing.T) {
	t.Run("keys", func(t *testing.T) {
		gone := freeAddr(t) // nothing listens there
		v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": "http://" + gone})
		code, body := v.get(t, "/readyz")
		if code != http.StatusServiceUnavailable || body != "not ready: keys: signing keys not loaded\n" {
			t.Errorf("/readyz: %d %q", code, body)
		}
	})
	for _, tc := range []struct{ policy, staleness, want string }{
		{"open", "30s", "not ready: revocations: replay not caught up\n"},
		{"closed", "1s", "not ready: revocations: feed unreachable\n"},
	} {
		t.Run("revocations, "+tc.policy, func(t *testing.T) {
			iss := sdktest.NewIssuer(t)
			broker := freeAddr(t) // nothing listens there
			v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_KAFKA_BROKERS": broker,
				"JOTGUARD_REVOCATION_FAILURE": tc.policy, "JOTGUARD_REVOCATION_MAX_STALENESS": tc.staleness})
			var code int
			var body string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if code, body = v.get(t, "/readyz"); code == http.StatusServiceUnavailable && body == tc.want {
					break
				}
				if strings.Contains(body, broker) || strings.Contains(body, iss.URL) {
					t.Fatalf("/readyz names a backend: %q", body)
				}
			}
			if body != tc.want {
				t.Fatalf("/readyz: %d %q, want 503 %q", code, body, tc.want)
			}
		})
	}
}

// On shutdown the admin listener says "shutting down" while an in-flight
// proxied request completes; then both listeners are closed and Run
// returns nil.
func TestDrainBothListeners(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	entered, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(up.Close)
	v := startVerifier(t, withAdmin(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_UPSTREAM": up.URL}))
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))

	done := make(chan string, 1)
	go func() {
		code, body := getURL(t, v.URL+"/slow", tok)
		done <- strings.TrimSpace(body) + " " + http.StatusText(code)
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- v.stop() }()
	eventually(t, 10*time.Second, "admin /readyz 503 shutting down", func() bool {
		code, body := v.get(t, "/readyz")
		return code == http.StatusServiceUnavailable && body == "not ready: shutting down\n"
	})
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if got := <-done; got != "done OK" {
		t.Fatalf("in-flight request: %q, want done OK", got)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, u := range []string{v.URL, v.AdminURL} {
		if c, err := net.Dial("tcp", strings.TrimPrefix(u, "http://")); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", u)
		}
	}
}
