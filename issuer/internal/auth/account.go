package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jotguard/jotguard/sdk/revocation"
	"golang.org/x/text/unicode/norm"
)

// The account flows: email verification and change, password reset and
// change, profile, deletion, and a user's view of their sessions. Each logs
// what it did at info level with the user id, never a token, a password or
// a full address.

// linkTokenLen is the length of a link token: 256 random bits, base64url
// without padding.
const linkTokenLen = 43

// NewLinkToken returns the token of a mailed link: 256 random bits,
// base64url without padding.
func NewLinkToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormedLink reports whether t has the form NewLinkToken gives: any
// other value names no link, and is refused before a store is asked.
func wellFormedLink(t string) bool {
	if len(t) != linkTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil
}

// Link paths, on Config.PublicURL: the pages that show the links' forms.
const (
	VerifyEmailPath   = "/account/verify-email"
	ResetPasswordPath = "/account/reset-password"
)

func (s *Service) link(path, token string) string {
	return s.cfg.PublicURL + path + "?token=" + url.QueryEscape(token)
}

// MaxUserAgent bounds the user agent kept with a session, in bytes.
const MaxUserAgent = 256

// CleanUserAgent is the user agent kept with a session: control and
// invisible characters dropped, spaces collapsed, cut to MaxUserAgent
// bytes at a character boundary.
func CleanUserAgent(ua string) string {
	if len(ua) > 4*MaxUserAgent {
		ua = ua[:4*MaxUserAgent]
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(ua, "") {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs):
			continue
		}
		n := utf8.RuneLen(r)
		if space {
			n++
		}
		if b.Len()+n > MaxUserAgent {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cleanIP is the client address kept with a session: a parsed address, or
// "" for anything else.
func cleanIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || len(ip) > 64 {
		return ""
	}
	return a.WithZone("").Unmap().String()
}

// sendVerification mails a link that confirms addr for user u: u's own
// address (from == ""), or the address u asked to change to from from.
func (s *Service) sendVerification(ctx context.Context, u User, addr, from string) error {
	token := NewLinkToken()
	now := s.cfg.Now().UTC()
	if err := s.d.Links.Create(ctx, token, LinkToken{Purpose: LinkVerifyEmail, UserID: u.ID, Email: addr, From: from,
		ExpiresAt: now.Add(s.cfg.VerifyTokenTTL)}); err != nil {
		return err
	}
	return s.d.Mailer.Send(ctx, Mail{To: addr, Template: MailVerifyEmail,
		Data: map[string]string{MailLink: s.link(VerifyEmailPath, token), MailEmail: addr}})
}

// notify sends a notice; a failure to queue it is logged, not returned:
// the change it tells of is done.
func (s *Service) notify(ctx context.Context, userID, to, template string, data map[string]string) {
	if err := s.d.Mailer.Send(ctx, Mail{To: to, Template: template, Data: data}); err != nil {
		s.log.ErrorContext(ctx, "notice mail not queued", "user_id", userID, "template", template, "err", err)
	}
}

// restoreLink puts back a link token used up by a request that then
// failed (a backend down), so that the user can try the link again.
func (s *Service) restoreLink(ctx context.Context, token string, t LinkToken) {
	if err := s.d.Links.Create(context.WithoutCancel(ctx), token, t); err != nil {
		s.log.WarnContext(ctx, "used link not restored after a failure", "user_id", t.UserID, "err", err)
	}
}

// refreshSnapshots writes u, as read after a change, into the user
// snapshot of each of its sessions, so that their next refresh mints
// tokens that show the change (email_verified, a new address, names)
// without waiting for UserRecheck. A snapshot read earlier cannot overwrite
// it (SessionStore.SetSnapshot keeps the newer). It is stamped a
// millisecond after now, the precision stores keep, so that it also wins
// over a read stamped in the same millisecond, which may predate the
// change. Best effort: the snapshots are rechecked within UserRecheck
// anyway.
func (s *Service) refreshSnapshots(ctx context.Context, u User) {
	snap := UserSnapshot{User: u.Public(), CheckedAt: s.cfg.Now().UTC().Add(time.Millisecond)}
	all, err := s.d.Sessions.List(ctx, u.ID)
	for _, sess := range all {
		err = errors.Join(err, s.d.Sessions.SetSnapshot(ctx, u.ID, sess.ID, snap))
	}
	if err != nil {
		s.log.WarnContext(ctx, "user snapshots not refreshed: sessions see the change within the recheck interval",
			"user_id", u.ID, "err", err)
	}
}

// VerifyEmail uses the token of an email verification link. A link for
// the user's address marks it verified; a link for an address the user
// asked to change to switches to it (ErrEmailTaken if another account took
// it meanwhile), and the old address is told. Either way the user's
// sessions mint tokens with the change at their next refresh. The token is
// used up by the first call, whatever its outcome, unless a backend failed.
func (s *Service) VerifyEmail(ctx context.Context, token string) (User, error) {
	if !wellFormedLink(token) {
		return User{}, ErrInvalidLinkToken
	}
	lt, err := s.d.Links.Consume(ctx, token, LinkVerifyEmail, s.cfg.Now().UTC())
	if err != nil {
		return User{}, err
	}
	u, err := s.verifyEmail(ctx, lt)
	if errors.Is(err, ErrUnavailable) {
		s.restoreLink(ctx, token, lt)
	}
	return u, err
}

func (s *Service) verifyEmail(ctx context.Context, lt LinkToken) (User, error) {
	u, err := s.d.Users.ByID(ctx, lt.UserID)
	switch {
	case errors.Is(err, ErrUserNotFound): // deleted since
		return User{}, ErrInvalidLinkToken
	case err != nil:
		return User{}, err
	}
	if lt.From == "" { // the user's own address
		if u.Email != lt.Email { // changed since: this link confirms an address the account no longer has
			return User{}, ErrInvalidLinkToken
		}
		if !u.EmailVerified {
			switch err := s.d.Users.SetEmailVerified(ctx, u.ID, u.Email); {
			case errors.Is(err, ErrConflict), errors.Is(err, ErrUserNotFound):
				return User{}, ErrInvalidLinkToken
			case err != nil:
				return User{}, err
			}
			u.EmailVerified = true
			s.log.InfoContext(ctx, "email verified", "user_id", u.ID)
			s.audit(ctx, AuditEmailVerified, u.ID, u.ID, "")
		}
		s.refreshSnapshots(ctx, u)
		return u, nil
	}
	// An address change, asked for while the account had the address From:
	// a link of a change the account moved on from is dead.
	if u.Email != lt.From {
		return User{}, ErrInvalidLinkToken
	}
	switch err := s.d.Users.SetEmail(ctx, u.ID, lt.From, lt.Email); {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrUserNotFound):
		return User{}, ErrInvalidLinkToken
	case err != nil:
		return User{}, err
	}
	u.Email, u.EmailVerified = lt.Email, true
	s.log.InfoContext(ctx, "email changed", "user_id", u.ID)
	s.audit(ctx, AuditEmailChanged, u.ID, u.ID, "")
	s.refreshSnapshots(ctx, u)
	s.notify(ctx, u.ID, lt.From, MailEmailChanged, map[string]string{MailNewEmail: lt.Email})
	return u, nil
}

