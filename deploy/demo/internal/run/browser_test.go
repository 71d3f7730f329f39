package run

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// TestAccountPagesInChromium starts what `make run` starts and clicks
// through the account pages in Debian's Chromium, as a newcomer would:
// register, open the verification mail in the inbox (Mailpit), verify,
// sign in, see a second sign-in from elsewhere, sign it out (the running
// verifier then refuses its access token), change the password, sign out.
// With JOTGUARD_SCREENSHOTS set to a directory it saves the sign-in page
// and the account page there (make screenshots: docs/img).
func TestAccountPagesInChromium(t *testing.T) {
	backends := backendsFromEnv(t)
	browser := startChromium(t)
	bin := buildBinaries(t)
	suffix := strings.ToLower(rand.Text()[:8])
	issuerAddr := freeAddr(t)
	sys, err := Start(t.Context(), Options{BinDir: bin, DataDir: t.TempDir(), Backends: backends, Timeout: time.Minute,
		IssuerAddr: issuerAddr, VerifierAddr: freeAddr(t), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t),
		Extra: []string{"JOTGUARD_MONGO_DB=pages_" + suffix, "JOTGUARD_REDIS_PREFIX=pages" + suffix,
			"JOTGUARD_OIDC_PROVIDERS=" + devProvider(t, "http://"+issuerAddr)}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer sys.Stop()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(sys.Log("issuer"))
			t.Logf("issuer log:\n%s", tailString(string(b), 40))
		}
	}()
	shots := os.Getenv("JOTGUARD_SCREENSHOTS")
	email := "ada-" + suffix + "@example.com"
	if shots != "" {
		email = "ada@example.com" // the database is new: the address is free
	}
	const first, second = "correct horse battery staple", "purple monkey dishwasher tuesday"
	b := &tab{t: t, ctx: browser, base: sys.IssuerURL}

	// Register.
	b.open("/account/register", "Create an account")
	b.fill("#email", email)
	b.fill("#new_password", first)
	b.click(`form[action="/account/register"] button`, "Check your inbox")
	b.sees("We sent a link to " + email)

	// The mail, in the inbox; its link opens a page with a button.
	link := verificationLink(t, sys.InboxURL, email)
	if !strings.HasPrefix(link, sys.IssuerURL+"/account/verify-email?token=") {
		t.Fatalf("the mail links to %s, want the issuer's verify-email page", link)
	}
	b.openURL(link, "Verify your email address")
	b.click(`form[action="/account/verify-email"] button`, "Address verified")

	// Sign in (the account page sends a newcomer to the sign-in page).
	b.click(`a.button.primary`, "Sign in")
	b.viewport(1000, 760)
	b.screenshot(shots, "account-sign-in.png")
	b.fill("#identifier", email)
	b.fill("#password", first)
	b.click(`form[action="/account/login"] button`, "Your account")

	// A second sign-in elsewhere (the API, from a phone): two sessions.
	other := apiLogin(t, sys.IssuerURL, email, first, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) Version/18.5 Mobile/15E148 Safari/604.1")
	if code := hello(t, sys.VerifierURL, other); code != http.StatusOK {
		t.Fatalf("the other session's token at the verifier: %d, want 200", code)
	}
	b.open("/account/", "Your account")
	if n := b.count(".sessions li"); n != 2 {
		t.Fatalf("%d sessions listed, want 2 (this browser and the phone)", n)
	}
	b.sees("Safari on iOS")
	b.sees("This device")
	b.viewport(1000, 1300)
	b.screenshot(shots, "account-page.png")

	// The page fits a 360 px wide screen: nothing scrolls sideways.
	b.viewport(360, 740)
	if w := b.eval("document.documentElement.scrollWidth"); w > 360 {
		t.Errorf("the account page is %d px wide on a 360 px screen", w)
	}
	b.viewport(1000, 1300)

	// Sign the phone out: the verifier refuses its token.
	b.click(`form[action="/account/sessions/revoke"] button`, "Your account")
	b.sees("That device is signed out.")
	if n := b.count(".sessions li"); n != 1 {
		t.Fatalf("%d sessions listed after signing the other out, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for hello(t, sys.VerifierURL, other) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the verifier still accepts the signed-out session's access token after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A wrong current password is said next to its field; then the change.
	b.fill("#current_password", "not my password at all")
	b.fill("#new_password", second)
	b.click(`form[action="/account/password"] button`, "Your account")
	b.sees("The password is wrong.")
	b.fill("#current_password", first)
	b.fill("#new_password", second)
	b.click(`form[action="/account/password"] button`, "Your account")
	b.sees("Your password is changed.")

	// Sign out; the old password no longer signs in, the new one does.
	b.click(`header form button`, "Sign in")
	b.sees("You are signed out.")
	b.fill("#identifier", email)
	b.fill("#password", first)
	b.click(`form[action="/account/login"] button`, "Sign in")
	b.sees("The email address, username or password is wrong.")
	b.fill("#password", second)
	b.click(`form[action="/account/login"] button`, "Your account")

	// Sign out, and in again with the dev stack's OpenID provider (Hydra)
	// as someone new: back on the account page, signed in, the provider
	// listed.
	b.click(`header form button`, "Sign in")
	b.click(`a[href="/oauth/dev/start"]`, "Dev OpenID provider")
	b.fill(`input[name="email"]`, "grace-"+suffix+"@example.com")
	b.click(`button[value="accept"]`, "Your account")
	b.sees("grace-" + suffix + "@example.com")
	b.sees("Linked accounts")
	b.sees("Dev provider")
}

// devProvider registers a client of the dev stack's Hydra for the issuer
// at base and returns the JOTGUARD_OIDC_PROVIDERS value naming it "dev".
func devProvider(t *testing.T, base string) string {
	t.Helper()
	admin := sdktest.RequireEnv(t, "JOTGUARD_HYDRA_ADMIN_URL")
	id, secret := "browser-test-"+strings.ToLower(rand.Text()[:10]), rand.Text()
	body, _ := json.Marshal(map[string]any{"client_id": id, "client_secret": secret,
		"redirect_uris": []string{base + "/oauth/dev/callback"}, "grant_types": []string{"authorization_code"},
		"response_types": []string{"code"}, "scope": "openid email profile"})
	r, err := http.Post(admin+"/admin/clients", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("hydra: create client: %s", r.Status)
	}
	p, _ := json.Marshal([]map[string]string{{"name": "dev", "display_name": "Dev provider",
		"issuer": sdktest.RequireEnv(t, "JOTGUARD_HYDRA_URL"), "client_id": id, "client_secret": secret}})
	return string(p)
}

// startChromium starts a headless Chromium with a profile of its own and
// returns a tab's context. Without Chromium the test fails when CI is set,
// and is skipped otherwise; a Chromium that does not start fails it.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed (apt-get install chromium): the account pages' browser test needs it"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: a missing browser fails)")
		}
		t.Skip(msg)
	}
	// As root Chromium needs --no-sandbox; without the network switches it
	// tries to reach Google's servers and stalls on a closed network.
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 760),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"))
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// The first action starts the browser, which lives as long as the
	// context of that action: bound the start with a timer, not a timeout.
	timer := time.AfterFunc(time.Minute, cancelTab)
	defer timer.Stop()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("Chromium (%s) did not start: %v", path, err)
	}
	return ctx
}

