package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Service accounts: machine identities that get access tokens with the
// client credentials grant (RFC 6749 §4.4). A token's sub and client_id are
// the client id; it has the account's roles, no sid and no refresh token.
//
// The secret is 256 random bits, shown once, stored only as its SHA-256.
// A slow hash (argon2id) protects passwords because people choose guessable
// ones; a 256-bit random secret cannot be guessed, so its SHA-256 is as
// safe against a stolen database, and checking it costs microseconds
// instead of the tens of milliseconds and megabytes of an argon2id hash on
// every token request and every introspection call.

// Client is a service account.
type Client struct {
	ID         string // the client_id, also the tokens' sub: ClientIDPrefix and a random id
	Name       string
	Roles      []string
	SecretHash string // hex SHA-256 of the secret (HashClientSecret)
	CreatedAt  time.Time
	CreatedBy  string // the administrator's actor id
}

// ClientStore keeps service accounts (mongostore, memstore). Every method
// that names one by id answers ErrClientNotFound when there is none.
type ClientStore interface {
	// Create stores c; ErrConflict when its id is taken.
	Create(ctx context.Context, c Client) error
	ByID(ctx context.Context, id string) (Client, error)
	// List returns every service account, in id order.
	List(ctx context.Context) ([]Client, error)
	Delete(ctx context.Context, id string) error
}

// ClientIDPrefix starts every client id: the ids of users never have it,
// so a sub tells a service account from a user at a glance.
const ClientIDPrefix = "svc-"

// ClientSecretPrefix starts every client secret, so that secret scanners
// (and people) recognise one that leaked.
const ClientSecretPrefix = "jgs_"

// NewClientSecret returns a new secret: ClientSecretPrefix and 256 random
// bits, base64url.
func NewClientSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return ClientSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashClientSecret is what a ClientStore keeps of a secret.
func HashClientSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checkName validates a service account's name: what an administrator
// calls it, shown in lists.
func checkClientName(v *ValidationError, name string) string {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || hasControl(name) {
		v.Fields = append(v.Fields, FieldError{"name", "must be 1 to 100 characters, without control characters"})
	}
	return name
}

// CreateClient creates a service account for an administrator and returns
// it with its secret, which is not stored and cannot be shown again.
func (s *Service) CreateClient(ctx context.Context, a Admin, name string, roles []string) (Client, string, error) {
	v := &ValidationError{}
	name = checkClientName(v, name)
	roles = checkRoles(v, "roles", roles)
	if err := v.err(); err != nil {
		return Client{}, "", err
	}
	secret := NewClientSecret()
	c := Client{ID: ClientIDPrefix + NewID(), Name: name, Roles: roles, SecretHash: HashClientSecret(secret),
		CreatedAt: s.cfg.Now().UTC().Truncate(time.Millisecond), CreatedBy: a.ID()}
	if err := s.d.Clients.Create(ctx, c); err != nil {
		return Client{}, "", err
	}
	s.log.InfoContext(ctx, "service account created", "client_id", c.ID, "admin", a.ID())
	s.audit(ctx, AuditClientCreated, a.ID(), c.ID, "roles="+strings.Join(roles, ","))
	return c, secret, nil
}

// Clients lists the service accounts for an administrator.
func (s *Service) Clients(ctx context.Context, _ Admin) ([]Client, error) {
	return s.d.Clients.List(ctx)
}

// DeleteClient deletes a service account for an administrator: a
// client_revoked event first (sub_id iss_sub of the client id: every token
// it was issued dies at every verifier), then the account.
func (s *Service) DeleteClient(ctx context.Context, a Admin, id string) error {
	if id == "" || len(id) > 64 {
		return ErrClientNotFound
	}
	if _, err := s.d.Clients.ByID(ctx, id); err != nil {
		return err
	}
	if err := s.revokeAll(ctx, id, revocation.ReasonClientRevoked, false); err != nil {
		return err
	}
	if err := s.d.Clients.Delete(ctx, id); err != nil && !errors.Is(err, ErrClientNotFound) {
		return err
	}
	s.log.InfoContext(ctx, "service account deleted", "client_id", id, "admin", a.ID())
	s.audit(ctx, AuditClientRevoked, a.ID(), id, "")
	return nil
}