// ResendVerification mails the user of an access token another link that
// confirms their address; nothing when it is verified already. Mail to one
// address is limited (Throttle.Mail).
func (s *Service) ResendVerification(ctx context.Context, accessToken string) error {
	sess, err := s.accessSession(ctx, accessToken)
	if err != nil {
		return err
	}
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		s.log.InfoContext(ctx, "verification not resent: the address is verified", "user_id", u.ID)
		return nil
	}
	if err := s.d.Throttle.Mail(ctx, EmailKey(u.Email)); err != nil {
		return err
	}
	if err := s.sendVerification(ctx, u, u.Email, ""); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "verification resent", "user_id", u.ID)
	return nil
}

// sessionUser returns the user of a live session; ErrInvalidAccessToken
// when it is gone.
func (s *Service) sessionUser(ctx context.Context, sess Session) (User, error) {
	u, err := s.d.Users.ByID(ctx, sess.UserID)
	if errors.Is(err, ErrUserNotFound) {
		return User{}, ErrInvalidAccessToken
	}
	return u, err
}

// decoyPurpose is the purpose of the link token ForgotPassword writes and
// uses up for an address without an account.
const decoyPurpose = "decoy"

// ForgotPassword mails a password reset link to the account of email, if
// there is one. It answers the same, after work of the same kind, whether
// or not there is: the per-recipient limit is asked for any address, and
// for an address without an account (or a disabled one) an expired token
// is written and read where a token and the mail would have been written. A
// malformed address is refused (ErrInvalidInput).
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	addr, err := CanonicalEmail(email)
	if err != nil {
		reason := err.Error()
		if strings.TrimSpace(email) == "" {
			reason = "is required"
		}
		return &ValidationError{Fields: []FieldError{{"email", reason}}}
	}
	if err := s.d.Throttle.Mail(ctx, EmailKey(addr)); err != nil {
		return err
	}
	u, err := s.d.Users.ByEmail(ctx, addr)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return err
	}
	now := s.cfg.Now().UTC()
	token := NewLinkToken()
	if err != nil || u.Disabled {
		// Two round trips, as a token and a queued mail take: a write of a
		// token that is expired already (the sweep deletes it) and a read.
		if err := s.d.Links.Create(ctx, token, LinkToken{Purpose: decoyPurpose, ExpiresAt: now}); err != nil {
			return err
		}
		if _, err := s.d.Links.Peek(ctx, token, decoyPurpose, now); err != nil && !errors.Is(err, ErrInvalidLinkToken) {
			return err
		}
		s.log.InfoContext(ctx, "password reset asked for an address without an account", "to", MaskEmail(addr))
		return nil
	}
	if err := s.d.Links.Create(ctx, token, LinkToken{Purpose: LinkResetPassword, UserID: u.ID, Email: u.Email,
		ExpiresAt: now.Add(s.cfg.ResetTokenTTL)}); err != nil {
		return err
	}
	if err := s.d.Mailer.Send(ctx, Mail{To: u.Email, Template: MailResetPassword,
		Data: map[string]string{MailLink: s.link(ResetPasswordPath, token)}}); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password reset link sent", "user_id", u.ID)
	return nil
}

