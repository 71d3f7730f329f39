// Package auth is the issuer's domain: users, sessions, the Service that
// registers, logs in, refreshes and logs out, and the ports its adapters
// implement. It imports no driver.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Errors of the domain. Adapters wrap their failures so that errors.Is finds
// one of these; httpapi maps each to a status and a problem code in one table.
var (
	ErrInvalidInput        = errors.New("auth: invalid input")
	ErrWeakPassword        = errors.New("auth: password too short, too long or too common")
	ErrEmailTaken          = errors.New("auth: email already registered")
	ErrUsernameTaken       = errors.New("auth: username already taken")
	ErrInvalidCredentials  = errors.New("auth: invalid credentials")
	ErrDisabled            = errors.New("auth: account disabled")
	ErrInvalidRefreshToken = errors.New("auth: invalid refresh token")
	ErrRefreshReuse        = errors.New("auth: refresh token reused after rotation")
	ErrInvalidAccessToken  = errors.New("auth: invalid access token")
	// ErrWrongPassword: the current password given to confirm a change
	// (password change, account deletion) is wrong. Unlike
	// ErrInvalidCredentials the caller is authenticated: it is a refusal
	// (403), not a request to authenticate.
	ErrWrongPassword = errors.New("auth: the current password is wrong")
	// ErrEmailNotVerified: a login refused because the account's address is
	// not verified yet (JOTGUARD_REQUIRE_VERIFIED_EMAIL).
	ErrEmailNotVerified = errors.New("auth: email address not verified")
	// ErrInvalidLinkToken: a mailed link's token is unknown, used, expired,
	// or of another kind of link.
	ErrInvalidLinkToken = errors.New("auth: invalid or expired link")
	ErrUserNotFound     = errors.New("auth: user not found")
	ErrSessionNotFound  = errors.New("auth: session not found")
	ErrRateLimited      = errors.New("auth: too many attempts")
	ErrBusy             = errors.New("auth: too busy, retry shortly")
	ErrUnavailable      = errors.New("auth: a backend is unavailable")
	// ErrConflict: a conditional write lost to a concurrent one (two
	// replicas adding the same key generation); the loser reloads.
	ErrConflict = errors.New("auth: lost to a concurrent write")
)

// RateLimitError is a refusal by a rate limit: errors.Is(err,
// ErrRateLimited) holds, and RetryAfter says when a retry may pass.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// FieldError names one failing input field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists the failing fields. errors.Is(err, ErrInvalidInput)
// holds, and ErrWeakPassword too when the password is among them.
type ValidationError struct {
	Fields         []FieldError
	weak           bool
	passwordFields []string // the fields checkPassword refused
}

// err returns nil without failing fields, else e; it is weak (a
// weak_password) when every failing field is a refused password.
func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	e.weak = true
	for _, f := range e.Fields {
		if !slices.Contains(e.passwordFields, f.Field) {
			e.weak = false
		}
	}
	return e
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("auth: invalid input:")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" " + f.Field + " " + f.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidInput) and, for a password refused by
// the password rules, errors.Is(err, ErrWeakPassword) true.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalidInput || (e.weak && target == ErrWeakPassword)
}

// User is an account. PasswordHash is a PHC string and never leaves the issuer.
type User struct {
	ID            string
	Email         string // canonical (CanonicalEmail)
	Username      string // as given (trimmed); unique by UsernameKey
	FirstName     string
	LastName      string
	PasswordHash  string
	EmailVerified bool
	Roles         []string
	Disabled      bool
	CreatedAt     time.Time
	// Identities are the user's accounts at external OpenID providers
	// that sign in to this one. A user without a PasswordHash signs in
	// only through these.
	Identities []Identity
}

// Public returns u without its PasswordHash.
func (u User) Public() User {
	u.PasswordHash = ""
	return u
}

// Session is one login: the sid of its access tokens and the owner of its
// refresh token.
type Session struct {
	ID        string
	UserID    string
	ClientID  string
	CreatedAt time.Time
	// LastUsedAt is the last refresh (stores set it as part of Rotate's
	// write), CreatedAt until the first; millisecond precision.
	LastUsedAt time.Time
	UserAgent  string // of the login, at most MaxUserAgent bytes (CleanUserAgent)
	IP         string // the client's address at login (after JOTGUARD_TRUSTED_PROXIES)
	// Snapshot is the user as last read from the UserStore, kept with the
	// session so that a refresh need not read the UserStore again. Create
	// stores it and Rotate returns it; nil when the session has none
	// (sessions stored before snapshots existed).
	Snapshot *UserSnapshot
}

// UserSnapshot is a copy of a user's public fields (User.Public) and the
// instant they were read from the UserStore.
type UserSnapshot struct {
	User      User
	CheckedAt time.Time
}