// client returns the service account of id if secret is its secret;
// ErrInvalidClient otherwise, after the same work whether or not the
// account exists.
func (s *Service) client(ctx context.Context, id, secret string) (Client, error) {
	given := HashClientSecret(secret)
	if id == "" || len(id) > 64 || secret == "" || len(secret) > 256 {
		return Client{}, ErrInvalidClient
	}
	c, err := s.d.Clients.ByID(ctx, id)
	switch {
	case errors.Is(err, ErrClientNotFound):
		c.SecretHash = strings.Repeat("0", len(given)) // compared all the same
	case err != nil:
		return Client{}, err
	}
	if subtle.ConstantTimeCompare([]byte(given), []byte(c.SecretHash)) != 1 || err != nil {
		return Client{}, ErrInvalidClient
	}
	return c, nil
}

// ClientToken is the client credentials grant: an access token for the
// service account id whose secret is secret.
func (s *Service) ClientToken(ctx context.Context, id, secret string) (Tokens, error) {
	c, err := s.client(ctx, id, secret)
	if err != nil {
		if errors.Is(err, ErrInvalidClient) {
			target := ""
			if strings.HasPrefix(id, ClientIDPrefix) && len(id) <= 64 && !hasInvisible(id) {
				target = id
			}
			s.audit(ctx, AuditLoginFailed, "", target, "client_credentials invalid_client")
		}
		return Tokens{}, err
	}
	now := s.cfg.Now()
	claims := sdk.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   c.ID,
			Audience:  jwt.ClaimStrings(s.cfg.Audience),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			ID:        NewID(),
		},
		ClientID: c.ID,
		Roles:    c.Roles,
	}
	at, err := s.d.Signer.Sign(ctx, sdk.TokenType, claims.Signable())
	if err != nil {
		return Tokens{}, fmt.Errorf("auth: sign: %w", err)
	}
	s.audit(ctx, AuditLoginSucceeded, c.ID, c.ID, "client_credentials")
	return Tokens{AccessToken: at, ExpiresIn: s.cfg.AccessTTL}, nil
}

// IntrospectionCaller is how a caller of the introspection endpoint
// authenticates: a service account's credentials, or its access token.
type IntrospectionCaller struct {
	ClientID, ClientSecret string
	Bearer                 string
}

// Introspect answers RFC 7662 for a service account: the claims of token
// when it is active (valid, not revoked, its session or service account
// still there), nil when it is not. The caller's failures are
// ErrInvalidClient (bad credentials), ErrInvalidAccessToken (a bad Bearer
// token) and ErrForbidden (a user's token: introspection is for services).
func (s *Service) Introspect(ctx context.Context, caller IntrospectionCaller, token string) (*sdk.Claims, error) {
	if caller.Bearer != "" {
		c, err := s.verifyAccess(ctx, caller.Bearer)
		if err != nil {
			return nil, err
		}
		if !c.ServiceAccount() {
			return nil, fmt.Errorf("%w: a service account's token is required", ErrForbidden)
		}
		if _, err := s.d.Clients.ByID(ctx, c.Subject); err != nil {
			if errors.Is(err, ErrClientNotFound) {
				return nil, fmt.Errorf("%w: its service account was deleted", ErrInvalidAccessToken)
			}
			return nil, err
		}
	} else if _, err := s.client(ctx, caller.ClientID, caller.ClientSecret); err != nil {
		return nil, err
	}
	c, err := s.verifyAccess(ctx, token)
	switch {
	case errors.Is(err, ErrInvalidAccessToken):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if c.ServiceAccount() {
		_, err = s.d.Clients.ByID(ctx, c.Subject)
		if errors.Is(err, ErrClientNotFound) {
			return nil, nil
		}
	} else {
		_, err = s.d.Sessions.Get(ctx, c.Subject, c.SessionID)
		if errors.Is(err, ErrSessionNotFound) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// noClients is the ClientStore of a Service given none: no service
// account exists, and none can be created.
type noClients struct{}

var errNoClientStore = fmt.Errorf("%w: no service account store", ErrUnavailable)

func (noClients) Create(context.Context, Client) error         { return errNoClientStore }
func (noClients) ByID(context.Context, string) (Client, error) { return Client{}, ErrClientNotFound }
func (noClients) List(context.Context) ([]Client, error)       { return nil, nil }
func (noClients) Delete(context.Context, string) error         { return ErrClientNotFound }