// ResetPassword uses the token of a password reset link to set a new
// password, removes every linked provider account whose provider had not
// verified the address (the reset proves the mailbox is the user's, the
// link may be someone else's claim of it), then ends every session of the
// user with a password_change event each, and mails a notice. Of
// concurrent calls with one token, exactly one succeeds. A password the rules refuse leaves the token
// unused.
func (s *Service) ResetPassword(ctx context.Context, token, password string) error {
	pw := norm.NFKC.String(password)
	v := &ValidationError{}
	if token == "" {
		v.Fields = append(v.Fields, FieldError{"token", "is required"})
	}
	s.checkPassword(v, "password", pw)
	if err := v.err(); err != nil {
		return err
	}
	if !wellFormedLink(token) {
		return ErrInvalidLinkToken
	}
	lt, err := s.d.Links.Consume(ctx, token, LinkResetPassword, s.cfg.Now().UTC())
	if err != nil {
		return err
	}
	if err := s.resetPassword(ctx, lt, pw); err != nil {
		if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBusy) {
			s.restoreLink(ctx, token, lt)
		}
		return err
	}
	return nil
}

func (s *Service) resetPassword(ctx context.Context, lt LinkToken, pw string) error {
	u, err := s.d.Users.ByID(ctx, lt.UserID)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return ErrInvalidLinkToken
	case err != nil:
		return err
	case u.Email != lt.Email: // sent to an address the account no longer has
		return ErrInvalidLinkToken
	}
	if err := s.setPassword(ctx, u.ID, pw); err != nil {
		return err
	}
	// Before the sessions end, so that no sign-in through such a link
	// opens one after.
	if err := s.unlinkUnverified(ctx, u); err != nil {
		return err
	}
	n, err := s.endSessions(ctx, u.ID, "", revocation.ReasonPasswordChange, "user")
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password reset", "user_id", u.ID, "sessions_ended", n)
	s.audit(ctx, AuditPasswordReset, u.ID, u.ID, "sessions="+strconv.Itoa(n))
	s.notify(ctx, u.ID, u.Email, MailPasswordChanged, nil)
	return nil
}

func (s *Service) setPassword(ctx context.Context, userID, pw string) error {
	hash, err := s.d.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	switch err := s.d.Users.SetPasswordHash(ctx, userID, hash); {
	case errors.Is(err, ErrUserNotFound):
		return ErrInvalidLinkToken
	case err != nil:
		return err
	}
	return nil
}

// endSessions ends every session of the user but keep (none when ""):
// one event each with reason and initiator, then the sessions are deleted.
// It answers how many it ended.
func (s *Service) endSessions(ctx context.Context, userID, keep, reason, initiator string) (int, error) {
	all, err := s.d.Sessions.List(ctx, userID)
	if err != nil {
		return 0, err
	}
	sids := make([]string, 0, len(all))
	for _, o := range all {
		if o.ID != keep {
			sids = append(sids, o.ID)
		}
	}
	if len(sids) == 0 {
		return 0, nil
	}
	if err := s.publish(ctx, reason, initiator, userID, sids...); err != nil {
		return 0, err
	}
	return s.d.Sessions.Delete(ctx, userID, sids...)
}

