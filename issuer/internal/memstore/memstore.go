// Package memstore implements every storage port of auth in memory
// (UserStore, SessionStore, KeyStore, Outbox, LinkTokens), for fast unit
// tests. It
// passes the storetest suites, but the suites run against the real adapters
// are what count.
package memstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Users implements auth.UserStore.
type Users struct {
	mu                              sync.Mutex
	byID                            map[string]auth.User
	byEmail, byUsername, byIdentity map[string]string
}

var _ auth.UserStore = (*Users)(nil)

// NewUsers returns an empty store.
func NewUsers() *Users {
	return &Users{byID: map[string]auth.User{}, byEmail: map[string]string{}, byUsername: map[string]string{},
		byIdentity: map[string]string{}}
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
	for _, id := range u.Identities {
		if _, ok := s.byIdentity[auth.IdentityKey(id.Provider, id.Subject)]; ok {
			return auth.ErrIdentityTaken
		}
	}
	u.Identities = slices.Clone(u.Identities)
	s.byID[u.ID] = u
	s.byEmail[ekey] = u.ID
	if uk != "" {
		s.byUsername[uk] = u.ID
	}
	for _, id := range u.Identities {
		s.byIdentity[auth.IdentityKey(id.Provider, id.Subject)] = u.ID
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
	u.Identities = slices.Clone(u.Identities)
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

// UpdateProfile implements auth.UserStore.
func (s *Users) UpdateProfile(_ context.Context, id string, p auth.Profile) (auth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	oldKey, newKey := auth.NormalizeUsername(u.Username), auth.NormalizeUsername(p.Username)
	if owner, ok := s.byUsername[newKey]; ok && newKey != "" && owner != id {
		return auth.User{}, auth.ErrUsernameTaken
	}
	if oldKey != newKey {
		delete(s.byUsername, oldKey)
		if newKey != "" {
			s.byUsername[newKey] = id
		}
	}
	u.Username, u.FirstName, u.LastName = strings.TrimSpace(p.Username), p.FirstName, p.LastName
	s.byID[id] = u
	return u, nil
}

// withEmailLocked returns user id if its address is email: else
// ErrUserNotFound or ErrConflict.
func (s *Users) withEmailLocked(id, email string) (auth.User, error) {
	u, ok := s.byID[id]
	switch {
	case !ok:
		return auth.User{}, auth.ErrUserNotFound
	case u.Email != email:
		return auth.User{}, auth.ErrConflict
	}
	return u, nil
}

// SetEmail implements auth.UserStore.
func (s *Users) SetEmail(_ context.Context, id, from, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.withEmailLocked(id, from)
	if err != nil {
		return err
	}
	oldKey, newKey := auth.EmailKey(from), auth.EmailKey(to)
	if owner, ok := s.byEmail[newKey]; ok && owner != id {
		return auth.ErrEmailTaken
	}
	delete(s.byEmail, oldKey)
	s.byEmail[newKey] = id
	u.Email, u.EmailVerified = to, true
	s.byID[id] = u
	return nil
}

// SetEmailVerified implements auth.UserStore.
func (s *Users) SetEmailVerified(_ context.Context, id, email string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.withEmailLocked(id, email)
	if err != nil {
		return err
	}
	u.EmailVerified = true
	s.byID[id] = u
	return nil
}

// Delete implements auth.UserStore.
func (s *Users) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return auth.ErrUserNotFound
	}
	delete(s.byID, id)
	delete(s.byEmail, auth.EmailKey(u.Email))
	if k := auth.NormalizeUsername(u.Username); k != "" && s.byUsername[k] == id {
		delete(s.byUsername, k)
	}
	for _, i := range u.Identities {
		delete(s.byIdentity, auth.IdentityKey(i.Provider, i.Subject))
	}
	return nil
}

// ByIdentity implements auth.UserStore.
func (s *Users) ByIdentity(ctx context.Context, provider, subject string) (auth.User, error) {
	s.mu.Lock()
	id, ok := s.byIdentity[auth.IdentityKey(provider, subject)]
	s.mu.Unlock()
	if !ok {
		return auth.User{}, auth.ErrUserNotFound
	}
	return s.ByID(ctx, id)
}

// AddIdentity implements auth.UserStore.
func (s *Users) AddIdentity(_ context.Context, userID string, id auth.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[userID]
	if !ok {
		return auth.ErrUserNotFound
	}
	key := auth.IdentityKey(id.Provider, id.Subject)
	switch owner, ok := s.byIdentity[key]; {
	case ok && owner != userID:
		return auth.ErrIdentityTaken
	case ok:
		return nil
	}
	s.byIdentity[key] = userID
	u.Identities = append(slices.Clone(u.Identities), id)
	s.byID[userID] = u
	return nil
}

// RemoveIdentity implements auth.UserStore.
func (s *Users) RemoveIdentity(_ context.Context, userID, provider, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[userID]
	if !ok {
		return auth.ErrUserNotFound
	}
	i := slices.IndexFunc(u.Identities, func(i auth.Identity) bool { return i.Provider == provider && i.Subject == subject })
	switch {
	case i < 0:
		return auth.ErrIdentityNotFound
	case u.PasswordHash == "" && len(u.Identities) == 1:
		return auth.ErrLastSignInMethod
	}
	u.Identities = slices.Delete(slices.Clone(u.Identities), i, i+1)
	s.byID[userID] = u
	delete(s.byIdentity, auth.IdentityKey(provider, subject))
	return nil
}

// session is a stored session: like the Redis one, a bounded record
// however often it rotates.
type session struct {
	auth.Session
	chain [32]byte      // SHA-256 of the chain id its tokens carry
	cur   [32]byte      // SHA-256 of the current token
	grace []graceRecord // the latest rotations, at most auth.GraceRecords
}

