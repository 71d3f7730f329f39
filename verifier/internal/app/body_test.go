package app_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A request body that stops arriving is cut after
// JOTGUARD_PROXY_BODY_TIMEOUT without data (408, connection closed), on a
// public path, on a checked one and when the check fails before the body
// is read; an upload that keeps sending is not cut, however long it takes.
func TestProxyBodyTimeout(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		if r.URL.Path == "/public/slow" {
			time.Sleep(3 * time.Second) // longer than the body timeout
		}
		fmt.Fprintf(w, "read %d", n)
	}))
	t.Cleanup(up.Close)
	v, tok := startProxy(t, iss, up.URL, map[string]string{"JOTGUARD_PUBLIC_PATHS": "/public", "JOTGUARD_PROXY_BODY_TIMEOUT": "2s"})
	addr := strings.TrimPrefix(v.URL, "http://")

	// open sends the head of a POST to path and returns the connection.
	open := func(t *testing.T, path, head string) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // hang detector
		if _, err := io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: app\r\n"+head+"\r\n"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	// closedAfter reads what the verifier answers and then expects the
	// connection to end: the status it answered (0 for none).
	closedAfter := func(t *testing.T, conn net.Conn) int {
		t.Helper()
		br := bufio.NewReader(conn)
		status := 0
		if res, err := http.ReadResponse(br, nil); err == nil {
			status = res.StatusCode
			_, _ = io.Copy(io.Discard, res.Body)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no answer within 20 s: the stalled body holds the connection")
		}
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("answered %d, then held the connection open for 20 s", status)
		}
		return status
	}

	// answer reads the response on conn.
	answer := func(t *testing.T, conn net.Conn) (int, string) {
		t.Helper()
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	stalled := []struct{ name, path, head, body string }{
		{"public path, Content-Length", "/public/upload", "Content-Length: 100\r\n", "only ten.."},
		{"public path, chunked", "/public/upload", "Transfer-Encoding: chunked\r\n", "a\r\nonly ten..\r\n"},
		{"checked path with a token", "/upload", "Content-Length: 100\r\nAuthorization: Bearer " + tok + "\r\n", "only ten.."},
		{"checked path without a token", "/upload", "Content-Length: 100\r\n", "only ten.."},
	}
	for _, tc := range stalled {
		t.Run("stalled: "+tc.name, func(t *testing.T) {
			conn := open(t, tc.path, tc.head)
			_, _ = io.WriteString(conn, tc.body) // then nothing more
			status := closedAfter(t, conn)
			want := http.StatusRequestTimeout
			if strings.Contains(tc.name, "without a token") {
				want = http.StatusUnauthorized // answered at once; the connection still ends
			}
			if status != want {
				t.Errorf("answered %d, want %d", status, want)
			}
		})
	}
	t.Run("a slow answer after the whole body is not cut", func(t *testing.T) {
		conn := open(t, "/public/slow", "Content-Length: 10\r\nConnection: close\r\n")
		_, _ = io.WriteString(conn, "0123456789")
		if code, body := answer(t, conn); code != 200 || body != "read 10" {
			t.Fatalf("%d %q, want 200 read 10", code, body)
		}
	})
	t.Run("slow but steady upload completes", func(t *testing.T) {
		conn := open(t, "/public/upload", "Content-Length: 150\r\nConnection: close\r\n")
		for range 15 { // 3 s in all, longer than the timeout; 0.2 s between chunks
			time.Sleep(200 * time.Millisecond)
			if _, err := io.WriteString(conn, "0123456789"); err != nil {
				t.Fatalf("the upload was cut: %v", err)
			}
		}
		if code, body := answer(t, conn); code != 200 || body != "read 150" {
			t.Fatalf("%d %q, want 200 read 150", code, body)
		}
	})
}
