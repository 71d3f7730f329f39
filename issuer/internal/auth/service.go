package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"golang.org/x/text/unicode/norm"
)

// Config configures a Service.
type Config struct {
	Issuer      string
	Audience    []string
	ClientID    string // default client_id
	AccessTTL   time.Duration
	PasswordMin int // characters after NFKC; default 12
	PasswordMax int // default 128
	// UserRecheck is how long a refresh trusts the user snapshot stored with
	// the session; past it, the refresh reads the UserStore (and saves a new
	// snapshot). 0 reads it on every refresh.
	UserRecheck time.Duration
	// RequireVerifiedEmail refuses the login of an account whose address
	// is not verified (ErrEmailNotVerified), once its password matched.
	RequireVerifiedEmail bool
	// PublicURL is the base of the links in mail; default Issuer.
	PublicURL string
	// VerifyTokenTTL and ResetTokenTTL are the lifetimes of the tokens of
	// email verification and password reset links; default 24 h and 1 h.
	VerifyTokenTTL time.Duration
	ResetTokenTTL  time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	// RequestID returns the request id of ctx, carried as an event's txn.
	RequestID func(context.Context) string
}

// Deps are the Service's ports.
type Deps struct {
	Users    UserStore
	Sessions SessionStore
	Hasher   PasswordHasher
	Signer   Signer
	Verifier TokenVerifier
	Events   RevocationPublisher
	Links    LinkTokens // the tokens of mailed links
	Mailer   Mailer
	Throttle Throttle    // optional: nil limits nothing
	Clients  ClientStore // optional: nil has no service account
	Audit    Auditor     // optional: nil records nothing
}

// Service is the issuer's use cases.
type Service struct {
	cfg Config
	d   Deps
	log *slog.Logger
}

