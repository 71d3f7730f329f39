package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sign-in with an external OpenID provider. The federation package runs
// the protocol and hands the Service what the provider vouches for (an
// ExternalIdentity); the Service decides which user that is:
//
//   - the user linked to the provider's subject, if any;
//   - else, when the provider's address is one of an account's, that
//     account, but only once its password is confirmed (LinkExternal), and
//     only if the provider verified the address: a provider that lets its
//     users claim any address must not open someone else's account here;
//   - else a new user, linked to the subject, with the provider's address
//     (verified if the provider says it verified it).
//
// Each link remembers whether the provider had verified the address
// (Identity.EmailVerified). A link whose provider had not is only as good
// as the claim of whoever signed in there: a password reset, which proves
// the mailbox is someone's, removes it (see ResetPassword), so that
// someone who made the account first with another's address through a
// provider that lets anyone claim any address loses it to the mailbox's
// owner. A verification link does not make such a link verified.

// Errors of sign-in through a provider.
var (
	// ErrLinkRequired: the provider's verified address is an account's
	// that is not linked to it; the account's password links them
	// (LinkRequiredError holds what LinkExternal needs).
	ErrLinkRequired = errors.New("auth: an account has this address: confirm its password to link the provider to it")
	// ErrExternalEmailInUse: the provider's address is an account's, and
	// the provider cannot be linked to it here: the provider did not
	// verify the address, or the account has no password to confirm.
	ErrExternalEmailInUse = errors.New("auth: an account has this address, and it signs in another way")
	// ErrExternalNoEmail: the provider gave no address an account can have.
	ErrExternalNoEmail = errors.New("auth: the provider gave no usable email address")
	// ErrIdentityTaken: the provider's account is linked to another user.
	ErrIdentityTaken = errors.New("auth: that provider account is linked to another user")
	// ErrIdentityNotFound: the user has no such linked provider account.
	ErrIdentityNotFound = errors.New("auth: no such linked provider account")
	// ErrLastSignInMethod: removing it would leave the user no way to
	// sign in.
	ErrLastSignInMethod = errors.New("auth: the last way to sign in cannot be removed")
	// ErrLinkExpired: the account a pending link names has changed since
	// (deleted, another address) or the link is too old.
	ErrLinkExpired = errors.New("auth: this sign-in can no longer be linked: start it again")
)

// Identity links a user to their account at an external OpenID provider.
type Identity struct {
	Provider string    // the configured provider name
	Subject  string    // the provider's "sub" of the account
	Email    string    // the address the provider gave when it was linked, to show
	LinkedAt time.Time // millisecond precision
	// EmailVerified: the provider had verified the address when the link
	// was made. A link made without (or stored before this was kept) is
	// removed by a password reset.
	EmailVerified bool
}

// IdentityKey is the key an identity is unique by: provider names never
// hold ':'.
func IdentityKey(provider, subject string) string { return provider + ":" + subject }

// ExternalIdentity is what a provider vouched for in a verified ID token.
type ExternalIdentity struct {
	Provider      string
	Subject       string
	Email         string // as the provider gave it
	EmailVerified bool   // the provider's email_verified
	FirstName     string // given_name
	LastName      string // family_name
}

// maxSubject bounds a provider's subject, in bytes (OpenID Connect: at
// most 255 ASCII characters).
const maxSubject = 255

func checkIdentity(id ExternalIdentity) error {
	switch {
	case id.Provider == "" || strings.ContainsRune(id.Provider, ':'):
		return fmt.Errorf("%w: provider name %q", ErrInvalidInput, id.Provider)
	case id.Subject == "" || len(id.Subject) > maxSubject || !utf8.ValidString(id.Subject) || hasControl(id.Subject):
		return fmt.Errorf("%w: the provider's subject is empty, too long or not text", ErrInvalidInput)
	}
	return nil
}

