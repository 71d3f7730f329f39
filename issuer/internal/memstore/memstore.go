// Package memstore implements every storage port of auth in memory
// (UserStore, SessionStore, KeyStore, Outbox), for fast unit tests. It
// passes the storetest suites, but the suites run against the real adapters
// are what count.
package memstore

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Users implements auth.UserStore.
type Users struct {
	mu                  sync.Mutex
	byID                map[string]auth.User
	byEmail, byUsername map[string]string
}

var _ auth.UserStore = (*Users)(nil)

// NewUsers returns an empty store.
func NewUsers() *Users {
	return &Users{byID: map[string]auth.User{}, byEmail: map[string]string{}, byUsername: map[string]string{}}
}

// Create implements auth.UserStore.
func (s *Users) Create(_ context.Context, u auth.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ekey := auth.EmailKey(u.Email)
	if _, ok := s.byEmail[ekey]; ok {
		return auth.ErrEmailTaken
	}
	uk := auth.NormalizeUsername(u.Username)
	if _, ok := s.byUsername[uk]; ok && uk != "" {
		return auth.ErrUsernameTaken
	}
	s.byID[u.ID] = u
	s.byEmail[ekey] = u.ID
	if uk != "" {
		s.byUsername[uk] = u.ID
	}
	return nil
}

// ByID implements auth.UserStore.
func (s *Users) ByID(_ context.Context, id string) (auth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	return u, nil
}

// ByEmail implements auth.UserStore.
func (s *Users) ByEmail(ctx context.Context, email string) (auth.User, error) {
	s.mu.Lock()
	id, ok := s.byEmail[auth.NormalizeEmail(email)]
	s.mu.Unlock()
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	return s.ByID(ctx, id)
}

// ByUsername implements auth.UserStore.
func (s *Users) ByUsername(ctx context.Context, username string) (auth.User, error) {
	s.mu.Lock()
	id, ok := s.byUsername[auth.NormalizeUsername(username)]
	s.mu.Unlock()
	if !ok || username == "" {
		return auth.User{}, auth.ErrUserNotFound
	}
	return s.ByID(ctx, id)
}

// SetPasswordHash implements auth.UserStore.
func (s *Users) SetPasswordHash(_ context.Context, id, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return auth.ErrUserNotFound
	}
	u.PasswordHash = hash
	s.byID[id] = u
	return nil
}

type token struct {
	uid, sid  string
	rotated   bool
	successor string    // raw; memory only
	graceEnd  time.Time // grace retries get the successor until then
}

// Sessions implements auth.SessionStore.
type Sessions struct {
	mu       sync.Mutex
	grace    time.Duration
	now      func() time.Time
	sessions map[string]auth.Session // by sid
	tokens   map[[32]byte]*token
}

var _ auth.SessionStore = (*Sessions)(nil)

// NewSessions returns an empty store; now may be nil.
func NewSessions(grace time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{grace: grace, now: now, sessions: map[string]auth.Session{}, tokens: map[[32]byte]*token{}}
}

// Create implements auth.SessionStore.
func (s *Sessions) Create(_ context.Context, sess auth.Session, refresh string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.Snapshot = copySnapshot(sess.Snapshot)
	s.sessions[sess.ID] = sess
	s.tokens[sha256.Sum256([]byte(refresh))] = &token{uid: sess.UserID, sid: sess.ID}
	return nil
}

// Rotate implements auth.SessionStore.
func (s *Sessions) Rotate(_ context.Context, refresh, successor string) (auth.Rotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[sha256.Sum256([]byte(refresh))]
	if !ok {
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
	sess, ok := s.sessions[t.sid]
	if !ok {
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
	if t.rotated {
		if s.now().Before(t.graceEnd) {
			sess.Snapshot = copySnapshot(sess.Snapshot)
			return auth.Rotation{Session: sess, Token: t.successor, GraceRetry: true}, nil
		}
		s.deleteLocked(sess.ID)
		return auth.Rotation{Session: auth.Session{ID: sess.ID, UserID: sess.UserID}}, auth.ErrRefreshReuse
	}
	t.rotated, t.successor, t.graceEnd = true, successor, s.now().Add(s.grace)
	s.tokens[sha256.Sum256([]byte(successor))] = &token{uid: sess.UserID, sid: sess.ID}
	sess.Snapshot = copySnapshot(sess.Snapshot)
	return auth.Rotation{Session: sess, Token: successor}, nil
}

// Lookup implements auth.SessionStore.
func (s *Sessions) Lookup(_ context.Context, refresh string) (auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[sha256.Sum256([]byte(refresh))]
	if !ok || (t.rotated && !s.now().Before(t.graceEnd)) {
		return auth.Session{}, auth.ErrInvalidRefreshToken
	}
	sess, ok := s.sessions[t.sid]
	if !ok {
		return auth.Session{}, auth.ErrInvalidRefreshToken
	}
	sess.Snapshot = nil
	return sess, nil
}

// Get implements auth.SessionStore.
func (s *Sessions) Get(_ context.Context, userID, sid string) (auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sid]
	if !ok || sess.UserID != userID {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	sess.Snapshot = nil
	return sess, nil
}

// SetSnapshot implements auth.SessionStore.
func (s *Sessions) SetSnapshot(_ context.Context, userID, sid string, snap auth.UserSnapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sid]
	if !ok || sess.UserID != userID || (sess.Snapshot != nil && !snap.CheckedAt.After(sess.Snapshot.CheckedAt)) {
		return nil
	}
	sess.Snapshot = copySnapshot(&snap)
	s.sessions[sid] = sess
	return nil
}

// copySnapshot returns a copy that shares nothing with snap and lacks the
// password hash, as if it had been stored and read back.
func copySnapshot(snap *auth.UserSnapshot) *auth.UserSnapshot {
	if snap == nil {
		return nil
	}
	c := *snap
	c.User = c.User.Public()
	if c.User.Roles != nil {
		c.User.Roles = append([]string{}, c.User.Roles...)
	}
	return &c
}

// List implements auth.SessionStore.
func (s *Sessions) List(_ context.Context, userID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, sess := range s.sessions {
		if sess.UserID == userID {
			out = append(out, id)
		}
	}
	return out, nil
}

// Delete implements auth.SessionStore.
func (s *Sessions) Delete(_ context.Context, userID string, sids ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sid := range sids {
		if sess, ok := s.sessions[sid]; ok && sess.UserID == userID {
			s.deleteLocked(sid)
			n++
		}
	}
	return n, nil
}

func (s *Sessions) deleteLocked(sid string) {
	delete(s.sessions, sid)
	for h, t := range s.tokens {
		if t.sid == sid {
			delete(s.tokens, h)
		}
	}
}