// NewService returns a Service; every port but Throttle, Clients and
// Audit is required.
func NewService(cfg Config, d Deps) (*Service, error) {
	switch {
	case d.Users == nil || d.Sessions == nil || d.Hasher == nil || d.Signer == nil || d.Verifier == nil || d.Events == nil ||
		d.Links == nil || d.Mailer == nil:
		return nil, errors.New("auth: every port of Deps is required")
	case cfg.Issuer == "" || len(cfg.Audience) == 0 || cfg.AccessTTL <= 0:
		return nil, errors.New("auth: Config.Issuer, Audience and AccessTTL are required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "jotguard"
	}
	if cfg.PasswordMin == 0 {
		cfg.PasswordMin = 12
	}
	if cfg.PasswordMax == 0 {
		cfg.PasswordMax = 128
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = cfg.Issuer
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.VerifyTokenTTL <= 0 {
		cfg.VerifyTokenTTL = 24 * time.Hour
	}
	if cfg.ResetTokenTTL <= 0 {
		cfg.ResetTokenTTL = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestID == nil {
		cfg.RequestID = func(context.Context) string { return "" }
	}
	if d.Throttle == nil {
		d.Throttle = noThrottle{}
	}
	if d.Clients == nil {
		d.Clients = noClients{}
	}
	if d.Audit == nil {
		d.Audit = noAudit{}
	}
	return &Service{cfg: cfg, d: d, log: cfg.Logger}, nil
}

// RegisterInput is a sign-up.
type RegisterInput struct {
	Email, Password, Username, FirstName, LastName string
}

// Register creates a user.
func (s *Service) Register(ctx context.Context, in RegisterInput) (User, error) {
	u, err := s.newUser(in, &ValidationError{})
	if err != nil {
		return User{}, err
	}
	if err := s.createUser(ctx, &u, in.Password); err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "user registered", "user_id", u.ID)
	s.audit(ctx, AuditUserRegistered, u.ID, u.ID, "")
	// The account exists: a failure to queue the mail is logged, and the
	// user can ask for another (POST /verify-email/resend).
	if err := s.sendVerification(ctx, u, u.Email, ""); err != nil {
		s.log.ErrorContext(ctx, "verification mail not queued", "user_id", u.ID, "err", err)
	}
	return u, nil
}

// newUser validates a sign-up (adding to v, which may hold failures of
// the caller's own) and returns the user it describes, without password.
func (s *Service) newUser(in RegisterInput, v *ValidationError) (User, error) {
	u := User{
		ID:        NewID(),
		Username:  strings.TrimSpace(in.Username),
		FirstName: strings.TrimSpace(in.FirstName),
		LastName:  strings.TrimSpace(in.LastName),
		CreatedAt: s.cfg.Now().UTC().Truncate(time.Millisecond), // as stores keep it
	}
	var err error
	if strings.TrimSpace(in.Email) == "" {
		v.Fields = append(v.Fields, FieldError{"email", "is required"})
	} else if u.Email, err = CanonicalEmail(in.Email); err != nil {
		v.Fields = append(v.Fields, FieldError{"email", err.Error()})
	}
	if u.Username != "" {
		if _, err := UsernameKey(u.Username); err != nil {
			v.Fields = append(v.Fields, FieldError{"username", err.Error()})
		}
	}
	checkName(v, "first_name", u.FirstName)
	checkName(v, "last_name", u.LastName)
	s.checkPassword(v, "password", norm.NFKC.String(in.Password))
	return u, v.err()
}

// createUser hashes password into u and stores u.
func (s *Service) createUser(ctx context.Context, u *User, password string) error {
	hash, err := s.d.Hasher.Hash(ctx, norm.NFKC.String(password))
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	return s.d.Users.Create(ctx, *u)
}

// checkName adds a field error for a first or last name that is too long
// or holds control characters.
func checkName(v *ValidationError, field, name string) {
	if utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || hasControl(name) {
		v.Fields = append(v.Fields, FieldError{field, "must be at most 100 characters, without control characters"})
	}
}

// checkPassword adds a field error for a password (after NFKC) that breaks
// the password rules: its length, and the list of breached passwords.
func (s *Service) checkPassword(v *ValidationError, field, pw string) {
	switch n := utf8.RuneCountInString(pw); {
	case n < s.cfg.PasswordMin || n > s.cfg.PasswordMax:
		v.Fields = append(v.Fields, FieldError{field, fmt.Sprintf("must be %d to %d characters", s.cfg.PasswordMin, s.cfg.PasswordMax)})
	case CommonPassword(pw):
		v.Fields = append(v.Fields, FieldError{field, "is a common password, found in lists of breached passwords: choose another"})
	}
	if len(v.Fields) > 0 && v.Fields[len(v.Fields)-1].Field == field {
		v.passwordFields = append(v.passwordFields, field)
	}
}

// LoginInput is a password login. Identifier is an email or a username.
type LoginInput struct {
	Identifier string
	Password   string
	ClientID   string // default Config.ClientID
	Network    string // the client's network, for the Throttle (ratelimit.NetworkOf)
	IP         string // the client's address, kept with the session
	UserAgent  string // kept with the session, cleaned and cut (CleanUserAgent)
}

// maxIdentifier bounds a login identifier, in characters: the longest email
// address (RFC 3696: 64 + 1 + 255). A longer one names no account, and is
// refused before it is looked up, normalized or hashed.
const maxIdentifier = 320

// Tokens is what a login or a refresh answers.
type Tokens struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	User         User
	Session      Session
}

// Login checks a password and opens a session.
func (s *Service) Login(ctx context.Context, in LoginInput) (Tokens, error) {
	id := strings.TrimSpace(in.Identifier)
	v := &ValidationError{}
	switch {
	case id == "":
		v.Fields = append(v.Fields, FieldError{"identifier", "email, username or identifier is required"})
	case len(id) > 4*maxIdentifier || utf8.RuneCountInString(id) > maxIdentifier:
		v.Fields = append(v.Fields, FieldError{"identifier", fmt.Sprintf("must be at most %d characters", maxIdentifier)})
	}
	if in.Password == "" {
		v.Fields = append(v.Fields, FieldError{"password", "is required"})
	}
	if len(v.Fields) > 0 {
		return Tokens{}, v
	}
	pw := norm.NFKC.String(in.Password)
	if utf8.RuneCountInString(pw) > s.cfg.PasswordMax {
		pw = string([]rune(pw)[:s.cfg.PasswordMax+1]) // cannot match; bounded work
	}
	var u User
	var err error
	var account string          // for the Throttle
	readAt := s.cfg.Now().UTC() // the user snapshot is as old as the read
	// A refused spelling normalizes to "", which no account has: the same
	// answer, after the same work, as an unknown account.
	if strings.Contains(id, "@") {
		account = "i:" + NormalizeEmail(id)
		u, err = s.d.Users.ByEmail(ctx, NormalizeEmail(id))
	} else {
		account = "i:" + NormalizeUsername(id)
		u, err = s.d.Users.ByUsername(ctx, NormalizeUsername(id))
	}
	known := err == nil
	if known {
		account = "u:" + u.ID
	} else if !errors.Is(err, ErrUserNotFound) {
		return Tokens{}, err
	}
	// The throttle decides before the password is checked, alike for known
	// and unknown users: a refused guess is never evaluated.
	failed := func(detail string) { s.audit(ctx, AuditLoginFailed, "", u.ID, detail) } // u.ID: "" when unknown
	done, err := s.d.Throttle.PasswordAttempt(ctx, account, in.Network)
	if err != nil {
		if errors.Is(err, ErrRateLimited) {
			failed("rate_limited")
		}
		return Tokens{}, err
	}
	if !known {
		if err := s.d.Hasher.Dummy(ctx, pw); err != nil {
			done(AttemptNotChecked)
			return Tokens{}, err
		}
		done(AttemptFailed)
		failed("unknown_account")
		return Tokens{}, ErrInvalidCredentials
	}
	ok, rehash, err := s.d.Hasher.Verify(ctx, pw, u.PasswordHash)
	switch {
	case err != nil:
		done(AttemptNotChecked)
		return Tokens{}, err
	case !ok:
		done(AttemptFailed)
		failed("wrong_password")
		return Tokens{}, ErrInvalidCredentials
	}
	done(AttemptMatched)
	if u.Disabled {
		failed("account_disabled")
		return Tokens{}, ErrDisabled
	}
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		s.log.InfoContext(ctx, "login refused: email not verified", "user_id", u.ID)
		failed("email_not_verified")
		return Tokens{}, ErrEmailNotVerified
	}
	if rehash {
		if h, err := s.d.Hasher.Hash(ctx, pw); err == nil {
			if err := s.d.Users.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.log.WarnContext(ctx, "password rehash not saved", "user_id", u.ID, "err", err)
			}
		}
	}
	return s.openSession(ctx, u, in.ClientID, in.UserAgent, in.IP, readAt, "")
}