// graceRecord is a rotated token's successor, given to grace retries until end.
type graceRecord struct {
	rotated   [32]byte
	successor string // raw; memory only
	end       time.Time
}

// Sessions implements auth.SessionStore.
type Sessions struct {
	mu       sync.Mutex
	grace    time.Duration
	now      func() time.Time
	sessions map[string]*session // by sid
	chains   map[[32]byte]string // chain hash → sid
}

var _ auth.SessionStore = (*Sessions)(nil)

// NewSessions returns an empty store; now may be nil.
func NewSessions(grace time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{grace: grace, now: now, sessions: map[string]*session{}, chains: map[[32]byte]string{}}
}

// Create implements auth.SessionStore.
func (s *Sessions) Create(_ context.Context, sess auth.Session, refresh string) error {
	chain, ok := auth.RefreshChain(refresh)
	if !ok {
		return errors.New("memstore: create session: the refresh token has no chain id (use auth.NewRefreshToken)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.Snapshot = copySnapshot(sess.Snapshot)
	sess.CreatedAt = sess.CreatedAt.Truncate(time.Millisecond)
	sess.LastUsedAt = sess.CreatedAt
	sess.UserAgent = auth.CleanUserAgent(sess.UserAgent)
	st := &session{Session: sess, chain: sha256.Sum256(chain), cur: sha256.Sum256([]byte(refresh))}
	s.sessions[sess.ID] = st
	s.chains[st.chain] = sess.ID
	return nil
}

// byChainLocked returns the session whose chain refresh carries.
func (s *Sessions) byChainLocked(refresh string) (*session, bool) {
	chain, ok := auth.RefreshChain(refresh)
	if !ok {
		return nil, false
	}
	st, ok := s.sessions[s.chains[sha256.Sum256(chain)]]
	return st, ok
}

// graceFor returns the live grace record of token h.
func (st *session) graceFor(h [32]byte, now time.Time) (graceRecord, bool) {
	for _, g := range st.grace {
		if g.rotated == h && now.Before(g.end) {
			return g, true
		}
	}
	return graceRecord{}, false
}

// Rotate implements auth.SessionStore.
func (s *Sessions) Rotate(_ context.Context, refresh, successor string) (auth.Rotation, error) {
	chain, _ := auth.RefreshChain(refresh)
	if next, ok := auth.RefreshChain(successor); !ok || (chain != nil && !bytes.Equal(chain, next)) {
		return auth.Rotation{}, errors.New("memstore: rotate: the successor is not of the refresh token's chain (use auth.NextRefreshToken)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byChainLocked(refresh)
	if !ok {
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
	h, now := sha256.Sum256([]byte(refresh)), s.now()
	sess := st.Session
	sess.Snapshot = copySnapshot(sess.Snapshot)
	if h != st.cur {
		if g, ok := st.graceFor(h, now); ok {
			return auth.Rotation{Session: sess, Token: g.successor, GraceRetry: true}, nil
		}
		s.deleteLocked(st.ID)
		return auth.Rotation{Session: auth.Session{ID: st.ID, UserID: st.UserID}}, auth.ErrRefreshReuse
	}
	live := st.grace[:0]
	for _, g := range st.grace {
		if now.Before(g.end) {
			live = append(live, g)
		}
	}
	if len(live) >= auth.GraceRecords {
		live = live[len(live)-auth.GraceRecords+1:]
	}
	st.grace = append(live, graceRecord{rotated: h, successor: successor, end: now.Add(s.grace)})
	st.cur = sha256.Sum256([]byte(successor))
	st.LastUsedAt = now.UTC().Truncate(time.Millisecond)
	sess.LastUsedAt = st.LastUsedAt
	return auth.Rotation{Session: sess, Token: successor}, nil
}

// Lookup implements auth.SessionStore.
func (s *Sessions) Lookup(_ context.Context, refresh string) (auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byChainLocked(refresh)
	if !ok {
		return auth.Session{}, auth.ErrInvalidRefreshToken
	}
	h := sha256.Sum256([]byte(refresh))
	if _, grace := st.graceFor(h, s.now()); h != st.cur && !grace {
		return auth.Session{}, auth.ErrInvalidRefreshToken
	}
	sess := st.Session
	sess.Snapshot = nil
	return sess, nil
}

// Get implements auth.SessionStore.
func (s *Sessions) Get(_ context.Context, userID, sid string) (auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.sessions[sid]
	if !ok || st.UserID != userID {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	sess := st.Session
	sess.Snapshot = nil
	return sess, nil
}

// SetSnapshot implements auth.SessionStore.
func (s *Sessions) SetSnapshot(_ context.Context, userID, sid string, snap auth.UserSnapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.sessions[sid]
	if !ok || st.UserID != userID || (st.Snapshot != nil && !snap.CheckedAt.After(st.Snapshot.CheckedAt)) {
		return nil
	}
	st.Snapshot = copySnapshot(&snap)
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
func (s *Sessions) List(_ context.Context, userID string) ([]auth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []auth.Session
	for _, st := range s.sessions {
		if st.UserID == userID {
			sess := st.Session
			sess.Snapshot = nil
			out = append(out, sess)
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
		if st, ok := s.sessions[sid]; ok && st.UserID == userID {
			s.deleteLocked(sid)
			n++
		}
	}
	return n, nil
}

func (s *Sessions) deleteLocked(sid string) {
	if st, ok := s.sessions[sid]; ok {
		delete(s.chains, st.chain)
		delete(s.sessions, sid)
	}
}