// UserStore keeps users (mongostore, memstore). Every method that names a
// user by id answers ErrUserNotFound when there is none.
type UserStore interface {
	// Create inserts u; ErrEmailTaken or ErrUsernameTaken when either
	// normalized value is in use, and ErrIdentityTaken when one of its
	// Identities is another user's, even under racing calls.
	Create(ctx context.Context, u User) error
	ByID(ctx context.Context, id string) (User, error)             // ErrUserNotFound
	ByEmail(ctx context.Context, email string) (User, error)       // normalized; ErrUserNotFound
	ByUsername(ctx context.Context, username string) (User, error) // any case; ErrUserNotFound
	SetPasswordHash(ctx context.Context, id, hash string) error
	// UpdateProfile sets the username (trimmed; "" removes it), first name
	// and last name of user id to those of p, and returns the user. A new
	// username is claimed as Create claims it: ErrUsernameTaken when
	// another user has its UsernameKey, even under racing calls; the old
	// one is released.
	UpdateProfile(ctx context.Context, id string, p Profile) (User, error)
	// SetEmail switches user id's address from from (the current one:
	// ErrConflict otherwise) to the canonical address to, which becomes
	// verified: ErrEmailTaken when another user has its EmailKey, even
	// under racing calls; from is released, so it may be registered again.
	SetEmail(ctx context.Context, id, from, to string) error
	// SetEmailVerified marks user id's address verified if it is still
	// email (ErrConflict otherwise).
	SetEmailVerified(ctx context.Context, id, email string) error
	// Delete removes user id and releases its email, its username and
	// its identities.
	Delete(ctx context.Context, id string) error
	// ByIdentity returns the user linked to subject at provider;
	// ErrUserNotFound when none is.
	ByIdentity(ctx context.Context, provider, subject string) (User, error)
	// AddIdentity links id to user userID: ErrIdentityTaken when another
	// user has it, even under racing calls. A link the user has already
	// is no error.
	AddIdentity(ctx context.Context, userID string, id Identity) error
	// RemoveIdentity unlinks subject at provider from user userID:
	// ErrIdentityNotFound when the user has no such link, and
	// ErrLastSignInMethod when it is the user's last way to sign in (no
	// password and no other identity), even under racing calls. The
	// identity may then be linked again, to any user.
	RemoveIdentity(ctx context.Context, userID, provider, subject string) error
	// Update sets the fields of up that are not nil (the administrator's
	// changes) and returns the user as stored after.
	Update(ctx context.Context, id string, up UserUpdate) (User, error)
	// List returns, in order of id, up to q.Limit users whose id is after
	// q.After and, when q.Query is set, whose email or username key
	// contains it or whose id is it.
	List(ctx context.Context, q UserQuery) ([]User, error)
}

// UserUpdate is an administrator's change of a user: nil fields stay.
type UserUpdate struct {
	Roles         *[]string
	Disabled      *bool
	EmailVerified *bool
}

// UserQuery selects users for UserStore.List.
type UserQuery struct {
	Query string // lower case; "" matches every user
	After string // an id: only users after it, in id order
	Limit int
}

// Profile is what a user may change about themselves besides the email
// address and the password.
type Profile struct {
	Username, FirstName, LastName string
}

// Link purposes: what a mailed link's token does.
const (
	LinkVerifyEmail   = "verify_email"   // confirms LinkToken.Email, the user's address or a new one
	LinkResetPassword = "reset_password" // sets a new password
)

// LinkToken is what the token of a mailed link stands for.
type LinkToken struct {
	Purpose string // LinkVerifyEmail or LinkResetPassword
	UserID  string
	// Email is, for LinkVerifyEmail, the address the link confirms (the
	// user's, or the one they asked to change to); for LinkResetPassword,
	// the user's address when the link was sent: the link dies with it.
	Email string
	// From is, for the link of an address change, the address the change
	// is from: the link works only while the account still has it. Empty
	// for a link that confirms the account's own address.
	From      string
	ExpiresAt time.Time // millisecond precision
}

// LinkTokens keeps the one-time tokens of mailed links (mongostore,
// memstore), under the SHA-256 of the token only: a copy of the store
// cannot be turned into working links.
type LinkTokens interface {
	// Create stores t under token (NewLinkToken).
	Create(ctx context.Context, token string, t LinkToken) error
	// Peek returns what token stands for without using it up;
	// ErrInvalidLinkToken when it is unknown, used, expired at now, or of
	// another purpose.
	Peek(ctx context.Context, token, purpose string, now time.Time) (LinkToken, error)
	// Consume uses token up and returns what it stood for: of racing
	// calls, exactly one gets it, and every later one gets
	// ErrInvalidLinkToken, as do unknown tokens, tokens expired at now
	// (deleted then) and tokens of another purpose (left alone).
	Consume(ctx context.Context, token, purpose string, now time.Time) (LinkToken, error)
	// DeleteExpired deletes the tokens that expired at or before now.
	DeleteExpired(ctx context.Context, now time.Time) error
}