// PendingLink is a sign-in through a provider waiting for the password of
// the account its verified address names.
type PendingLink struct {
	UserID   string
	Email    string // the account's address when the sign-in came
	Identity ExternalIdentity
}

// LinkRequiredError is ErrLinkRequired with what LinkExternal needs.
type LinkRequiredError struct{ Pending PendingLink }

func (e *LinkRequiredError) Error() string { return ErrLinkRequired.Error() }

// Is makes errors.Is(err, ErrLinkRequired) true.
func (e *LinkRequiredError) Is(target error) bool { return target == ErrLinkRequired }

// ExternalSignIn is a sign-in through a provider.
type ExternalSignIn struct {
	Identity  ExternalIdentity
	IP        string // the client's address, kept with the session
	UserAgent string // kept with the session
}

// SignInExternal signs in the user a provider vouched for, creating it on
// a first sign-in, and opens a session exactly as a password login does
// (disabled accounts and JOTGUARD_REQUIRE_VERIFIED_EMAIL alike). An
// address that is an account's answers a *LinkRequiredError (confirm the
// account's password: LinkExternal) or ErrExternalEmailInUse.
func (s *Service) SignInExternal(ctx context.Context, in ExternalSignIn) (Tokens, error) {
	if err := checkIdentity(in.Identity); err != nil {
		return Tokens{}, err
	}
	return s.signInExternal(ctx, in, true)
}

func (s *Service) signInExternal(ctx context.Context, in ExternalSignIn, retry bool) (Tokens, error) {
	id := in.Identity
	readAt := s.cfg.Now().UTC()
	u, err := s.d.Users.ByIdentity(ctx, id.Provider, id.Subject)
	switch {
	case err == nil:
		return s.externalSession(ctx, u, in, readAt)
	case !errors.Is(err, ErrUserNotFound):
		return Tokens{}, err
	}
	email, err := CanonicalEmail(id.Email)
	if err != nil {
		s.log.InfoContext(ctx, "sign-in through a provider refused: no usable address", "provider", id.Provider)
		s.ExternalSignInFailed(ctx, id.Provider, "", "no_email")
		return Tokens{}, ErrExternalNoEmail
	}
	switch other, err := s.d.Users.ByEmail(ctx, email); {
	case err == nil:
		return Tokens{}, s.linkable(ctx, other, id)
	case !errors.Is(err, ErrUserNotFound):
		return Tokens{}, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond) // as stores keep it
	u = User{ID: NewID(), Email: email, EmailVerified: id.EmailVerified, CreatedAt: now,
		FirstName: providedName(id.FirstName), LastName: providedName(id.LastName),
		Identities: []Identity{{Provider: id.Provider, Subject: id.Subject, Email: email,
			EmailVerified: id.EmailVerified, LinkedAt: now}}}
	switch err := s.d.Users.Create(ctx, u); {
	case retry && (errors.Is(err, ErrIdentityTaken) || errors.Is(err, ErrEmailTaken)):
		// A racing sign-in of the same identity, or a sign-up with the
		// same address, won: decide again with what it made.
		return s.signInExternal(ctx, in, false)
	case err != nil:
		return Tokens{}, err
	}
	s.log.InfoContext(ctx, "user registered through a provider", "user_id", u.ID, "provider", id.Provider,
		"email_verified", u.EmailVerified)
	s.audit(ctx, AuditUserRegistered, u.ID, u.ID, providerDetail(id.Provider, ""))
	if !u.EmailVerified {
		if err := s.sendVerification(ctx, u, u.Email, ""); err != nil {
			s.log.ErrorContext(ctx, "verification mail not queued", "user_id", u.ID, "err", err)
		}
	}
	return s.externalSession(ctx, u, in, readAt)
}

// providedName is a name the provider gave, trimmed; "" when a name
// typed here would be refused.
func providedName(n string) string {
	n = strings.TrimSpace(n)
	v := &ValidationError{}
	if checkName(v, "name", n); len(v.Fields) > 0 {
		return ""
	}
	return n
}

