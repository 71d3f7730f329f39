package auth

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The audit log: every security-relevant action, with who did it, to what,
// from where and in which request. An entry never holds a secret: no
// password, token, link or secret, only ids, fixed type names and a detail
// built from a fixed vocabulary (and role names).

// Audit entry types.
const (
	AuditUserRegistered   = "user.registered"
	AuditLoginSucceeded   = "login.succeeded"
	AuditLoginFailed      = "login.failed"
	AuditLogout           = "logout"
	AuditRefreshReuse     = "refresh.reuse_detected"
	AuditEmailVerified    = "email.verified"
	AuditEmailChanged     = "email.changed"
	AuditPasswordChanged  = "password.changed"
	AuditPasswordReset    = "password.reset"
	AuditAccountDeleted   = "account.deleted"
	AuditAdminUserUpdated = "admin.user_updated"
	AuditAdminUserDeleted = "admin.user_deleted"
	AuditAdminLogout      = "admin.logout"
	AuditClientCreated    = "client.created"
	AuditClientRevoked    = "client.revoked"
	AuditIdentityLinked   = "identity.linked"   // a provider's account now signs in to the user
	AuditIdentityUnlinked = "identity.unlinked" // and no longer
)

// AuditTypes lists every entry type.
var AuditTypes = []string{AuditUserRegistered, AuditLoginSucceeded, AuditLoginFailed, AuditLogout,
	AuditRefreshReuse, AuditEmailVerified, AuditEmailChanged, AuditPasswordChanged, AuditPasswordReset,
	AuditAccountDeleted, AuditAdminUserUpdated, AuditAdminUserDeleted, AuditAdminLogout,
	AuditClientCreated, AuditClientRevoked, AuditIdentityLinked, AuditIdentityUnlinked}

// ActorCommandLine is the actor of what `issuer users` and `issuer
// clients` do.
const ActorCommandLine = "cli"

// AuditEntry is one recorded action.
type AuditEntry struct {
	// ID is set by the Auditor: unique, and in the order of Time when
	// compared as strings (NewAuditID).
	ID   string
	Time time.Time // millisecond precision
	Type string    // one of AuditTypes
	// Actor is who acted: a user id, a service account's client id,
	// ActorCommandLine, or "" when the caller is not known (a failed login
	// of an unknown account, a reused refresh token).
	Actor string
	// Target is the user or service account acted upon; "" when none is
	// known.
	Target    string
	IP        string // the client's address (after JOTGUARD_TRUSTED_PROXIES)
	UserAgent string // cleaned and cut (CleanUserAgent)
	RequestID string
	// Detail says more in a fixed vocabulary: why a login failed, what an
	// administrator changed, how many sessions ended.
	Detail string
	// ExpiresAt is when the store may delete the entry (the retention),
	// set by the Auditor.
	ExpiresAt time.Time
}

// AuditQuery selects entries for AuditLog.List.
type AuditQuery struct {
	UserID string // entries whose Actor or Target is this id; "" any
	Type   string // "" any
	Before string // an entry id: only entries before it (older)
	Limit  int
}

// AuditLog stores audit entries (mongostore, memstore).
type AuditLog interface {
	// Append stores entries (their IDs are set and unique).
	Append(ctx context.Context, entries ...AuditEntry) error
	// List returns up to q.Limit entries matching q, newest (greatest ID)
	// first.
	List(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// DeleteExpired deletes the entries whose ExpiresAt is at or before now.
	DeleteExpired(ctx context.Context, now time.Time) error
}

// Auditor records the Service's entries (audit.Recorder) without failing
// the action and without holding the request up: Record returns at once,
// and the entry is written behind it. List reads the log.
type Auditor interface {
	Record(ctx context.Context, e AuditEntry)
	List(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// Caller is where a request came from, for the audit log: httpapi puts it
// in every request's context.
type Caller struct {
	IP        string
	UserAgent string
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the Caller of ctx; empty when none.
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// audit records an entry of typ for the request of ctx.
func (s *Service) audit(ctx context.Context, typ, actor, target, detail string) {
	c := CallerOf(ctx)
	s.d.Audit.Record(ctx, AuditEntry{Time: s.cfg.Now().UTC().Truncate(time.Millisecond), Type: typ,
		Actor: actor, Target: target, IP: cleanIP(c.IP), UserAgent: CleanUserAgent(c.UserAgent),
		RequestID: s.cfg.RequestID(ctx), Detail: detail})
}

// MaxPage is the most entries or users one page answers; DefaultPage is
// what a page has when the caller does not say.
const (
	MaxPage     = 200
	DefaultPage = 50
)

// pageLimit checks a page size: 0 is DefaultPage.
func pageLimit(v *ValidationError, n int) int {
	switch {
	case n == 0:
		return DefaultPage
	case n < 0 || n > MaxPage:
		v.Fields = append(v.Fields, FieldError{"limit", "must be 1 to 200"})
	}
	return n
}

// wellFormedCursor: a cursor is an id the API answered, opaque to callers
// but made only of lower-case letters, digits and '-'.
func wellFormedCursor(v *ValidationError, c string) {
	ok := len(c) <= 64
	for i := 0; ok && i < len(c); i++ {
		b := c[i]
		ok = b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_'
	}
	if !ok {
		v.Fields = append(v.Fields, FieldError{"cursor", "is not a cursor this API answered"})
	}
}

// Audit returns a page of the audit log for an administrator, newest
// first, and the cursor of the next page ("" when this is the last).
func (s *Service) Audit(ctx context.Context, _ Admin, q AuditQuery) ([]AuditEntry, string, error) {
	v := &ValidationError{}
	q.Limit = pageLimit(v, q.Limit)
	wellFormedCursor(v, q.Before)
	if q.Type != "" && !slices.Contains(AuditTypes, q.Type) {
		v.Fields = append(v.Fields, FieldError{"type", "is not an audit entry type: " + strings.Join(AuditTypes, ", ")})
	}
	if len(q.UserID) > 64 {
		v.Fields = append(v.Fields, FieldError{"user_id", "is not an id"})
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	want := q.Limit
	q.Limit++ // one more tells whether there is a next page
	out, err := s.d.Audit.List(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out, next := page(out, want)
	if next != nil {
		return out, next.ID, nil
	}
	return out, "", nil
}

// page cuts items (up to want+1, asked for to know whether there is a next
// page) to want, and returns the last item of the page when there is a
// next one, nil otherwise: its id is the next page's cursor.
func page[T any](items []T, want int) ([]T, *T) {
	if len(items) <= want {
		return items, nil
	}
	return items[:want], &items[want-1]
}

// noAudit is the Auditor of a Service given none.
type noAudit struct{}

func (noAudit) Record(context.Context, AuditEntry) {}

func (noAudit) List(context.Context, AuditQuery) ([]AuditEntry, error) { return nil, nil }
