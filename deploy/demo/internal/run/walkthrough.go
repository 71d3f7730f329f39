package run

import (
	"fmt"
	"io"
	"strings"
)

// Step is one command of the walk-through: a line of shell to paste, and a
// string its output contains when it worked (a test runs the steps).
type Step struct {
	Title   string
	Command string
	Want    string
	// Eventually: the effect propagates (a revocation reaching the
	// verifier over Kafka, tens of milliseconds on one machine), so a test
	// may repeat the command for a short while.
	Eventually bool
}

// Walkthrough returns the curl walk-through against a running system. jar
// is the cookie jar file; email should be new, so that every run's
// walk-through registers afresh. inboxURL is the dev stack's mail inbox
// (System.InboxURL); without one (mail disabled) the address is not
// verified.
func Walkthrough(issuerURL, verifierURL, inboxURL, email, password, jar string) []Step {
	creds := fmt.Sprintf(`'{"email":"%s","password":"%s"}'`, email, password)
	token := `sed -E 's/.*"access_token":"([^"]+)".*/\1/'`
	steps := []Step{
		{
			Title:   "Register a user (201, the user without secrets): the issuer mails a link that verifies the address",
			Command: fmt.Sprintf(`curl -s -X POST %s/register -H 'Content-Type: application/json' -d %s; echo`, issuerURL, creds),
			Want:    `"email":"` + email + `"`,
		},
	}
	if inboxURL != "" {
		steps = append(steps, Step{
			Title: "Verify the address: find the mail in the inbox (Mailpit's API), take the token of its link, post it (200, email_verified true)",
			Command: fmt.Sprintf(`ID=$(curl -s -G %s/api/v1/search --data-urlencode 'query=to:%s' | sed -E 's/.*"ID":"([^"]+)".*/\1/'); `+
				`LINK_TOKEN=$(curl -s %s/api/v1/message/$ID | grep -o 'verify-email?token=[A-Za-z0-9_-]*' | head -1 | cut -d= -f2); `+
				`curl -s -X POST %s/verify-email -H 'Content-Type: application/json' -d "{\"token\":\"$LINK_TOKEN\"}"; echo`,
				inboxURL, email, inboxURL, issuerURL),
			Want:       `"email_verified":true`,
			Eventually: true, // the mail takes a moment to reach the inbox
		})
	}
	return append(steps, []Step{
		{
			Title: "Log in: the refresh token goes to the cookie jar (HttpOnly cookie), the access token is taken from the JSON body",
			Command: fmt.Sprintf(`TOKEN=$(curl -s -c %s -X POST %s/login -H 'Content-Type: application/json' -d %s | %s); echo "$TOKEN"`,
				jar, issuerURL, creds, token),
			Want: "eyJ",
		},
		{
			Title:   "Call the demo service through the verifier: it checks the token, adds X-Auth-Request-* headers and proxies; the demo verifies again with the sdk",
			Command: fmt.Sprintf(`curl -si %s/hello -H "Authorization: Bearer $TOKEN"`, verifierURL),
			Want:    "HTTP/1.1 200",
		},
		{
			Title:   "Without a token: 401 with an RFC 6750 challenge",
			Command: fmt.Sprintf(`curl -si %s/hello`, verifierURL),
			Want:    "HTTP/1.1 401",
		},
		{
			Title: "Refresh: the cookie's refresh token is rotated (the old one dies) and a new access token is issued",
			Command: fmt.Sprintf(`TOKEN=$(curl -s -b %s -c %s -X POST %s/access_token | %s); echo "$TOKEN"`,
				jar, jar, issuerURL, token),
			Want: "eyJ",
		},
		{
			Title:   "The new access token works",
			Command: fmt.Sprintf(`curl -si %s/hello -H "Authorization: Bearer $TOKEN"`, verifierURL),
			Want:    "HTTP/1.1 200",
		},
		{
			Title:   "Log out: 204; the issuer publishes a signed revocation event for the session on Kafka",
			Command: fmt.Sprintf(`curl -si -b %s -c %s -X POST %s/logout`, jar, jar, issuerURL),
			Want:    "HTTP/1.1 204",
		},
		{
			Title:      "The same call, with the same unexpired access token, is now refused: 401 invalid_token (revoked)",
			Command:    fmt.Sprintf(`curl -si %s/hello -H "Authorization: Bearer $TOKEN"`, verifierURL),
			Want:       "HTTP/1.1 401",
			Eventually: true,
		},
	}...)
}

