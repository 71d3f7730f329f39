package client_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/client"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// mailbox reads the dev stack's Mailpit (JOTGUARD_MAILPIT_URL): the mail
// the real issuer sent over SMTP.
type mailbox struct {
	t   *testing.T
	api string
}

func (m mailbox) get(path string, out any) {
	m.t.Helper()
	res, err := http.Get(m.api + path)
	if err != nil {
		m.t.Fatalf("Mailpit: %v", err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		m.t.Fatalf("Mailpit GET %s: %v", path, err)
	}
}

var tokenRe = regexp.MustCompile(`/account/(?:verify-email|reset-password)\?token=([A-Za-z0-9_-]+)`)

// token waits for the n-th message to addr whose subject has subject and
// returns the token of its link.
func (m mailbox) token(addr, subject string, n int) string {
	m.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var l struct {
			Messages []struct{ ID, Subject string }
		}
		m.get("/api/v1/search?query="+url.QueryEscape("to:"+addr), &l)
		var ids []string
		for _, msg := range l.Messages {
			if strings.Contains(msg.Subject, subject) {
				ids = append(ids, msg.ID)
			}
		}
		if len(ids) >= n {
			var msg struct{ Text string }
			m.get("/api/v1/message/"+ids[0], &msg) // newest first
			match := tokenRe.FindStringSubmatch(msg.Text)
			if match == nil {
				m.t.Fatalf("no link in the mail:\n%s", msg.Text)
			}
			return match[1]
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%d mails %q to %s after 60 s, want %d", len(ids), subject, addr, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every account method against the real issuer, its mail read from
// Mailpit.
func TestRealAccount(t *testing.T) {
	box := mailbox{t, sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")}
	iss := sdktest.StartIssuerProcess(t, map[string]string{"JOTGUARD_SMTP_URL": sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL")})
	c := client.New(iss.URL)
	ctx := t.Context()
	u, tok := signUp(t, c)

	if err := c.ResendVerification(ctx, tok.AccessToken); err != nil {
		t.Fatalf("ResendVerification: %v", err)
	}
	verified, err := c.VerifyEmail(ctx, box.token(u.Email, "Confirm your email", 2))
	if err != nil || !verified.EmailVerified || verified.ID != u.ID {
		t.Fatalf("VerifyEmail = %+v, %v", verified, err)
	}
	if _, err := c.VerifyEmail(ctx, box.token(u.Email, "Confirm your email", 2)); !client.HasCode(err, client.CodeInvalidLinkToken) {
		t.Fatalf("VerifyEmail with a used link: %v, want %s", err, client.CodeInvalidLinkToken)
	}

	str := func(s string) *string { return &s }
	name := "ada_" + strings.ToLower(time.Now().Format("150405.000"))
	next := newEmail()
	p, err := c.UpdateProfile(ctx, tok.AccessToken, client.ProfileUpdate{Username: str(name), FirstName: str("Ada"), Email: str(next)})
	if err != nil || p.Username != name || p.FirstName != "Ada" || p.Email != u.Email {
		t.Fatalf("UpdateProfile = %+v, %v; want the names now, the address once verified", p, err)
	}
	if p, err = c.VerifyEmail(ctx, box.token(next, "Confirm your email", 1)); err != nil || p.Email != next {
		t.Fatalf("VerifyEmail of the new address = %+v, %v", p, err)
	}

	other := login(t, c, next)
	all, err := c.Sessions(ctx, tok.AccessToken)
	if err != nil || len(all) != 2 {
		t.Fatalf("Sessions = %+v, %v; want 2", all, err)
	}
	current := 0
	for _, s := range all {
		if s.SID == "" || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() || s.IP != "127.0.0.1" || s.UserAgent == "" {
			t.Fatalf("session %+v", s)
		}
		if s.Current {
			current++
		}
	}
	if current != 1 {
		t.Fatalf("sessions %+v: %d marked current, want 1", all, current)
	}
	if err := c.RevokeSession(ctx, tok.AccessToken, "no-such-session"); !client.HasCode(err, client.CodeNotFound) {
		t.Fatalf("RevokeSession(unknown): %v", err)
	}
	for _, s := range all {
		if !s.Current {
			if err := c.RevokeSession(ctx, tok.AccessToken, s.SID); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
		}
	}
	if _, err := c.Refresh(ctx, other.RefreshToken); !client.HasCode(err, client.CodeInvalidRefreshToken) {
		t.Fatalf("refresh of the revoked session: %v", err)
	}

	const changed = "a changed passphrase here"
	if err := c.ChangePassword(ctx, tok.AccessToken, "wrong password!", changed); !client.HasCode(err, client.CodeInvalidCredentials) {
		t.Fatalf("ChangePassword with a wrong password: %v", err)
	}
	if err := c.ChangePassword(ctx, tok.AccessToken, password, "password1234"); !client.HasCode(err, client.CodeWeakPassword) {
		t.Fatalf("ChangePassword to a breached password: %v", err)
	}
	if err := c.ChangePassword(ctx, tok.AccessToken, password, changed); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}

	if err := c.ForgotPassword(ctx, next); err != nil {
		t.Fatalf("ForgotPassword: %v", err)
	}
	if err := c.ForgotPassword(ctx, newEmail()); err != nil {
		t.Fatalf("ForgotPassword of an address without an account: %v", err)
	}
	const reset = "a reset passphrase here"
	if err := c.ResetPassword(ctx, box.token(next, "Reset your", 1), reset); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if _, err := c.Me(ctx, tok.AccessToken); !client.HasCode(err, client.CodeInvalidToken) {
		t.Fatalf("Me after a reset: %v, want the session ended", err)
	}
	fresh, err := c.Login(ctx, client.LoginRequest{Email: next, Password: reset})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAccount(ctx, fresh.AccessToken, changed); !client.HasCode(err, client.CodeInvalidCredentials) {
		t.Fatalf("DeleteAccount with an old password: %v", err)
	}
	if err := c.DeleteAccount(ctx, fresh.AccessToken, reset); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if _, err := c.Login(ctx, client.LoginRequest{Email: next, Password: reset}); !client.HasCode(err, client.CodeInvalidCredentials) {
		t.Fatalf("Login after DeleteAccount: %v", err)
	}
}
