package memstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Update implements auth.UserStore.
func (s *Users) Update(_ context.Context, id string, up auth.UserUpdate) (auth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	if up.Roles != nil {
		u.Roles = slices.Clone(*up.Roles)
	}
	if up.Disabled != nil {
		u.Disabled = *up.Disabled
	}
	if up.EmailVerified != nil {
		u.EmailVerified = *up.EmailVerified
	}
	s.byID[id] = u
	u.Roles = slices.Clone(u.Roles)
	return u, nil
}

// List implements auth.UserStore.
func (s *Users) List(_ context.Context, q auth.UserQuery) ([]auth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []auth.User
	for id, u := range s.byID {
		if id <= q.After || (q.Query != "" && id != q.Query && !strings.Contains(u.Email, q.Query) &&
			!strings.Contains(auth.NormalizeUsername(u.Username), q.Query)) {
			continue
		}
		u.Roles = slices.Clone(u.Roles)
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b auth.User) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.Limit)], nil
}

// Clients implements auth.ClientStore.
type Clients struct {
	mu   sync.Mutex
	byID map[string]auth.Client
}

var _ auth.ClientStore = (*Clients)(nil)

// NewClients returns an empty store.
func NewClients() *Clients { return &Clients{byID: map[string]auth.Client{}} }

// Create implements auth.ClientStore.
func (s *Clients) Create(_ context.Context, c auth.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[c.ID]; ok {
		return auth.ErrConflict
	}
	c.Roles = slices.Clone(c.Roles)
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Millisecond)
	s.byID[c.ID] = c
	return nil
}

// ByID implements auth.ClientStore.
func (s *Clients) ByID(_ context.Context, id string) (auth.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byID[id]
	if !ok {
		return auth.Client{}, auth.ErrClientNotFound
	}
	c.Roles = slices.Clone(c.Roles)
	return c, nil
}

// List implements auth.ClientStore.
func (s *Clients) List(_ context.Context) ([]auth.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]auth.Client, 0, len(s.byID))
	for _, c := range s.byID {
		c.Roles = slices.Clone(c.Roles)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b auth.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete implements auth.ClientStore.
func (s *Clients) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return auth.ErrClientNotFound
	}
	delete(s.byID, id)
	return nil
}

// AuditLog implements auth.AuditLog.
type AuditLog struct {
	mu      sync.Mutex
	entries []auth.AuditEntry // in ID order
}

var _ auth.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns an empty log.
func NewAuditLog() *AuditLog { return &AuditLog{} }

// Append implements auth.AuditLog.
func (s *AuditLog) Append(_ context.Context, entries ...auth.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if slices.ContainsFunc(s.entries, func(o auth.AuditEntry) bool { return o.ID == e.ID }) {
			continue // stored already: a retried batch
		}
		e.Time = e.Time.UTC().Truncate(time.Millisecond)
		e.ExpiresAt = e.ExpiresAt.UTC().Truncate(time.Millisecond)
		s.entries = append(s.entries, e)
	}
	slices.SortFunc(s.entries, func(a, b auth.AuditEntry) int { return cmp.Compare(a.ID, b.ID) })
	return nil
}

// List implements auth.AuditLog.
func (s *AuditLog) List(_ context.Context, q auth.AuditQuery) ([]auth.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []auth.AuditEntry
	for i := len(s.entries) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := s.entries[i]
		if (q.Before == "" || e.ID < q.Before) && (q.Type == "" || e.Type == q.Type) &&
			(q.UserID == "" || e.Actor == q.UserID || e.Target == q.UserID) {
			out = append(out, e)
		}
	}
	return out, nil
}

// DeleteExpired implements auth.AuditLog.
func (s *AuditLog) DeleteExpired(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = slices.DeleteFunc(s.entries, func(e auth.AuditEntry) bool { return !e.ExpiresAt.After(now) })
	return nil
}
