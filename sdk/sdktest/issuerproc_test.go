package sdktest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// An IssuerProcess serves on its URL with a fresh database, and is gone
// after Stop.
func TestIssuerProcessStop(t *testing.T) {
	p := sdktest.StartIssuerProcess(t, map[string]string{"JOTGUARD_ACCESS_TTL": "1m"})
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || p.Env["JOTGUARD_ISSUER"] != p.URL ||
		!strings.HasPrefix(p.Env["JOTGUARD_MONGO_DB"], "sdktest_") || p.Env["JOTGUARD_ACCESS_TTL"] != "1m" {
		t.Fatalf("URL %s, settings %v", p.URL, p.Env)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := hc.Get(p.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /.well-known/openid-configuration: %s", res.Status)
	}
	p.Stop()
	if res, err := hc.Get(p.URL + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatalf("the issuer still answers after Stop: %s", res.Status)
	}
	p.Stop() // twice is harmless
}
