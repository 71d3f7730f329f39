package federation

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"golang.org/x/oauth2"
)

// These tests run the flow against a real provider, the dev stack's Ory
// Hydra, up to the callback, then hand Finish (or the ID token check) what
// an attacker could: the checks the app tests cannot reach from a browser.

// The redirect URI is never dialed: the test's browser stops at it.
const publicURL = "http://127.0.0.1:1"

var testKey = bytes.Repeat([]byte{7}, 32)

// newHydraClient registers a client at the dev stack's Hydra for the
// provider "dev" and returns its configuration.
func newHydraClient(t *testing.T) ProviderConfig {
	t.Helper()
	issuer, id, secret := testenv.HydraClient(t, publicURL+CallbackPath("dev"))
	return ProviderConfig{Name: "dev", Issuer: issuer, ClientID: id, ClientSecret: secret}
}

func newFederation(t *testing.T, pc ProviderConfig) *Federation {
	t.Helper()
	f, err := New(Config{Providers: []ProviderConfig{pc}, PublicURL: publicURL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var challengeRe = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// atProvider starts a flow and signs in at Hydra as a verified person;
// it returns the callback request the provider sends the browser to, with
// the flow cookie.
func atProvider(t *testing.T, f *Federation) *http.Request {
	t.Helper()
	rec := httptest.NewRecorder()
	to, err := f.Start(t.Context(), rec, "dev")
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), publicURL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	page, err := c.Get(to)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := challengeRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("hydra's sign-in page: %s\n%s", page.Status, b)
	}
	u := page.Request.URL
	r, err := c.PostForm(u.Scheme+"://"+u.Host+"/login", url.Values{"challenge": {string(m[1])}, "action": {"accept"},
		"email": {"someone@example.com"}, "email_verified": {"true"}, "subject": {"sub-" + rand.Text()}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, publicURL+CallbackPath("dev")) {
		t.Fatalf("hydra's redirect back: %s %q", r.Status, loc)
	}
	cb := httptest.NewRequest(http.MethodGet, loc, nil)
	for _, ck := range rec.Result().Cookies() {
		cb.AddCookie(ck)
	}
	return cb
}

func reason(t *testing.T, err error) string {
	t.Helper()
	f, ok := errors.AsType[*Failure](err)
	if !ok {
		t.Fatalf("want a *Failure, got %v", err)
	}
	return f.Reason
}

// A flow cookie whose nonce is not the one the provider put in the ID
// token (a sign-in spliced with another's) is refused after the code
// exchange, though the state and the code verifier match.
func TestNonceMismatchRefused(t *testing.T) {
	f := newFederation(t, newHydraClient(t))
	cb := atProvider(t, f)
	c, _ := cb.Cookie(flowCookie("dev"))
	var fl flow
	if err := f.seal.open(flowCookie("dev"), c.Value, &fl); err != nil {
		t.Fatal(err)
	}
	fl.Nonce = random()
	forged, err := f.seal.seal(flowCookie("dev"), fl)
	if err != nil {
		t.Fatal(err)
	}
	cb.Header.Del("Cookie")
	cb.AddCookie(&http.Cookie{Name: flowCookie("dev"), Value: forged})
	_, err = f.Finish(t.Context(), httptest.NewRecorder(), cb, "dev")
	if got := reason(t, err); got != "nonce_mismatch" || !errors.Is(err, ErrRejected) {
		t.Fatalf("Finish with another nonce: %s (%v), want nonce_mismatch", got, err)
	}

	// The same callback with its own flow passes: the refusal was the nonce.
	// (A fresh flow: the code above was used.)
	cb = atProvider(t, f)
	id, err := f.Finish(t.Context(), httptest.NewRecorder(), cb, "dev")
	if err != nil || id.Email != "someone@example.com" || !id.EmailVerified || id.Subject == "" {
		t.Fatalf("Finish: %+v, %v", id, err)
	}
}

// An ID token the provider issued to another client (a real one, signed
// by Hydra) is refused: the audience is checked.
func TestIDTokenForAnotherAudienceRefused(t *testing.T) {
	other := newFederation(t, newHydraClient(t))
	cb := atProvider(t, other)
	c, _ := cb.Cookie(flowCookie("dev"))
	var fl flow
	if err := other.seal.open(flowCookie("dev"), c.Value, &fl); err != nil {
		t.Fatal(err)
	}
	oc, _, err := other.providers["dev"].discover(t.Context(), other.cfg.HTTPClient, 0, other.cfg.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oc.Exchange(t.Context(), cb.URL.Query().Get("code"), oauth2.VerifierOption(fl.Verifier))
	if err != nil {
		t.Fatal(err)
	}

	ours := newFederation(t, newHydraClient(t))
	p := ours.providers["dev"]
	_, verifier, err := p.discover(t.Context(), ours.cfg.HTTPClient, 0, ours.cfg.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ours.identity(t.Context(), p, verifier, tok, fl.Nonce)
	if got := reason(t, err); got != "id_token_audience" {
		t.Fatalf("an ID token for another client: %s (%v), want id_token_audience", got, err)
	}
	// For its own client the same token passes.
	op := other.providers["dev"]
	_, ov, _ := op.discover(t.Context(), other.cfg.HTTPClient, 0, other.cfg.Now)
	if _, err := other.identity(t.Context(), op, ov, tok, fl.Nonce); err != nil {
		t.Fatalf("the token for its own client: %v", err)
	}
}

// A flow cookie that was not sealed with our key, or was altered, opens
// to nothing.
func TestFlowCookieSealed(t *testing.T) {
	f := newFederation(t, ProviderConfig{Name: "dev", Issuer: "http://127.0.0.1:1/", ClientID: "c"})
	g, _ := New(Config{Providers: []ProviderConfig{{Name: "dev", Issuer: "http://127.0.0.1:1/", ClientID: "c"}},
		PublicURL: publicURL, Key: bytes.Repeat([]byte{8}, 32)})
	v, err := g.seal.seal(flowCookie("dev"), flow{Provider: "dev", State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	var fl flow
	if err := f.seal.open(flowCookie("dev"), v, &fl); !errors.Is(err, errSealed) {
		t.Fatalf("a cookie sealed with another key opened: %v", err)
	}
	mine, _ := f.seal.seal(flowCookie("dev"), flow{Provider: "dev", State: "s"})
	b := []byte(mine)
	b[len(b)-3] ^= 1
	if err := f.seal.open(flowCookie("dev"), string(b), &fl); !errors.Is(err, errSealed) {
		t.Fatalf("an altered cookie opened: %v", err)
	}
	if err := f.seal.open(flowCookie("other"), mine, &fl); !errors.Is(err, errSealed) {
		t.Fatalf("a cookie opened under another name: %v", err)
	}
}