// Style is how text is printed: with ANSI colour on a terminal, plain when
// piped.
type Style struct{ Color bool }

func (s Style) wrap(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Bold, Dim, Green and Cyan style text.
func (s Style) Bold(t string) string  { return s.wrap("1", t) }
func (s Style) Dim(t string) string   { return s.wrap("2", t) }
func (s Style) Green(t string) string { return s.wrap("32", t) }
func (s Style) Cyan(t string) string  { return s.wrap("36", t) }

// PrintReady writes the banner, the URLs (the sign-in page and the mail
// inbox first: what a person opens) and the walk-through.
func PrintReady(w io.Writer, st Style, sys *System, steps []Step) {
	if st.Color {
		fmt.Fprintln(w, st.Cyan(`
   _       _                            _
  (_) ___ | |_ __ _ _   _  __ _ _ __ __| |
  | |/ _ \| __/ _`+"`"+` | | | |/ _`+"`"+` | '__/ _`+"`"+` |
  | | (_) | || (_| | |_| | (_| | | | (_| |
 _/ |\___/ \__\__, |\__,_|\__,_|_|  \__,_|
|__/          |___/`))
	}
	fmt.Fprintln(w, st.Bold("jotguard is running."))
	fmt.Fprintln(w)
	inbox := st.Bold(sys.InboxURL) + "   (the mail the issuer sends: open it in a browser; Mailpit's API under /api/v1)"
	if sys.InboxURL == "" {
		inbox = "none: mail is disabled (no JOTGUARD_SMTP_URL)"
	}
	rows := [][2]string{
		{"sign in", st.Bold(sys.IssuerURL+"/account/login") + "   (open it in a browser: create an account, verify it, see your sessions)"},
		{"mail inbox", inbox},
		{"issuer API", sys.IssuerURL + "   (register, login, access_token, logout, /.well-known/jwks.json, /openapi.yaml)"},
		{"verifier", sys.VerifierURL + "   (reverse proxy: checks every request, then forwards to the demo)"},
		{"verifier admin", sys.AdminURL + "   (/healthz, /readyz, /metrics of the verifier)"},
		{"demo", sys.DemoURL + "   (upstream; verifies tokens itself too, with the sdk middleware)"},
		{"logs", sys.LogDir + "/{devstack,issuer,demo,verifier}.log"},
	}
	if sys.IssuerEnv != "" {
		rows = append(rows, [2]string{"admin commands", "(set -a; . " + sys.IssuerEnv + "; bin/issuer users create --email you@example.com --roles admin)" +
			"   (the issuer's settings are in " + sys.IssuerEnv + "; the password is read from stdin)"})
	}
	if len(sys.KeyIDs) > 0 {
		rows = append(rows, [2]string{"signing keys", strings.Join(sys.KeyIDs, ", ") + "   (kept in MongoDB: the same on the next run)"})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-15s %s\n", r[0], r[1])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, st.Bold("Try it: paste these lines into another shell (bash or zsh)."))
	for i, s := range steps {
		fmt.Fprintln(w)
		fmt.Fprintln(w, st.Dim(fmt.Sprintf("# %d. %s", i+1, s.Title)))
		fmt.Fprintln(w, st.Green(s.Command))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, st.Bold("Ctrl-C stops everything."))
}
