package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The administration API: every method takes the access token of an
// administrator (a user or a service account with the admin role). Without
// the role the issuer answers 403 CodeInsufficientScope.

// Problem codes of the administration API and of service accounts.
const (
	CodeInsufficientScope = "insufficient_scope" // the token lacks the admin role (or is not a service account's)
	CodeInvalidClient     = "invalid_client"     // a service account's credentials are wrong
)

// AdminUser is a user as the administration API shows it.
type AdminUser struct {
	User
	Disabled bool `json:"disabled"`
}

// UserQuery selects a page of users: those whose email or username
// contains Query (or whose id it is), Limit per page (0: the issuer's
// default, 50), after Cursor (a page's NextCursor).
type UserQuery struct {
	Query  string
	Limit  int
	Cursor string
}

// UserPage is one page of users; NextCursor is "" on the last page.
type UserPage struct {
	Users      []AdminUser `json:"users"`
	NextCursor string      `json:"next_cursor"`
}

// pageQuery builds the query string of a paged list.
func pageQuery(limit int, cursor string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// ListUsers returns a page of users, in id order.
func (c *Client) ListUsers(ctx context.Context, accessToken string, q UserQuery) (*UserPage, error) {
	var p UserPage
	if _, err := c.do(ctx, http.MethodGet, "/admin/users"+pageQuery(q.Limit, q.Cursor, "query", q.Query), accessToken, nil,
		http.StatusOK, &p); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return &p, nil
}

// GetUser returns the user of id (404 CodeNotFound when there is none).
func (c *Client) GetUser(ctx context.Context, accessToken, id string) (*AdminUser, error) {
	var u AdminUser
	if _, err := c.do(ctx, http.MethodGet, "/admin/users/"+url.PathEscape(id), accessToken, nil, http.StatusOK, &u); err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return &u, nil
}

// UserUpdate is an administrator's change of a user; nil members stay as
// they are. Roles replaces the user's roles (tokens issued before are
// revoked everywhere, the next refresh carries the new ones); Disabled
// true revokes every token of the user and refuses its logins and
// refreshes; EmailVerified is carried by the next refresh.
type UserUpdate struct {
	Roles         *[]string `json:"roles,omitempty"`
	Disabled      *bool     `json:"disabled,omitempty"`
	EmailVerified *bool     `json:"email_verified,omitempty"`
}

// UpdateUser applies u to the user of id and returns the user.
func (c *Client) UpdateUser(ctx context.Context, accessToken, id string, u UserUpdate) (*AdminUser, error) {
	var out AdminUser
	if _, err := c.do(ctx, http.MethodPatch, "/admin/users/"+url.PathEscape(id), accessToken, u, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	return &out, nil
}

// DeleteUser deletes the user of id; its tokens are revoked everywhere.
func (c *Client) DeleteUser(ctx context.Context, accessToken, id string) error {
	if _, err := c.do(ctx, http.MethodDelete, "/admin/users/"+url.PathEscape(id), accessToken, nil, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// LogoutUser ends every session of the user of id; their tokens are
// revoked everywhere.
func (c *Client) LogoutUser(ctx context.Context, accessToken, id string) error {
	if _, err := c.do(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(id)+"/logout", accessToken, nil,
		http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("logout user: %w", err)
	}
	return nil
}

// AuditEntry is one entry of the audit log.
type AuditEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"` // user.registered, login.failed, admin.user_updated, …
	Actor     string    `json:"actor"`
	Target    string    `json:"target"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	RequestID string    `json:"request_id"`
	Detail    string    `json:"detail,omitempty"`
}

// AuditQuery selects a page of the audit log: entries whose actor or
// target is UserID, of Type, Limit per page, after Cursor.
type AuditQuery struct {
	UserID, Type string
	Limit        int
	Cursor       string
}

// AuditPage is one page of the audit log, newest first; NextCursor is ""
// on the last page.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor"`
}

// Audit returns a page of the audit log.
func (c *Client) Audit(ctx context.Context, accessToken string, q AuditQuery) (*AuditPage, error) {
	var p AuditPage
	if _, err := c.do(ctx, http.MethodGet, "/admin/audit"+pageQuery(q.Limit, q.Cursor, "user_id", q.UserID, "type", q.Type),
		accessToken, nil, http.StatusOK, &p); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &p, nil
}

// ServiceAccount is a machine identity: its tokens have sub and client_id
// ClientID, its Roles, and no session.
type ServiceAccount struct {
	ClientID  string    `json:"client_id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// NewServiceAccount is a created service account with its secret, which
// the issuer shows this once.
type NewServiceAccount struct {
	ServiceAccount
	ClientSecret string `json:"client_secret"`
}

// CreateServiceAccount creates a service account with roles.
func (c *Client) CreateServiceAccount(ctx context.Context, accessToken, name string, roles []string) (*NewServiceAccount, error) {
	body := struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}{name, roles}
	var out NewServiceAccount
	if _, err := c.do(ctx, http.MethodPost, "/admin/clients", accessToken, body, http.StatusCreated, &out); err != nil {
		return nil, fmt.Errorf("create service account: %w", err)
	}
	return &out, nil
}

// ServiceAccounts lists the service accounts.
func (c *Client) ServiceAccounts(ctx context.Context, accessToken string) ([]ServiceAccount, error) {
	var out struct {
		Clients []ServiceAccount `json:"clients"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/admin/clients", accessToken, nil, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("list service accounts: %w", err)
	}
	return out.Clients, nil
}

// DeleteServiceAccount deletes a service account; every token it was
// issued is revoked everywhere.
func (c *Client) DeleteServiceAccount(ctx context.Context, accessToken, clientID string) error {
	if _, err := c.do(ctx, http.MethodDelete, "/admin/clients/"+url.PathEscape(clientID), accessToken, nil,
		http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("delete service account: %w", err)
	}
	return nil
}