// openSession opens a session of u, as read at readAt, for a client
// (Config.ClientID when ""), and mints its first tokens; detail is the
// audit entry's (how the user signed in: "" for a password).
func (s *Service) openSession(ctx context.Context, u User, clientID, userAgent, ip string, readAt time.Time, detail string) (Tokens, error) {
	if clientID == "" {
		clientID = s.cfg.ClientID
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond) // as stores keep it
	sess := Session{ID: NewID(), UserID: u.ID, ClientID: clientID, CreatedAt: now, LastUsedAt: now,
		UserAgent: CleanUserAgent(userAgent), IP: cleanIP(ip),
		Snapshot: &UserSnapshot{User: u.Public(), CheckedAt: readAt}}
	refresh := NewRefreshToken()
	if err := s.d.Sessions.Create(ctx, sess, refresh); err != nil {
		return Tokens{}, err
	}
	tok, err := s.tokens(ctx, u, sess, refresh)
	if err == nil {
		s.audit(ctx, AuditLoginSucceeded, u.ID, u.ID, detail)
	}
	return tok, err
}

// Refresh rotates a refresh token and mints a new access token.
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	if !wellFormedRefresh(refresh) {
		return Tokens{}, ErrInvalidRefreshToken
	}
	rot, err := s.d.Sessions.Rotate(ctx, refresh, NextRefreshToken(refresh))
	if errors.Is(err, ErrRefreshReuse) {
		s.log.WarnContext(ctx, "refresh token reuse: session revoked", "user_id", rot.Session.UserID, "sid", rot.Session.ID)
		s.audit(ctx, AuditRefreshReuse, "", rot.Session.UserID, "session revoked")
		if perr := s.publish(ctx, revocation.ReasonRefreshReuse, "system", rot.Session.UserID, rot.Session.ID); perr != nil {
			s.log.ErrorContext(ctx, "refresh reuse event not published", "sid", rot.Session.ID, "err", perr)
		}
		return Tokens{}, fmt.Errorf("%w: %w", ErrInvalidRefreshToken, err)
	}
	if err != nil {
		return Tokens{}, err
	}
	u, err := s.refreshUser(ctx, rot.Session)
	if err != nil {
		return Tokens{}, err
	}
	return s.tokens(ctx, u, rot.Session, rot.Token)
}