// linkable says whether the provider's identity id may be linked to
// account u, whose address is the provider's: only with u's password, and
// only when the provider verified the address.
func (s *Service) linkable(ctx context.Context, u User, id ExternalIdentity) error {
	switch {
	case !id.EmailVerified:
		s.log.InfoContext(ctx, "sign-in through a provider refused: its unverified address is an account's",
			"provider", id.Provider, "user_id", u.ID)
		s.ExternalSignInFailed(ctx, id.Provider, u.ID, "email_in_use_unverified")
		return ErrExternalEmailInUse
	case u.PasswordHash == "":
		s.log.InfoContext(ctx, "sign-in through a provider refused: its address is an account's without a password",
			"provider", id.Provider, "user_id", u.ID)
		s.ExternalSignInFailed(ctx, id.Provider, u.ID, "email_in_use")
		return ErrExternalEmailInUse
	case u.Disabled:
		s.ExternalSignInFailed(ctx, id.Provider, u.ID, "account_disabled")
		return ErrDisabled
	}
	return &LinkRequiredError{Pending: PendingLink{UserID: u.ID, Email: u.Email, Identity: id}}
}

// externalSession opens a session of u after a sign-in through a
// provider, under the rules of a password login.
func (s *Service) externalSession(ctx context.Context, u User, in ExternalSignIn, readAt time.Time) (Tokens, error) {
	if u.Disabled {
		s.log.InfoContext(ctx, "sign-in through a provider refused: account disabled", "user_id", u.ID, "provider", in.Identity.Provider)
		s.ExternalSignInFailed(ctx, in.Identity.Provider, u.ID, "account_disabled")
		return Tokens{}, ErrDisabled
	}
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		s.log.InfoContext(ctx, "sign-in through a provider refused: email not verified", "user_id", u.ID, "provider", in.Identity.Provider)
		s.ExternalSignInFailed(ctx, in.Identity.Provider, u.ID, "email_not_verified")
		return Tokens{}, ErrEmailNotVerified
	}
	tok, err := s.openSession(ctx, u, "", in.UserAgent, in.IP, readAt, providerDetail(in.Identity.Provider, ""))
	if err == nil {
		s.log.InfoContext(ctx, "signed in through a provider", "user_id", u.ID, "provider", in.Identity.Provider)
	}
	return tok, err
}

// LinkInput confirms a pending link with the account's password.
type LinkInput struct {
	Pending   PendingLink
	Password  string
	Network   string // the client's network, for the Throttle
	IP        string
	UserAgent string
}

// LinkExternal links the provider's identity of a pending sign-in to the
// account its verified address names, once the account's password is
// confirmed (under the same limits as a login's), marks the address
// verified (the provider verified it), and signs the user in.
func (s *Service) LinkExternal(ctx context.Context, in LinkInput) (Tokens, error) {
	id := in.Pending.Identity
	if err := checkIdentity(id); err != nil {
		return Tokens{}, err
	}
	if in.Password == "" {
		return Tokens{}, &ValidationError{Fields: []FieldError{{"password", "is required"}}}
	}
	readAt := s.cfg.Now().UTC()
	u, err := s.d.Users.ByID(ctx, in.Pending.UserID)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return Tokens{}, ErrLinkExpired
	case err != nil:
		return Tokens{}, err
	case EmailKey(u.Email) != EmailKey(in.Pending.Email): // changed since
		return Tokens{}, ErrLinkExpired
	case u.Disabled:
		return Tokens{}, ErrDisabled
	}
	if err := s.confirmPassword(ctx, u, in.Password, in.Network); err != nil {
		return Tokens{}, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	// linkable let only a provider that verified the address here.
	link := Identity{Provider: id.Provider, Subject: id.Subject, Email: u.Email, EmailVerified: id.EmailVerified, LinkedAt: now}
	if err := s.d.Users.AddIdentity(ctx, u.ID, link); err != nil {
		return Tokens{}, err
	}
	u.Identities = append(u.Identities, link)
	s.log.InfoContext(ctx, "provider linked", "user_id", u.ID, "provider", id.Provider)
	s.audit(ctx, AuditIdentityLinked, u.ID, u.ID, providerDetail(id.Provider, ""))
	if !u.EmailVerified {
		switch err := s.d.Users.SetEmailVerified(ctx, u.ID, u.Email); {
		case err == nil:
			u.EmailVerified = true
			s.refreshSnapshots(ctx, u)
		case !errors.Is(err, ErrConflict): // changed meanwhile: it stays unverified
			return Tokens{}, err
		}
	}
	return s.externalSession(ctx, u, ExternalSignIn{Identity: id, IP: in.IP, UserAgent: in.UserAgent}, readAt)
}

