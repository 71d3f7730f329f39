package auth_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// tokenOf returns the token of a mailed link.
func tokenOf(t *testing.T, m auth.Mail) string {
	t.Helper()
	u, err := url.Parse(m.Data[auth.MailLink])
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("mail %s has no link with a token: %q", m.Template, m.Data[auth.MailLink])
	}
	return u.Query().Get("token")
}

func TestCommonPasswords(t *testing.T) {
	for _, pw := range []string{"password", "qwertyuiop", "Password1234"[:8], "1qaz2wsx3edc", "QWERTY123456", "ｑｗｅｒｔｙ１２３４５６"} {
		if !auth.CommonPassword(pw) {
			t.Errorf("CommonPassword(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{pw, "correct horse battery staple", "qwerty123456 "} {
		if auth.CommonPassword(pw) {
			t.Errorf("CommonPassword(%q) = true, want false", pw)
		}
	}
	f := newFixture(t)
	_, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: "QWERTY123456"})
	var v *auth.ValidationError
	if !errors.Is(err, auth.ErrWeakPassword) || !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "password" {
		t.Fatalf("Register with a breached password: %v, want a weak password naming the field", err)
	}
}

func TestCleanUserAgent(t *testing.T) {
	for in, want := range map[string]string{
		"curl/8.5.0":                   "curl/8.5.0",
		"  a\tb\r\nc\x00d\u200be  ":    "a b cde",
		strings.Repeat("é", 200):       strings.Repeat("é", 128),
		"x" + strings.Repeat(" ", 300): "x",
	} {
		if got := auth.CleanUserAgent(in); got != want {
			t.Errorf("CleanUserAgent(%q) = %q, want %q", in, got, want)
		}
	}
}

// Registration mails a link; its token verifies the address once, and the
// session's next refresh carries email_verified without waiting for the
// user recheck.
func TestVerifyEmail(t *testing.T) {
	f, _, _ := snapshotFixture(t, 24*time.Hour) // only the snapshot refresh can show the change
	u, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "A@Example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	m := f.mail.last(t, "a@example.com", auth.MailVerifyEmail)
	if !strings.HasPrefix(m.Data[auth.MailLink], "https://iss/account/verify-email?token=") || m.Data[auth.MailEmail] != "a@example.com" {
		t.Fatalf("verification mail data %v", m.Data)
	}
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err != nil || tok.User.EmailVerified {
		t.Fatalf("Login = %+v, %v; want unverified", tok.User, err)
	}
	got, err := f.svc.VerifyEmail(t.Context(), tokenOf(t, m))
	if err != nil || got.ID != u.ID || !got.EmailVerified {
		t.Fatalf("VerifyEmail = %+v, %v", got, err)
	}
	if _, err := f.svc.VerifyEmail(t.Context(), tokenOf(t, m)); !errors.Is(err, auth.ErrInvalidLinkToken) {
		t.Fatalf("second VerifyEmail: %v, want ErrInvalidLinkToken", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("!", 43)} {
		if _, err := f.svc.VerifyEmail(t.Context(), bad); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("VerifyEmail(%q): %v", bad, err)
		}
	}
	next, err := f.svc.Refresh(t.Context(), tok.RefreshToken)
	if err != nil || !next.User.EmailVerified {
		t.Fatalf("refresh after verification = %+v, %v; want email_verified", next.User, err)
	}
	// Verified: a resend sends nothing.
	if err := f.svc.ResendVerification(t.Context(), next.AccessToken); err != nil || f.mail.count("a@example.com", auth.MailVerifyEmail) != 1 {
		t.Fatalf("resend when verified: %v, %d mails", err, f.mail.count("a@example.com", auth.MailVerifyEmail))
	}
}

func TestRequireVerifiedEmail(t *testing.T) {
	f := newFixture(t)
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: time.Minute,
		RequireVerifiedEmail: true},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{},
			Events: f.events, Links: f.links, Mailer: f.mail})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: "wrong password!!"}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password of an unverified account: %v, want invalid credentials (nothing said about the address)", err)
	}
	if _, err := svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw}); !errors.Is(err, auth.ErrEmailNotVerified) {
		t.Fatalf("login unverified: %v, want ErrEmailNotVerified", err)
	}
	if _, err := svc.VerifyEmail(t.Context(), tokenOf(t, f.mail.last(t, "a@example.com", auth.MailVerifyEmail))); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw}); err != nil {
		t.Fatalf("login verified: %v", err)
	}
}