// GraceRecords is how many of a session's latest rotations a store keeps
// grace records for: a burst of more rotations within one grace window makes
// the earliest of them reuses when presented again. Legitimate clients
// rotate once per access-token lifetime; the bound keeps a store's memory
// per session constant.
const GraceRecords = 4

// Rotation is what SessionStore.Rotate answers: the session and the refresh
// token that now belongs to it.
//
// A grace retry is a second use of a just-rotated token within the grace
// window (concurrent tabs, a lost response): it is answered with the
// successor given the first time. It is not a reuse: a reuse is a use after
// the grace window, which is taken for theft (ErrRefreshReuse).
type Rotation struct {
	Session    Session
	Token      string // the successor: the one passed in, or on a grace retry the earlier one
	GraceRetry bool   // true when this was a grace retry and Token is the earlier successor
}

// SessionStore keeps sessions and refresh tokens (redisstore, memstore).
// Refresh tokens are stored only as hashes. A store keeps a bounded amount
// per session, however often it rotates.
type SessionStore interface {
	// Create stores s with its first refresh token (NewRefreshToken), its
	// UserAgent and IP, and its Snapshot if any; its LastUsedAt is its
	// CreatedAt.
	Create(ctx context.Context, s Session, refresh string) error
	// Rotate retires refresh and makes successor current; successor is
	// NextRefreshToken(refresh), a token of the same chain. A second use of
	// a retired token within the grace window is a grace retry: it returns
	// the same successor (Rotation.GraceRetry); stores honour the grace
	// window of at least the last GraceRecords rotations of a session. Any
	// other use of any earlier token of a live session, however many
	// rotations ago, is a reuse: it deletes the session and returns the
	// session with ErrRefreshReuse. Unknown tokens, and tokens of sessions
	// that are gone, give ErrInvalidRefreshToken and change nothing. The
	// session comes with its Snapshot, on a grace retry too. A rotation
	// sets the session's LastUsedAt to the store's clock, in the same write.
	Rotate(ctx context.Context, refresh, successor string) (Rotation, error)
	// Lookup returns the session of a live refresh token, without its
	// Snapshot.
	Lookup(ctx context.Context, refresh string) (Session, error)
	// Get returns a session, without its Snapshot; ErrSessionNotFound when
	// gone or not userID's.
	Get(ctx context.Context, userID, sid string) (Session, error)
	// SetSnapshot replaces the session's user snapshot if the session still
	// exists (a deleted session stays deleted; that is not an error) and
	// snap is newer than the stored one, so that a late write of an older
	// read cannot undo a newer one. Stores never keep the PasswordHash.
	SetSnapshot(ctx context.Context, userID, sid string, snap UserSnapshot) error
	// List returns the user's live sessions, without their Snapshots, in
	// no particular order.
	List(ctx context.Context, userID string) ([]Session, error)
	// Delete removes sessions; it answers how many existed.
	Delete(ctx context.Context, userID string, sids ...string) (int, error)
}

// SigningKey is a signing key as a KeyStore keeps it. The private key is
// opaque to the store: keys.Manager encrypts it before storing it.
type SigningKey struct {
	KID        string // RFC 7638 thumbprint of the public key
	Gen        int64  // rotation generation: one key per generation
	Alg        string // ES256, EdDSA or RS256
	PublicKey  []byte // PKIX DER
	PrivateKey []byte // PKCS8, or nonce||AES-256-GCM(PKCS8) when Encrypted
	Encrypted  bool
	CreatedAt  time.Time
	NotBefore  time.Time  // signs from
	RetireAt   *time.Time // stops signing at; nil until retired
	ExpiresAt  *time.Time // leaves the JWKS at; nil until retired
}

// KeyStore keeps the signing keys every replica shares (mongostore,
// memstore). Times keep millisecond precision.
type KeyStore interface {
	// Keys returns every stored key, oldest generation first.
	Keys(ctx context.Context) ([]SigningKey, error)
	// Insert stores k unless generation k.Gen (or k.KID) is stored already:
	// then ErrConflict. Of replicas racing to insert one generation, exactly
	// one wins; the others get ErrConflict and reload.
	Insert(ctx context.Context, k SigningKey) error
	// Retire records when generation gen stops signing and leaves the JWKS.
	// A generation that is not stored (deleted meanwhile) is no error.
	Retire(ctx context.Context, gen int64, retireAt, expiresAt time.Time) error
	// DeleteExpired deletes the keys whose ExpiresAt is at or before now.
	DeleteExpired(ctx context.Context, now time.Time) error
}

