package stack

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOIDCProvider starts Hydra and its sign-in app, and signs in at it
// as a relying party would: discovery, a client through the admin API, the
// sign-in form with the claims a test chooses, the code exchanged for an
// ID token that carries them.
func TestOIDCProvider(t *testing.T) {
	// make build writes bin/hydra beside bin/devstack.
	devstack := os.Getenv("JOTGUARD_DEVSTACK_BIN")
	if devstack == "" {
		const msg = "JOTGUARD_DEVSTACK_BIN is not set: `make test` sets it, beside bin/hydra"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := filepath.Join(filepath.Dir(devstack), "hydra")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Hydra beside the dev stack (make build writes it): %v", err)
	}
	s, err := Start(t.Context(), Options{Services: []string{OIDC}, HydraBin: bin, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if env := strings.Join(s.Env(), " "); !strings.Contains(env, "JOTGUARD_HYDRA_URL="+s.HydraURL) ||
		!strings.Contains(env, "JOTGUARD_HYDRA_ADMIN_URL="+s.HydraAdminURL) {
		t.Fatalf("Env() = %s", env)
	}
	var disc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, s.HydraURL+".well-known/openid-configuration", &disc)
	if disc.Issuer != s.HydraURL {
		t.Fatalf("discovery's issuer %q, want %q", disc.Issuer, s.HydraURL)
	}

	const redirect = "http://127.0.0.1:1/callback" // never dialed: the client stops there
	id, secret := "stack-test", rand.Text()
	body, _ := json.Marshal(map[string]any{"client_id": id, "client_secret": secret, "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}, "scope": "openid email"})
	r, err := http.Post(s.HydraAdminURL+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil || r.StatusCode != http.StatusCreated {
		t.Fatalf("create client: %v %v", r, err)
	}
	r.Body.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	auth := s.HydraURL + "oauth2/auth?" + url.Values{"client_id": {id}, "response_type": {"code"}, "scope": {"openid email"},
		"redirect_uri": {redirect}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"}}.Encode()
	page, err := c.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="challenge" value="([^"]+)"`).FindSubmatch(b)
	if m == nil || !strings.Contains(string(b), "Signing in to stack-test") {
		t.Fatalf("sign-in page: %s\n%s", page.Status, b)
	}
	// email_verified unchecked: the ID token says false.
	r, err = c.PostForm(page.Request.URL.Scheme+"://"+page.Request.URL.Host+"/login", url.Values{"challenge": {string(m[1])},
		"action": {"accept"}, "email": {"Ada@Example.com"}, "subject": {"ada-1"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc, _ := url.Parse(r.Header.Get("Location"))
	if loc == nil || loc.Query().Get("state") != "state-0123456789" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect back: %s %q", r.Status, r.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPost, disc.TokenEndpoint, strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "redirect_uri": {redirect}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	_ = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	parts := strings.Split(tok.IDToken, ".")
	if len(parts) != 3 {
		t.Fatalf("token answer %s without an ID token", tr.Status)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	if claims["sub"] != "ada-1" || claims["email"] != "Ada@Example.com" || claims["email_verified"] != false ||
		claims["nonce"] != "nonce-0123456789" || claims["iss"] != s.HydraURL {
		t.Fatalf("ID token claims: %v", claims)
	}
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	r, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, r.Status)
	}
	if err := json.NewDecoder(r.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