// An address change takes effect through the link mailed to the new
// address; the old address is told; a link of the old address, or of a
// change the account moved on from, no longer works.
func TestEmailChange(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "taken@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	oldLink := tokenOf(t, f.mail.last(t, "a@example.com", auth.MailVerifyEmail))
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	if _, err := f.svc.UpdateProfile(t.Context(), auth.ProfileInput{AccessToken: tok.AccessToken, Email: str("TAKEN@example.com")}); !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("change to a taken address: %v", err)
	}
	u, err := f.svc.UpdateProfile(t.Context(), auth.ProfileInput{AccessToken: tok.AccessToken, Email: str("b@example.com"),
		FirstName: str(" Ann "), Username: str("ann")})
	if err != nil || u.Email != "a@example.com" || u.FirstName != "Ann" || u.Username != "ann" {
		t.Fatalf("UpdateProfile = %+v, %v; want the names changed, the address not yet", u, err)
	}
	first := tokenOf(t, f.mail.last(t, "b@example.com", auth.MailVerifyEmail))
	if _, err := f.svc.UpdateProfile(t.Context(), auth.ProfileInput{AccessToken: tok.AccessToken, Email: str("c@example.com")}); err != nil {
		t.Fatal(err)
	}
	second := tokenOf(t, f.mail.last(t, "c@example.com", auth.MailVerifyEmail))
	got, err := f.svc.VerifyEmail(t.Context(), second)
	if err != nil || got.Email != "c@example.com" || !got.EmailVerified {
		t.Fatalf("VerifyEmail(change) = %+v, %v", got, err)
	}
	if m := f.mail.last(t, "a@example.com", auth.MailEmailChanged); m.Data[auth.MailNewEmail] != "c@example.com" {
		t.Fatalf("notice to the old address: %v", m.Data)
	}
	for name, link := range map[string]string{"the old address's link": oldLink, "an earlier change's link": first} {
		if _, err := f.svc.VerifyEmail(t.Context(), link); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Errorf("%s after the change: %v, want ErrInvalidLinkToken", name, err)
		}
	}
	if u, _ := f.users.ByEmail(t.Context(), "c@example.com"); u.ID != got.ID {
		t.Fatal("the new address does not find the user")
	}
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw}); err != nil {
		t.Fatalf("register the released address: %v", err)
	}
}

// A reset link works once, even for racing calls, ends every session with
// a password_change event each, and a weak password leaves it unused. An
// address without an account gets no mail and the same answer.
func TestForgotAndResetPassword(t *testing.T) {
	f := newFixture(t)
	u, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for range 2 {
		tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, tok.Session.ID)
	}
	if err := f.svc.ForgotPassword(t.Context(), "nobody@example.com"); err != nil {
		t.Fatalf("forgot for an unknown address: %v", err)
	}
	if err := f.links.DeleteExpired(t.Context(), time.Now()); err != nil || f.links.Len() != 1 {
		t.Fatalf("%d link tokens live after a forgot for an unknown address (%v), want the registration's only", f.links.Len(), err)
	}
	if err := f.svc.ForgotPassword(t.Context(), "not an address"); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("forgot with a malformed address: %v", err)
	}
	if err := f.svc.ForgotPassword(t.Context(), " A@example.com"); err != nil {
		t.Fatal(err)
	}
	m := f.mail.last(t, "a@example.com", auth.MailResetPassword)
	if !strings.HasPrefix(m.Data[auth.MailLink], "https://iss/account/reset-password?token=") {
		t.Fatalf("reset link %q", m.Data[auth.MailLink])
	}
	token := tokenOf(t, m)
	if err := f.svc.ResetPassword(t.Context(), token, "qwerty123456"); !errors.Is(err, auth.ErrWeakPassword) {
		t.Fatalf("reset to a breached password: %v, want ErrWeakPassword", err)
	}
	const newPW = "a brand new passphrase"
	storetest.OneWinner(t, 8, auth.ErrInvalidLinkToken, func(int) error {
		return f.svc.ResetPassword(t.Context(), token, newPW)
	})
	if all, _ := f.sessions.List(t.Context(), u.ID); len(all) != 0 {
		t.Fatalf("sessions after a reset: %v", all)
	}
	reasons := map[string]string{}
	for _, e := range f.events.evs {
		reasons[e.SessionID] = e.Reason
	}
	for _, sid := range sids {
		if reasons[sid] != revocation.ReasonPasswordChange {
			t.Fatalf("events %v, want password_change for %v", reasons, sids)
		}
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: newPW}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	f.mail.last(t, "a@example.com", auth.MailPasswordChanged)
}

