package app_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// startEcho is an upstream that accepts a websocket upgrade and then echoes
// every line it reads (raw bytes: the proxy does not look into frames).
func startEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString(line)
			_ = brw.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tunnel is an upgraded connection through the verifier.
type tunnel struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialTunnel upgrades GET /ws at addr with token; it fails the test unless
// the answer is 101.
func dialTunnel(t *testing.T, addr, token string) *tunnel {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d, want 101", res.StatusCode)
	}
	return &tunnel{conn: conn, br: br}
}

// echo sends a line and returns what came back (err when the tunnel is
// closed).
func (tn *tunnel) echo(line string) (string, error) {
	if _, err := io.WriteString(tn.conn, line+"\n"); err != nil {
		return "", err
	}
	got, err := tn.br.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// waitClosed reads until the verifier closes the tunnel; 20 s without that
// fails the test (a hang detector).
func (tn *tunnel) waitClosed(t *testing.T, why string) {
	t.Helper()
	_ = tn.conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, tn.br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the tunnel is still open 20 s after %s", why)
	}
}

// A websocket tunnel lives as long as its token is accepted: it is closed
// once the token expires, while a tunnel with a valid token stays open.
func TestWebSocketEndsWhenTheTokenExpires(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v, long := startProxy(t, iss, startEcho(t), map[string]string{"JOTGUARD_LEEWAY": "1s"})
	addr := strings.TrimPrefix(v.URL, "http://")

	c := iss.Claims("bob")
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * time.Second))
	short := iss.Mint(t, c)
	stays, ends := dialTunnel(t, addr, long), dialTunnel(t, addr, short)
	for _, tn := range []*tunnel{stays, ends} {
		if got, err := tn.echo("hello"); err != nil || got != "hello" {
			t.Fatalf("echo through a fresh tunnel: %q %v", got, err)
		}
	}
	ends.waitClosed(t, "its token expired")
	if got, err := stays.echo("still there"); err != nil || got != "still there" {
		t.Fatalf("the tunnel with a valid token: %q %v, want it open", got, err)
	}

	// an upgrade without a token is refused like any request
	res, _ := raw(t, addr, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade without a token: %d, want 401", res.StatusCode)
	}
}

// A logout closes the session's open websocket tunnels.
func TestWebSocketEndsAtLogout(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuer(t, stack)
	env := is.verifierEnv(stack)
	env["JOTGUARD_UPSTREAM"] = startEcho(t)
	v := startVerifier(t, env)
	email := is.register(t)
	tok, other := is.login(t, email), is.login(t, email)
	waitAllowed(t, v, tok, 30*time.Second)
	addr := strings.TrimPrefix(v.URL, "http://")
	ends, stays := dialTunnel(t, addr, tok), dialTunnel(t, addr, other)
	if got, err := ends.echo("hello"); err != nil || got != "hello" {
		t.Fatalf("echo through a fresh tunnel: %q %v", got, err)
	}
	is.logout(t, tok, "local")
	ends.waitClosed(t, "the logout")
	if got, err := stays.echo("still there"); err != nil || got != "still there" {
		t.Fatalf("the other session's tunnel: %q %v, want it open", got, err)
	}
}

// Shutdown ends open tunnels (the server does not track hijacked
// connections, so nothing else would).
func TestWebSocketEndsAtShutdown(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v, tok := startProxy(t, iss, startEcho(t), nil)
	tn := dialTunnel(t, strings.TrimPrefix(v.URL, "http://"), tok)
	if got, err := tn.echo("hello"); err != nil || got != "hello" {
		t.Fatalf("echo through a fresh tunnel: %q %v", got, err)
	}
	if err := v.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	tn.waitClosed(t, "the verifier stopped")
}