// ChangePasswordInput is a password change by the user of an access token.
type ChangePasswordInput struct {
	AccessToken     string
	CurrentPassword string
	NewPassword     string
	Network         string // the client's network, for the Throttle
}

// ChangePassword sets a new password once the current one is confirmed
// (checked under the same limits as a login's), ends the user's other
// sessions (a password_change event each; the caller's session lives on)
// and mails a notice.
func (s *Service) ChangePassword(ctx context.Context, in ChangePasswordInput) error {
	sess, err := s.accessSession(ctx, in.AccessToken)
	if err != nil {
		return err
	}
	pw := norm.NFKC.String(in.NewPassword)
	v := &ValidationError{}
	if in.CurrentPassword == "" {
		v.Fields = append(v.Fields, FieldError{"current_password", "is required"})
	}
	s.checkPassword(v, "new_password", pw)
	if err := v.err(); err != nil {
		return err
	}
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, in.CurrentPassword, in.Network); err != nil {
		return err
	}
	if err := s.setPassword(ctx, u.ID, pw); err != nil {
		return err
	}
	n, err := s.endSessions(ctx, u.ID, sess.ID, revocation.ReasonPasswordChange, "user")
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed", "user_id", u.ID, "sessions_ended", n)
	s.audit(ctx, AuditPasswordChanged, u.ID, u.ID, "sessions="+strconv.Itoa(n))
	s.notify(ctx, u.ID, u.Email, MailPasswordChanged, nil)
	return nil
}

// confirmPassword checks the current password of a signed-in user, under
// the Throttle's password limits: ErrWrongPassword when it does not match.
func (s *Service) confirmPassword(ctx context.Context, u User, password, network string) error {
	pw := norm.NFKC.String(password)
	if utf8.RuneCountInString(pw) > s.cfg.PasswordMax {
		pw = string([]rune(pw)[:s.cfg.PasswordMax+1]) // cannot match; bounded work
	}
	done, err := s.d.Throttle.PasswordAttempt(ctx, "u:"+u.ID, network)
	if err != nil {
		if errors.Is(err, ErrRateLimited) {
			s.audit(ctx, AuditLoginFailed, u.ID, u.ID, "confirmation rate_limited")
		}
		return err
	}
	ok, _, err := s.d.Hasher.Verify(ctx, pw, u.PasswordHash)
	switch {
	case err != nil:
		done(AttemptNotChecked)
		return err
	case !ok:
		done(AttemptFailed)
		s.log.InfoContext(ctx, "password confirmation failed", "user_id", u.ID)
		s.audit(ctx, AuditLoginFailed, u.ID, u.ID, "confirmation wrong_password")
		return ErrWrongPassword
	}
	done(AttemptMatched)
	return nil
}

// ProfileInput is a change of the user's profile: nil fields stay as they
// are.
type ProfileInput struct {
	AccessToken                          string
	Username, FirstName, LastName, Email *string
}

// UpdateProfile changes the user's names and username at once, and for a
// new email address mails a link to it: the address changes only once
// that link is used (VerifyEmail). An address or username another account
// has is refused (ErrEmailTaken, ErrUsernameTaken). It returns the user.
func (s *Service) UpdateProfile(ctx context.Context, in ProfileInput) (User, error) {
	sess, err := s.accessSession(ctx, in.AccessToken)
	if err != nil {
		return User{}, err
	}
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return User{}, err
	}
	p := Profile{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName}
	v := &ValidationError{}
	if in.Username != nil {
		p.Username = strings.TrimSpace(*in.Username)
		if p.Username != "" {
			if _, err := UsernameKey(p.Username); err != nil {
				v.Fields = append(v.Fields, FieldError{"username", err.Error()})
			}
		}
	}
	if in.FirstName != nil {
		p.FirstName = strings.TrimSpace(*in.FirstName)
		checkName(v, "first_name", p.FirstName)
	}
	if in.LastName != nil {
		p.LastName = strings.TrimSpace(*in.LastName)
		checkName(v, "last_name", p.LastName)
	}
	newEmail := ""
	if in.Email != nil {
		switch addr, err := CanonicalEmail(*in.Email); {
		case err != nil:
			v.Fields = append(v.Fields, FieldError{"email", err.Error()})
		case addr != u.Email:
			newEmail = addr
		}
	}
	if err := v.err(); err != nil {
		return User{}, err
	}
	if newEmail != "" {
		// Said now rather than when the link is used; the switch checks again.
		switch other, err := s.d.Users.ByEmail(ctx, newEmail); {
		case err == nil && other.ID != u.ID:
			return User{}, ErrEmailTaken
		case err != nil && !errors.Is(err, ErrUserNotFound):
			return User{}, err
		}
		if err := s.d.Throttle.Mail(ctx, EmailKey(newEmail)); err != nil {
			return User{}, err
		}
	}
	if p != (Profile{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName}) {
		if u, err = s.d.Users.UpdateProfile(ctx, u.ID, p); err != nil {
			return User{}, err
		}
		s.log.InfoContext(ctx, "profile updated", "user_id", u.ID)
		s.refreshSnapshots(ctx, u)
	}
	if newEmail != "" {
		if err := s.sendVerification(ctx, u, newEmail, u.Email); err != nil {
			return User{}, err
		}
		s.log.InfoContext(ctx, "email change asked: link sent to the new address", "user_id", u.ID)
	}
	return u, nil
}

