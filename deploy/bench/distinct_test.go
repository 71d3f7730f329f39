package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
)

// The distinct tokens verify with the key the bench serves, are kept for
// the next run, and each load generator sends the first N of them in
// rotation, one per request.
func TestDistinctTokens(t *testing.T) {
	dir, log := t.TempDir(), newLogger(t.Output())
	ts, err := distinctTokens(dir, 50, log)
	if err != nil || ts.Reused {
		t.Fatalf("distinctTokens: %+v, %v", ts, err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(ts.JWKS) }))
	defer jwks.Close()
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: ts.Issuer, Audience: []string{"jotguard"}, JWKSURL: jwks.URL,
		MaxTokenLifetime: tokenLifetime})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := readTokens(ts.File, 0)
	if err != nil || len(toks) != 50 {
		t.Fatalf("%d tokens, %v", len(toks), err)
	}
	subs := map[string]bool{}
	for _, tok := range toks {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("a distinct token does not verify: %v", err)
		}
		subs[c.Subject+" "+c.SessionID] = true
	}
	if len(subs) != 50 {
		t.Fatalf("%d distinct users and sessions in 50 tokens", len(subs))
	}
	if again, err := distinctTokens(dir, 40, log); err != nil || !again.Reused || string(again.JWKS) != string(ts.JWKS) {
		t.Fatalf("a second run with fewer tokens did not reuse them: %+v, %v", again, err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+" "+r.Header.Get("X-Forwarded-Host")]++
		mu.Unlock()
	}))
	defer srv.Close()
	check := func(name string, h *httpLoader) {
		mu.Lock()
		clear(seen)
		mu.Unlock()
		r, err := h.RunTokens(name, srv.URL, 2, time.Second, TokenFile{File: ts.File, N: 20}, "X-Forwarded-Host: app.example")
		if err != nil || r.Errors > 0 || r.N < 40 {
			t.Fatalf("%s: %+v, %v", name, r, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, tok := range toks[:20] {
			if seen[tok+" app.example"] == 0 {
				t.Fatalf("%s: token %.20s… never sent (%d distinct requests)", name, tok, len(seen))
			}
		}
		if len(seen) != 20 {
			t.Fatalf("%s sent %d distinct requests, want the first 20 tokens only", name, len(seen))
		}
	}
	goLoad, err := newHTTPLoader("go", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	check("go", goLoad)
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed (CI is set): apt-get install wrk")
		}
		t.Skip("wrk not installed")
	}
	wrk, err := newHTTPLoader("wrk", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	check("wrk", wrk)
}

// The report says why the module proxy refused a module, without its host.
func TestRefusal(t *testing.T) {
	out := "go: module github.com/ory/oathkeeper: reading https://proxy.example/github.com/ory/oathkeeper/@v/list: 403 Forbidden\n" +
		"\tserver response: This module version is not available.\n"
	if got, want := refusal(out, nil), `403 Forbidden: "This module version is not available."`; got != want {
		t.Fatalf("refusal = %q, want %q", got, want)
	}
	if got := firstLine("go: downloading x v1\ngo: reading https://proxy.example/x/@v/list: 500\n", nil); strings.Contains(got, "proxy.example") {
		t.Fatalf("firstLine kept the host: %q", got)
	}
}