// refreshUser returns the user a refresh mints tokens for: the session's
// snapshot while it is younger than UserRecheck, else the UserStore's copy,
// saved back as the new snapshot. A disabled user is refused either way, so
// disabling an account takes effect within UserRecheck (plus the lifetime of
// the access tokens already out).
func (s *Service) refreshUser(ctx context.Context, sess Session) (User, error) {
	now := s.cfg.Now().UTC()
	var u User
	if snap := sess.Snapshot; snap != nil && snap.User.ID == sess.UserID &&
		now.Sub(snap.CheckedAt) < s.cfg.UserRecheck && snap.CheckedAt.Sub(now) < s.cfg.UserRecheck {
		u = snap.User
	} else {
		var err error
		u, err = s.d.Users.ByID(ctx, sess.UserID)
		switch {
		case errors.Is(err, ErrUserNotFound):
			return User{}, ErrInvalidRefreshToken
		case err != nil:
			return User{}, err
		}
		// Best effort: without it the next refresh reads the UserStore again.
		if err := s.d.Sessions.SetSnapshot(ctx, sess.UserID, sess.ID, UserSnapshot{User: u.Public(), CheckedAt: now}); err != nil {
			s.log.WarnContext(ctx, "user snapshot not saved", "user_id", sess.UserID, "sid", sess.ID, "err", err)
		}
	}
	if u.Disabled {
		return User{}, ErrDisabled
	}
	return u, nil
}

// Scope says which sessions a logout ends.
type Scope string

// Logout scopes.
const (
	ScopeLocal  Scope = "local"  // this session
	ScopeGlobal Scope = "global" // every session of the user
	ScopeOthers Scope = "others" // every session but this one
)

// LogoutInput identifies the session by its refresh token or, failing that,
// by an access token.
type LogoutInput struct {
	RefreshToken string
	AccessToken  string
	Scope        Scope
}

// Logout ends sessions and emits one revocation event per ended session.
// It answers only after every event is acknowledged or durably queued; the
// sessions are deleted after that, so a failure leaves them to be retried.
// Only live sessions are ended: an access token whose session has ended
// (logged out, revoked after a refresh-token reuse, expired) is refused, as
// Me refuses it, and mints no event. The publisher drops the event of a
// session a concurrent logout is ending.
func (s *Service) Logout(ctx context.Context, in LogoutInput) error {
	switch in.Scope {
	case "":
		in.Scope = ScopeLocal
	case ScopeLocal, ScopeGlobal, ScopeOthers:
	default:
		return &ValidationError{Fields: []FieldError{{"scope", "must be local, global or others"}}}
	}
	var sess Session
	err := ErrInvalidRefreshToken
	if in.RefreshToken != "" && wellFormedRefresh(in.RefreshToken) {
		sess, err = s.d.Sessions.Lookup(ctx, in.RefreshToken)
	}
	// A stale refresh cookie next to a valid access token: the token decides.
	if errors.Is(err, ErrInvalidRefreshToken) && in.AccessToken != "" {
		sess, err = s.accessSession(ctx, in.AccessToken)
	}
	if err != nil {
		return err
	}
	var sids []string
	reason := revocation.ReasonLogout
	if in.Scope == ScopeLocal {
		sids = []string{sess.ID}
	} else {
		reason = revocation.ReasonLogoutGlobal
		all, err := s.d.Sessions.List(ctx, sess.UserID)
		if err != nil {
			return err
		}
		for _, o := range all {
			if in.Scope == ScopeGlobal || o.ID != sess.ID {
				sids = append(sids, o.ID)
			}
		}
	}
	if len(sids) == 0 {
		return nil
	}
	if err := s.d.Throttle.Revocation(ctx, sess.UserID); err != nil {
		return err
	}
	if err := s.publish(ctx, reason, "user", sess.UserID, sids...); err != nil {
		return err
	}
	if _, err := s.d.Sessions.Delete(ctx, sess.UserID, sids...); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "logout", "user_id", sess.UserID, "scope", string(in.Scope), "sessions", len(sids))
	s.audit(ctx, AuditLogout, sess.UserID, sess.UserID, fmt.Sprintf("scope=%s sessions=%d", in.Scope, len(sids)))
	return nil
}