// DeleteAccountInput is the deletion of the account of an access token.
type DeleteAccountInput struct {
	AccessToken string
	Password    string
	Network     string // the client's network, for the Throttle
}

// DeleteAccount removes the user once their password is confirmed: a
// user-wide account_deleted event first (every token of the user dies),
// then the user (its address and username may be registered again) and
// its sessions, and a notice mail.
func (s *Service) DeleteAccount(ctx context.Context, in DeleteAccountInput) error {
	sess, err := s.accessSession(ctx, in.AccessToken)
	if err != nil {
		return err
	}
	if in.Password == "" {
		return &ValidationError{Fields: []FieldError{{"password", "is required"}}}
	}
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, in.Password, in.Network); err != nil {
		return err
	}
	n, err := s.removeUser(ctx, u, "user")
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "account deleted", "user_id", u.ID, "sessions_ended", n)
	s.audit(ctx, AuditAccountDeleted, u.ID, u.ID, "sessions="+strconv.Itoa(n))
	return nil
}

// removeUser deletes u: a user-wide account_deleted event first (every
// token of the user dies), then the user (its address and username may be
// registered again) and its sessions, and a notice mail. It answers how
// many sessions it ended.
func (s *Service) removeUser(ctx context.Context, u User, initiator string) (int, error) {
	now := s.cfg.Now().UTC()
	if err := s.d.Events.Publish(ctx, revocation.Event{ID: NewID(), Issuer: s.cfg.Issuer, Subject: u.ID,
		At: now, IssuedAt: now, Reason: revocation.ReasonAccountDeleted, Initiator: initiator,
		TxnID: s.cfg.RequestID(ctx)}); err != nil {
		return 0, fmt.Errorf("auth: revocation event: %w", err)
	}
	if err := s.d.Users.Delete(ctx, u.ID); err != nil && !errors.Is(err, ErrUserNotFound) {
		return 0, err
	}
	n, err := s.deleteSessions(ctx, u.ID)
	if err != nil { // the user is gone: its refreshes fail, and the sessions expire
		s.log.WarnContext(ctx, "sessions of a deleted account not deleted", "user_id", u.ID, "err", err)
	}
	s.notify(ctx, u.ID, u.Email, MailAccountDeleted, nil)
	return n, nil
}

// Sessions returns the live sessions of the user of an access token and
// the id of the token's own.
func (s *Service) Sessions(ctx context.Context, accessToken string) ([]Session, string, error) {
	sess, err := s.accessSession(ctx, accessToken)
	if err != nil {
		return nil, "", err
	}
	all, err := s.d.Sessions.List(ctx, sess.UserID)
	if err != nil {
		return nil, "", err
	}
	return all, sess.ID, nil
}

// RevokeSession ends one session of the user of an access token (the
// token's own included) with a logout event; ErrSessionNotFound when the
// user has no such session.
func (s *Service) RevokeSession(ctx context.Context, accessToken, sid string) error {
	sess, err := s.accessSession(ctx, accessToken)
	if err != nil {
		return err
	}
	if sid == "" || len(sid) > 64 {
		return ErrSessionNotFound
	}
	if _, err := s.d.Sessions.Get(ctx, sess.UserID, sid); err != nil {
		return err
	}
	if err := s.d.Throttle.Revocation(ctx, sess.UserID); err != nil {
		return err
	}
	if err := s.publish(ctx, revocation.ReasonLogout, "user", sess.UserID, sid); err != nil {
		return err
	}
	if _, err := s.d.Sessions.Delete(ctx, sess.UserID, sid); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "session revoked", "user_id", sess.UserID, "sid", sid)
	s.audit(ctx, AuditLogout, sess.UserID, sess.UserID, "session")
	return nil
}