// tab drives one browser tab; every step fails the test after 30 s.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.text())
	}
}

// text is what the page shows, for failure messages.
func (b *tab) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.location.href + '\\n' + document.body.innerText"))
	return s
}

// heading waits until the page's h1 is heading.
func (b *tab) heading(heading string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector("h1")||{}).textContent||""`))
		if h == heading {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the page's heading is %q, want %q\npage: %s", h, heading, b.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *tab) open(path, heading string) { b.t.Helper(); b.openURL(b.base+path, heading) }

func (b *tab) openURL(u, heading string) {
	b.t.Helper()
	b.do("open "+u, chromedp.Navigate(u))
	b.heading(heading)
}

// fill types value into the input sel, emptied first.
func (b *tab) fill(sel, value string) {
	b.t.Helper()
	b.eval(fmt.Sprintf("document.querySelector(%q).value = ''; 0", sel))
	b.do("fill "+sel, chromedp.SendKeys(chromedp.CSS(sel), value))
}

// click presses a form's button (or a link) and waits for the next page.
func (b *tab) click(sel, heading string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("click %s: %v\npage: %s", sel, err, b.text())
	}
	b.heading(heading)
}

// sees fails unless the page shows text.
func (b *tab) sees(text string) {
	b.t.Helper()
	if page := b.text(); !strings.Contains(page, text) {
		b.t.Fatalf("the page does not say %q:\n%s", text, page)
	}
}

func (b *tab) count(sel string) int {
	return b.eval(fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

func (b *tab) eval(js string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return n
}

func (b *tab) viewport(w, h int64) { b.t.Helper(); b.do("viewport", chromedp.EmulateViewport(w, h)) }

// screenshot saves the page as dir/name (PNG) when dir is set.
func (b *tab) screenshot(dir, name string) {
	b.t.Helper()
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(png))
}

// verificationLink waits for the verification mail to reach the inbox
// and returns its link.
func verificationLink(t *testing.T, inbox, to string) string {
	t.Helper()
	if inbox == "" {
		t.Fatal("no mail inbox: the dev stack's JOTGUARD_MAILPIT_URL is needed")
	}
	re := regexp.MustCompile(`https?://\S+/account/verify-email\?token=[A-Za-z0-9_-]+`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Messages []struct{ ID string } }
		getJSON(t, inbox+"/api/v1/search?query="+url.QueryEscape("to:"+to), &list)
		if len(list.Messages) > 0 {
			var m struct{ Text string }
			getJSON(t, inbox+"/api/v1/message/"+list.Messages[0].ID, &m)
			if link := re.FindString(m.Text); link != "" {
				return link
			}
			t.Fatalf("the mail to %s has no verification link:\n%s", to, m.Text)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s in the inbox after 30 s", to)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
}

// apiLogin signs in through the JSON API with userAgent and returns the
// access token.
func apiLogin(t *testing.T, issuer, email, password, userAgent string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, _ := http.NewRequest(http.MethodPost, issuer+"/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("API login: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// hello calls the demo through the verifier with token and returns the
// status.
func hello(t *testing.T, verifier, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, verifier+"/hello", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// chromedp is for this test only: no binary of the module links it.
func TestChromedpStaysInTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/jotguard/jotguard/deploy/demo/internal/run") {
		t.Fatal("go list -deps ../../cmd/... does not list this package: the check checks nothing")
	}
	if strings.Contains(string(out), "github.com/chromedp/") {
		t.Error("a binary of deploy/demo depends on chromedp; keep it in tests")
	}
}