// Me returns the user of a valid access token whose session is still open.
func (s *Service) Me(ctx context.Context, accessToken string) (User, error) {
	c, err := s.verifyAccess(ctx, accessToken)
	if err != nil {
		return User{}, err
	}
	if _, err := s.d.Sessions.Get(ctx, c.Subject, c.SessionID); err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return User{}, ErrInvalidAccessToken
		}
		return User{}, err
	}
	u, err := s.d.Users.ByID(ctx, c.Subject)
	if errors.Is(err, ErrUserNotFound) {
		return User{}, ErrInvalidAccessToken
	}
	return u, err
}

// RevokeToken implements RFC 7009: a refresh token ends its session, an
// access token is revoked by its jti. Unknown or invalid tokens are not an
// error, and what is revoked already (an access token of an ended session,
// a token revoked before: the publisher remembers it) emits nothing.
func (s *Service) RevokeToken(ctx context.Context, token, hint string) error {
	tryRefresh := func() (bool, error) {
		if !wellFormedRefresh(token) {
			return false, nil
		}
		sess, err := s.d.Sessions.Lookup(ctx, token)
		if errors.Is(err, ErrInvalidRefreshToken) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := s.d.Throttle.Revocation(ctx, sess.UserID); err != nil {
			return false, err
		}
		if err := s.publish(ctx, revocation.ReasonLogout, "user", sess.UserID, sess.ID); err != nil {
			return false, err
		}
		if _, err = s.d.Sessions.Delete(ctx, sess.UserID, sess.ID); err == nil {
			s.audit(ctx, AuditLogout, sess.UserID, sess.UserID, "revoked refresh_token")
		}
		return true, err
	}
	tryAccess := func() (bool, error) {
		c, err := s.verifyAccess(ctx, token)
		switch {
		case errors.Is(err, ErrUnavailable):
			return false, err
		case err != nil: // not one of ours, or already revoked: nothing to do
			return false, nil
		}
		if c.SessionID != "" {
			switch _, err := s.d.Sessions.Get(ctx, c.Subject, c.SessionID); {
			case errors.Is(err, ErrSessionNotFound): // revoked with its session
				return true, nil
			case err != nil: // can't tell: revoking twice is harmless, not revoking is not
				s.log.WarnContext(ctx, "token revocation: session state unknown; revoking the token anyway", "err", err)
			}
		}
		if err := s.d.Throttle.Revocation(ctx, c.Subject); err != nil {
			return false, err
		}
		now := s.cfg.Now()
		err = s.d.Events.Publish(ctx, revocation.Event{ID: NewID(), Issuer: s.cfg.Issuer,
			Subject: c.Subject, TokenID: c.ID, At: now, IssuedAt: now, Reason: revocation.ReasonLogout,
			Initiator: "user", TxnID: s.cfg.RequestID(ctx)})
		if err == nil {
			s.audit(ctx, AuditLogout, c.Subject, c.Subject, "revoked access_token")
		}
		return true, err
	}
	order := []func() (bool, error){tryRefresh, tryAccess}
	if hint == "access_token" {
		order = []func() (bool, error){tryAccess, tryRefresh}
	}
	for _, f := range order {
		if done, err := f(); done || err != nil {
			return err
		}
	}
	return nil
}

// accessSession returns the live session of an access token (only its ID
// and UserID); ErrInvalidAccessToken when the token is invalid, revoked, or
// its session has ended.
func (s *Service) accessSession(ctx context.Context, token string) (Session, error) {
	c, err := s.verifyAccess(ctx, token)
	if err != nil {
		return Session{}, err
	}
	switch _, err := s.d.Sessions.Get(ctx, c.Subject, c.SessionID); {
	case errors.Is(err, ErrSessionNotFound):
		return Session{}, fmt.Errorf("%w: its session has ended", ErrInvalidAccessToken)
	case err != nil:
		return Session{}, err
	}
	return Session{ID: c.SessionID, UserID: c.Subject}, nil
}

// User returns a user by id.
func (s *Service) User(ctx context.Context, id string) (User, error) { return s.d.Users.ByID(ctx, id) }

func (s *Service) verifyAccess(ctx context.Context, token string) (*sdk.Claims, error) {
	if token == "" || len(token) > sdk.MaxTokenSize {
		return nil, ErrInvalidAccessToken
	}
	c, err := s.d.Verifier.Verify(ctx, token)
	switch {
	case errors.Is(err, sdk.ErrRevocationUnavailable), errors.Is(err, sdk.ErrNotReady):
		// The token may be fine: the revocation state or the keys are not
		// known yet. Say so (503) rather than refuse it.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidAccessToken, err)
	}
	return c, nil
}