// OutboxEntry is one message waiting in an Outbox.
type OutboxEntry struct {
	// ID is set by Enqueue. IDs are unique and sort, as strings, in queue
	// order.
	ID string
	// Key is the ordering key (for revocation events, the user id): a
	// relay keeps one key's entries in queue order.
	Key       string
	Payload   []byte    // opaque to the store
	CreatedAt time.Time // set by Enqueue when zero; millisecond precision
	Attempts  int       // failed delivery attempts counted by Failed
	// Trace is the W3C trace context (traceparent, tracestate) of the
	// request that queued the entry, so that its delivery later is traced
	// back to it; nil when it was not traced. Opaque to the store.
	Trace map[string]string
}

// Outbox is a durable queue of messages waiting for delivery, shared by
// every replica (mongostore, memstore): revocation events waiting for Kafka
// today. A relay holding the lease reads it in queue order, delivers and
// deletes, so only one relay at a time delivers and one key's entries leave
// in the order they were queued.
type Outbox interface {
	// Enqueue appends entries, in the order given, behind the entries
	// queued before (across processes, as far as their clocks agree). The
	// store sets ID and Attempts.
	Enqueue(ctx context.Context, entries ...OutboxEntry) error
	// Queued reports which of keys have entries queued.
	Queued(ctx context.Context, keys ...string) (map[string]bool, error)
	// Batch returns up to limit entries from the head of the queue, in
	// queue order.
	Batch(ctx context.Context, limit int) ([]OutboxEntry, error)
	// Delete removes the entries with these IDs; unknown IDs are ignored.
	Delete(ctx context.Context, ids ...string) error
	// Failed counts one failed delivery attempt for each of these entries.
	Failed(ctx context.Context, ids ...string) error
	// Pending counts the queued entries.
	Pending(ctx context.Context) (int64, error)
	// Lease takes the relay lease for owner, or renews it, until now+ttl,
	// and reports whether owner holds it. It is refused while another
	// owner's lease runs at now; of racing callers at most one holds it.
	// Callers pass their clock, so that expiry is judged by one clock.
	Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error)
	// Release ends owner's lease at once, so another relay may take it. A
	// lease held by another owner is left alone.
	Release(ctx context.Context, owner string) error
}

// Signer signs JWTs with the current key (keys.Manager), for the Service
// and for the revocation events (kafkaevents). typ is the JOSE typ. An error
// wraps ErrUnavailable when no key can sign now.
type Signer interface {
	Sign(ctx context.Context, typ string, claims jwt.Claims) (string, error)
}

// TokenVerifier checks an access token minted by this issuer, revocations
// included: the sdk's Verifier, on the issuer's own keys.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*sdk.Claims, error)
}

// RevocationPublisher emits revocation events; nil means acked by Kafka or
// durably queued (kafkaevents.Publisher). An error wraps ErrUnavailable when
// the events could be neither.
type RevocationPublisher interface {
	Publish(ctx context.Context, events ...revocation.Event) error
}

// Throttle applies the rate limits whose key only the Service knows
// (ratelimit.Limiter, shared by every replica through Redis). A refusal is
// a *RateLimitError; a backend failure wraps ErrUnavailable.
type Throttle interface {
	// PasswordAttempt asks to check one password of account from network
	// (the client's network, as ratelimit.NetworkOf gives it). account is
	// "u:" and the user id, or for an identifier that names no user "i:"
	// and the normalized identifier, so that both are throttled alike.
	// Once allowed, done must be called with what the check gave.
	PasswordAttempt(ctx context.Context, account, network string) (done func(Attempt), err error)
	// Revocation asks to revoke sessions or tokens of subject (a user id or
	// a client id) in one request, before its events are emitted.
	Revocation(ctx context.Context, subject string) error
	// Mail asks to send one message to recipient (an EmailKey), for the
	// mail a third party can make the issuer send (a password reset, a
	// verification link): asked alike whether or not the address has an
	// account.
	Mail(ctx context.Context, recipient string) error
}

// Attempt is the outcome of an allowed password attempt.
type Attempt int

// Attempt outcomes.
const (
	AttemptFailed     Attempt = iota // the password was checked and did not match
	AttemptMatched                   // the password matched
	AttemptNotChecked                // the check did not happen (hasher busy, backend down)
)

// PasswordHasher hashes and checks passwords with bounded concurrency;
// ErrBusy when no slot frees up in time.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches phc and whether phc uses
	// outdated parameters.
	Verify(ctx context.Context, password, phc string) (ok, rehash bool, err error)
	// Dummy spends the time of a Verify, for unknown users.
	Dummy(ctx context.Context, password string) error
}