func TestChangePasswordDeleteAndSessions(t *testing.T) {
	f := newFixture(t)
	u, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw, Username: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	login := func(password string) auth.Tokens {
		t.Helper()
		tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: password,
			UserAgent: "test/1", IP: "::ffff:192.0.2.7"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a, b := login(pw), login(pw)
	all, cur, err := f.svc.Sessions(t.Context(), a.AccessToken)
	if err != nil || len(all) != 2 || cur != a.Session.ID || all[0].UserAgent != "test/1" || all[0].IP != "192.0.2.7" {
		t.Fatalf("Sessions = %+v, %s, %v", all, cur, err)
	}
	err = f.svc.ChangePassword(t.Context(), auth.ChangePasswordInput{AccessToken: a.AccessToken, CurrentPassword: "wrong one!!!!",
		NewPassword: "another good passphrase"})
	if !errors.Is(err, auth.ErrWrongPassword) {
		t.Fatalf("change with a wrong current password: %v", err)
	}
	const newPW = "another good passphrase"
	if err := f.svc.ChangePassword(t.Context(), auth.ChangePasswordInput{AccessToken: a.AccessToken, CurrentPassword: pw,
		NewPassword: newPW}); err != nil {
		t.Fatal(err)
	}
	if all, _, _ := f.svc.Sessions(t.Context(), a.AccessToken); len(all) != 1 || all[0].ID != a.Session.ID {
		t.Fatalf("sessions after a change: %+v, want the caller's only", all)
	}
	if e := f.events.evs[len(f.events.evs)-1]; e.SessionID != b.Session.ID || e.Reason != revocation.ReasonPasswordChange {
		t.Fatalf("last event %+v, want password_change of the other session", e)
	}
	c := login(newPW)
	if err := f.svc.RevokeSession(t.Context(), a.AccessToken, "nope"); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("RevokeSession(unknown) = %v", err)
	}
	if err := f.svc.RevokeSession(t.Context(), a.AccessToken, c.Session.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.events.evs[len(f.events.evs)-1]; e.SessionID != c.Session.ID || e.Reason != revocation.ReasonLogout {
		t.Fatalf("last event %+v, want logout of the revoked session", e)
	}
	if err := f.svc.DeleteAccount(t.Context(), auth.DeleteAccountInput{AccessToken: a.AccessToken, Password: pw}); !errors.Is(err, auth.ErrWrongPassword) {
		t.Fatalf("delete with the old password: %v", err)
	}
	if err := f.svc.DeleteAccount(t.Context(), auth.DeleteAccountInput{AccessToken: a.AccessToken, Password: newPW}); err != nil {
		t.Fatal(err)
	}
	if e := f.events.evs[len(f.events.evs)-1]; e.Subject != u.ID || e.SessionID != "" || e.Reason != revocation.ReasonAccountDeleted {
		t.Fatalf("last event %+v, want a user-wide account_deleted", e)
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: newPW}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("login after deletion: %v", err)
	}
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw, Username: "ann"}); err != nil {
		t.Fatalf("register the deleted account's address: %v", err)
	}
	f.mail.last(t, "a@example.com", auth.MailAccountDeleted)
}

// A password reset removes every linked provider account whose provider
// had not verified the address, and keeps those whose provider had: the
// first may be someone else's claim of the address; a reset proves the
// mailbox is the user's.
func TestResetPasswordRemovesIdentitiesOfUnverifiedAddresses(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	reset := func(password string) {
		t.Helper()
		if err := f.svc.ForgotPassword(ctx, "a@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.ResetPassword(ctx, tokenOf(t, f.mail.last(t, "a@example.com", auth.MailResetPassword)), password); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
	}
	claimed := auth.ExternalIdentity{Provider: "lax", Subject: "attacker", Email: "a@example.com"}
	tok, err := f.svc.SignInExternal(ctx, auth.ExternalSignIn{Identity: claimed})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.users.ByID(ctx, tok.Session.UserID)
	if len(u.Identities) != 1 || u.Identities[0].EmailVerified || u.EmailVerified {
		t.Fatalf("a first sign-in with an unverified address: %+v", u)
	}
	reset(pw)
	if u, _ = f.users.ByID(ctx, u.ID); len(u.Identities) != 0 {
		t.Fatalf("identities after the reset: %+v, want none", u.Identities)
	}
	if all, _ := f.sessions.List(ctx, u.ID); len(all) != 0 {
		t.Fatalf("sessions after the reset: %v", all)
	}
	if _, err := f.svc.SignInExternal(ctx, auth.ExternalSignIn{Identity: claimed}); !errors.Is(err, auth.ErrExternalEmailInUse) {
		t.Fatalf("the removed identity signs in again: %v, want ErrExternalEmailInUse", err)
	}

	// A provider that verified the address, linked with the password,
	// outlives a reset.
	strict := auth.ExternalIdentity{Provider: "strict", Subject: "owner", Email: "a@example.com", EmailVerified: true}
	var lr *auth.LinkRequiredError
	if _, err := f.svc.SignInExternal(ctx, auth.ExternalSignIn{Identity: strict}); !errors.As(err, &lr) {
		t.Fatalf("a verified address of the account: %v, want LinkRequiredError", err)
	}
	if _, err := f.svc.LinkExternal(ctx, auth.LinkInput{Pending: lr.Pending, Password: pw}); err != nil {
		t.Fatal(err)
	}
	reset("another long passphrase")
	if u, _ = f.users.ByID(ctx, u.ID); len(u.Identities) != 1 || u.Identities[0].Subject != "owner" || !u.Identities[0].EmailVerified {
		t.Fatalf("identities after a second reset: %+v, want the verified link", u.Identities)
	}
	if tok, err := f.svc.SignInExternal(ctx, auth.ExternalSignIn{Identity: strict}); err != nil || tok.Session.UserID != u.ID {
		t.Fatalf("the verified link after the reset: %+v, %v", tok.Session, err)
	}
}