func (s *Service) publish(ctx context.Context, reason, initiator, userID string, sids ...string) error {
	now := s.cfg.Now().UTC()
	evs := make([]revocation.Event, 0, len(sids))
	for _, sid := range sids {
		evs = append(evs, revocation.Event{ID: NewID(), Issuer: s.cfg.Issuer, Subject: userID,
			SessionID: sid, At: now, IssuedAt: now, Reason: reason, Initiator: initiator,
			TxnID: s.cfg.RequestID(ctx)})
	}
	if err := s.d.Events.Publish(ctx, evs...); err != nil {
		return fmt.Errorf("auth: revocation events: %w", err)
	}
	return nil
}

func (s *Service) tokens(ctx context.Context, u User, sess Session, refresh string) (Tokens, error) {
	now := s.cfg.Now()
	c := sdk.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings(s.cfg.Audience),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			ID:        NewID(),
		},
		ClientID:      sess.ClientID,
		SessionID:     sess.ID,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Roles:         u.Roles,
	}
	if c.ClientID == "" {
		c.ClientID = s.cfg.ClientID
	}
	at, err := s.d.Signer.Sign(ctx, sdk.TokenType, c)
	if err != nil {
		return Tokens{}, fmt.Errorf("auth: sign: %w", err)
	}
	return Tokens{AccessToken: at, ExpiresIn: s.cfg.AccessTTL, RefreshToken: refresh, User: u, Session: sess}, nil
}

// NewID returns a random identifier (130 bits, lower-case base32).
func NewID() string { return strings.ToLower(rand.Text()) }

// Refresh tokens are base64url without padding of 48 random bytes: a
// 16-byte chain id, drawn at login and carried by every token of the
// session, then 32 bytes (256 bits) of the token's own. The chain id lets a
// store recognise any token that ever belonged to a session, however many
// rotations ago, while it keeps only the hashes of the chain id and of the
// current token: presenting an earlier token of a live session is a reuse,
// never just an invalid token. Tokens issued before chains existed are 32
// random bytes (43 characters) and have no chain; they are still accepted
// until they expire or rotate, and their successor starts a chain.
const (
	refreshChainLen  = 16
	refreshSecretLen = 32
	refreshLen       = refreshChainLen + refreshSecretLen
	legacyRefreshLen = 32
)

// NewRefreshToken returns the first refresh token of a new session: a new
// chain id and 256 random bits.
func NewRefreshToken() string {
	var b [refreshLen]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NextRefreshToken returns the successor of refresh: a token of the same
// chain with 256 fresh random bits, or the first token of a new chain when
// refresh has none (a token issued before chains existed, or a malformed
// one).
func NextRefreshToken(refresh string) string {
	chain, ok := RefreshChain(refresh)
	if !ok {
		return NewRefreshToken()
	}
	var b [refreshLen]byte
	copy(b[:], chain)
	_, _ = rand.Read(b[refreshChainLen:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RefreshChain returns the chain id of a refresh token; false for a token
// issued before chains existed and for anything malformed.
func RefreshChain(t string) ([]byte, bool) {
	if len(t) != base64.RawURLEncoding.EncodedLen(refreshLen) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) != refreshLen {
		return nil, false
	}
	return b[:refreshChainLen], true
}

// LegacyRefreshToken reports whether t has the form of a refresh token
// issued before chains existed: 256 random bits and no chain id.
func LegacyRefreshToken(t string) bool {
	if len(t) != base64.RawURLEncoding.EncodedLen(legacyRefreshLen) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil
}

func wellFormedRefresh(t string) bool {
	_, ok := RefreshChain(t)
	return ok || LegacyRefreshToken(t)
}

// hasControl reports C0/C1 controls and bidi controls: a name is shown to
// people, and these would change what the text around it looks like.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return true
		}
	}
	return false
}

// noThrottle is the Throttle of a Service given none: it limits nothing.
type noThrottle struct{}

func (noThrottle) PasswordAttempt(context.Context, string, string) (func(Attempt), error) {
	return func(Attempt) {}, nil
}

func (noThrottle) Revocation(context.Context, string) error { return nil }

func (noThrottle) Mail(context.Context, string) error { return nil }
