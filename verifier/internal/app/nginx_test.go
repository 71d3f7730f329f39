package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// nginxBin finds nginx; like sdktest.RequireEnv, a missing one skips the
// test outside CI and fails it in CI.
func nginxBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	msg := "nginx is not installed (Debian package nginx; .ci/run installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a missing dependency fails)")
	}
	t.Skip(msg)
	return ""
}

// exampleConf is the shipped deploy/examples/nginx.conf, moved to test
// addresses and a private directory: the test runs what users copy.
func exampleConf(t *testing.T, dir, listen, upstream, verifier string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "examples", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for old, new := range map[string]string{
		"server 127.0.0.1:8090;": "server " + strings.TrimPrefix(upstream, "http://") + ";",
		"listen 8000;":           "listen " + listen + ";",
		"http://127.0.0.1:8081":  verifier,
		"http {": fmt.Sprintf("http {\n    access_log off;\n    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n"+
			"    fastcgi_temp_path %[1]s/fastcgi;\n    uwsgi_temp_path %[1]s/uwsgi;\n    scgi_temp_path %[1]s/scgi;", dir),
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/examples/nginx.conf no longer has %q", old)
		}
		conf = strings.Replace(conf, old, new, 1)
	}
	return []byte(fmt.Sprintf("daemon off;\nmaster_process off;\npid %[1]s/nginx.pid;\nerror_log %[1]s/error.log info;\n", dir) + conf)
}

func TestNginxAuthRequest(t *testing.T) {
	bin := nginxBin(t)
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL})
	waitReady(t, v, 10*time.Second)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(up.Close)

	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, exampleConf(t, dir, addr, up.URL, v.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = tlogWriter{t}, tlogWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})
	base := "http://" + addr
	eventually(t, 10*time.Second, "nginx listening", func() bool {
		select {
		case <-done:
			t.Fatal("nginx exited")
		default:
		}
		res, err := client.Get(base + "/")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})

	get := func(t *testing.T, token string) (*http.Response, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/x?y=1", nil)
		req.Header.Set("X-Auth-Request-User", "root") // spoofed
		req.Header.Set("X-Auth-Request-Roles", "admin")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var h http.Header
		if res.StatusCode == 200 {
			if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
				t.Fatal(err)
			}
		}
		return res, h
	}

	t.Run("valid token reaches the upstream with the identity headers", func(t *testing.T) {
		c := iss.Claims("alice")
		c.Email, c.EmailVerified, c.Roles = "alice@example.com", true, []string{"user", "ops"}
		res, h := get(t, iss.Mint(t, c))
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		want := map[string]string{"X-Auth-Request-User": "alice", "X-Auth-Request-Email": "alice@example.com",
			"X-Auth-Request-Session": c.SessionID, "X-Auth-Request-Roles": "user,ops"}
		for k, v := range want {
			if got := strings.Join(h.Values(k), "|"); got != v {
				t.Errorf("upstream saw %s = %q, want %q", k, got, v)
			}
		}
	})
	t.Run("invalid token: 401 with the challenge, upstream not reached", func(t *testing.T) {
		c := iss.Claims("alice")
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		res, _ := get(t, iss.Mint(t, c))
		if ch := res.Header.Values("WWW-Authenticate"); res.StatusCode != 401 || len(ch) != 1 || !strings.Contains(ch[0], `error="invalid_token"`) {
			t.Fatalf("status %d, WWW-Authenticate %q, want one invalid_token challenge", res.StatusCode, ch)
		}
	})
	t.Run("no token: 401 Bearer", func(t *testing.T) {
		res, _ := get(t, "")
		if ch := res.Header.Values("WWW-Authenticate"); res.StatusCode != 401 || len(ch) != 1 || ch[0] != "Bearer" {
			t.Fatalf("status %d, WWW-Authenticate %q, want one Bearer challenge", res.StatusCode, ch)
		}
	})
	t.Run("an ambiguous URI: 403 for the client (not a 500), upstream not reached", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = io.WriteString(conn, "GET /public/..;/admin HTTP/1.1\r\nHost: app\r\nConnection: close\r\n"+
			"Authorization: Bearer "+iss.Mint(t, iss.Claims("alice"))+"\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 403 (the verifier) or 400 (the public location's own rule)", res.StatusCode)
		}
	})
	t.Run("a token without the spoofed role: spoofed headers never reach the upstream", func(t *testing.T) {
		c := iss.Claims("bob") // no email, no roles
		res, h := get(t, iss.Mint(t, c))
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if got := h.Values("X-Auth-Request-User"); len(got) != 1 || got[0] != "bob" {
			t.Errorf("upstream saw X-Auth-Request-User %q, want [bob]", got)
		}
		if got := h.Values("X-Auth-Request-Roles"); len(got) != 0 {
			t.Errorf("upstream saw X-Auth-Request-Roles %q, want none", got)
		}
	})
}