// SignInMethods is how a user signs in.
type SignInMethods struct {
	Password   bool // the user has a password
	Identities []Identity
}

// SignInMethods returns how the user of an access token signs in.
func (s *Service) SignInMethods(ctx context.Context, accessToken string) (SignInMethods, error) {
	sess, err := s.accessSession(ctx, accessToken)
	if err != nil {
		return SignInMethods{}, err
	}
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return SignInMethods{}, err
	}
	return SignInMethods{Password: u.PasswordHash != "", Identities: u.Identities}, nil
}

// UnlinkIdentity removes a provider account from the user of an access
// token, unless it is the user's last way to sign in
// (ErrLastSignInMethod).
func (s *Service) UnlinkIdentity(ctx context.Context, accessToken, provider, subject string) error {
	sess, err := s.accessSession(ctx, accessToken)
	if err != nil {
		return err
	}
	if provider == "" || subject == "" || len(subject) > maxSubject || len(provider) > 64 {
		return ErrIdentityNotFound
	}
	if err := s.d.Users.RemoveIdentity(ctx, sess.UserID, provider, subject); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "provider unlinked", "user_id", sess.UserID, "provider", provider)
	s.audit(ctx, AuditIdentityUnlinked, sess.UserID, sess.UserID, providerDetail(provider, ""))
	return nil
}

// unlinkUnverified removes from user u every identity whose provider had
// not verified the address when it was linked: after a password reset,
// the mailbox's owner holds the account, and such a link may be someone
// else's claim of their address. u must have a password by then (else
// the store refuses to remove its last way to sign in).
func (s *Service) unlinkUnverified(ctx context.Context, u User) error {
	for _, i := range u.Identities {
		if i.EmailVerified {
			continue
		}
		switch err := s.d.Users.RemoveIdentity(ctx, u.ID, i.Provider, i.Subject); {
		case errors.Is(err, ErrIdentityNotFound): // removed meanwhile
			continue
		case err != nil:
			return err
		}
		s.log.InfoContext(ctx, "provider unlinked: it had not verified the address", "user_id", u.ID, "provider", i.Provider)
		s.audit(ctx, AuditIdentityUnlinked, u.ID, u.ID, providerDetail(i.Provider, "unverified_address_reset"))
	}
	return nil
}

// ExternalSignInFailed records a refused sign-in through provider in the
// audit log: reason is a word of a fixed vocabulary (the federation
// package's failure reasons, or the Service's own), userID the account it
// was refused for ("" when none is known).
func (s *Service) ExternalSignInFailed(ctx context.Context, provider, userID, reason string) {
	s.audit(ctx, AuditLoginFailed, "", userID, providerDetail(provider, reason))
}

// providerDetail is the audit detail of a sign-in through provider:
// "provider=NAME", then the reason if any.
func providerDetail(provider, reason string) string {
	d := "provider=" + provider
	if reason != "" {
		d += " " + reason
	}
	return d
}
