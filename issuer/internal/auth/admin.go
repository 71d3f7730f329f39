package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jotguard/jotguard/sdk/revocation"
)

// User administration. Every action that must stop tokens already out
// emits a revocation event, so that every verifier rejects them within
// seconds:
//   - disabling a user: one user-wide event (reason admin); the sessions
//     are kept but their user copy says disabled, so a refresh answers
//     ErrDisabled (403) and a login too; re-enabling ends them for good;
//   - a role change: one user-wide event (reason admin); the sessions live
//     on, their user copy gets the new roles, so the next refresh mints a
//     token with them;
//   - a forced logout: one event per session (reason admin), then the
//     sessions are deleted;
//   - a deletion: one user-wide event (reason account_deleted), then the
//     user and its sessions are deleted.
//
// A user-wide event rejects the user's tokens issued in or before its
// second (iat has whole seconds): an action that emits one answers only
// once that second is over, so a token minted after the answer (the next
// refresh) is accepted.

// Errors of the administration and of service accounts; httpapi maps them
// like the others.
var (
	ErrClientNotFound = errors.New("auth: service account not found")
	// ErrInvalidClient: a service account's credentials (client id and
	// secret) are wrong.
	ErrInvalidClient = errors.New("auth: invalid client credentials")
	// ErrForbidden: the caller is authenticated but lacks the role (admin)
	// or the kind of identity (a service account) the request needs.
	ErrForbidden = errors.New("auth: insufficient scope")
)

// RoleAdmin is the role the administration API requires.
const RoleAdmin = "admin"

// Admin is an authenticated administrator: a user or a service account
// whose token and current record both hold RoleAdmin (Service.Admin), or
// the command line (CommandLine).
type Admin struct{ id string }

// ID is the administrator's actor in the audit log: a user id, a client
// id, or ActorCommandLine.
func (a Admin) ID() string { return a.id }

// CommandLine is the administrator of `issuer users` and `issuer clients`:
// whoever may run the binary with the database's credentials.
func CommandLine() Admin { return Admin{id: ActorCommandLine} }

// Admin authenticates the administrator of an access token: valid and not
// revoked, with RoleAdmin in the token and in the account as stored now (a
// demoted or disabled administrator's token is refused here at once, even
// before its revocation event arrives), and for a user a live session.
// ErrInvalidAccessToken (401) or ErrForbidden (403) otherwise.
func (s *Service) Admin(ctx context.Context, token string) (Admin, error) {
	c, err := s.verifyAccess(ctx, token)
	if err != nil {
		return Admin{}, err
	}
	var roles []string
	if c.ServiceAccount() {
		cl, err := s.d.Clients.ByID(ctx, c.Subject)
		switch {
		case errors.Is(err, ErrClientNotFound):
			return Admin{}, fmt.Errorf("%w: its service account was deleted", ErrInvalidAccessToken)
		case err != nil:
			return Admin{}, err
		}
		roles = cl.Roles
	} else {
		switch _, err := s.d.Sessions.Get(ctx, c.Subject, c.SessionID); {
		case errors.Is(err, ErrSessionNotFound):
			return Admin{}, fmt.Errorf("%w: its session has ended", ErrInvalidAccessToken)
		case err != nil:
			return Admin{}, err
		}
		u, err := s.d.Users.ByID(ctx, c.Subject)
		switch {
		case errors.Is(err, ErrUserNotFound):
			return Admin{}, ErrInvalidAccessToken
		case err != nil:
			return Admin{}, err
		case u.Disabled:
			return Admin{}, fmt.Errorf("%w: the account is disabled", ErrInvalidAccessToken)
		}
		roles = u.Roles
	}
	if !slices.Contains(c.Roles, RoleAdmin) || !slices.Contains(roles, RoleAdmin) {
		return Admin{}, fmt.Errorf("%w: the %s role is required", ErrForbidden, RoleAdmin)
	}
	return Admin{id: c.Subject}, nil
}

// Roles are names of 1 to 64 letters, digits, '.', '_', ':' or '-' (no
// comma: verifiers join them with commas in X-Auth-Request-Roles); an
// account has at most maxRoles.
const maxRoles = 32

// checkRoles validates roles and returns them without duplicates, in the
// order given.
func checkRoles(v *ValidationError, field string, roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !validRole(r) {
			v.Fields = append(v.Fields, FieldError{field, "each role must be 1 to 64 letters, digits, '.', '_', ':' or '-'"})
			return nil
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) > maxRoles {
		v.Fields = append(v.Fields, FieldError{field, "at most " + strconv.Itoa(maxRoles) + " roles"})
	}
	return out
}

func validRole(r string) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ParseRoles reads a comma list of roles ("admin,ops"), as the command
// line takes them; "" is no role.
func ParseRoles(list string) ([]string, error) {
	var roles []string
	for r := range strings.SplitSeq(list, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	v := &ValidationError{}
	roles = checkRoles(v, "roles", roles)
	return roles, v.err()
}

// sameRoles compares two role lists as sets.
func sameRoles(a, b []string) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// ListUsers returns a page of users in id order, those whose email or
// username contains q.Query (or whose id it is) when set, and the cursor
// of the next page ("" when this is the last).
func (s *Service) ListUsers(ctx context.Context, _ Admin, q UserQuery) ([]User, string, error) {
	v := &ValidationError{}
	q.Limit = pageLimit(v, q.Limit)
	wellFormedCursor(v, q.After)
	q.Query = strings.ToLower(strings.TrimSpace(q.Query))
	if len(q.Query) > 320 || hasInvisible(q.Query) {
		v.Fields = append(v.Fields, FieldError{"query", "must be at most 320 visible characters"})
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	want := q.Limit
	q.Limit++ // one more tells whether there is a next page
	users, err := s.d.Users.List(ctx, q)
	if err != nil {
		return nil, "", err
	}
	for i := range users {
		users[i] = users[i].Public()
	}
	users, next := page(users, want)
	if next != nil {
		return users, next.ID, nil
	}
	return users, "", nil
}

// User by id for an administrator: ErrUserNotFound (404) when there is
// none.
func (s *Service) AdminUser(ctx context.Context, _ Admin, id string) (User, error) {
	if id == "" || len(id) > 64 {
		return User{}, ErrUserNotFound
	}
	u, err := s.d.Users.ByID(ctx, id)
	return u.Public(), err
}

// UpdateUser applies an administrator's change to user id and returns the
// user (see the top of this file for what each change does to the tokens
// and sessions out). Setting disabled to true again re-emits its event:
// repeating a request whose answer was lost (a 503) completes it.
func (s *Service) UpdateUser(ctx context.Context, a Admin, id string, up UserUpdate) (User, error) {
	v := &ValidationError{}
	if up.Roles != nil {
		roles := checkRoles(v, "roles", *up.Roles)
		up.Roles = &roles
	}
	if up.Roles == nil && up.Disabled == nil && up.EmailVerified == nil {
		v.Fields = append(v.Fields, FieldError{"roles", "one of roles, disabled and email_verified is required"})
	}
	if err := v.err(); err != nil {
		return User{}, err
	}
	cur, err := s.AdminUser(ctx, a, id)
	if err != nil {
		return User{}, err
	}
	var changed []string
	rolesChanged := up.Roles != nil && !sameRoles(*up.Roles, cur.Roles)
	if rolesChanged {
		changed = append(changed, "roles="+strings.Join(*up.Roles, ","))
	}
	disabling := up.Disabled != nil && *up.Disabled
	enabling := up.Disabled != nil && !*up.Disabled && cur.Disabled
	if disabling || enabling {
		changed = append(changed, "disabled="+strconv.FormatBool(disabling))
	}
	if up.EmailVerified != nil && *up.EmailVerified != cur.EmailVerified {
		changed = append(changed, "email_verified="+strconv.FormatBool(*up.EmailVerified))
	}
	if len(changed) == 0 {
		return cur, nil
	}
	u, err := s.d.Users.Update(ctx, id, up)
	if err != nil {
		return User{}, err
	}
	u = u.Public()
	if enabling {
		// The sessions a disable ended stay ended.
		if _, err := s.deleteSessions(ctx, u.ID); err != nil {
			return User{}, err
		}
	} else if err := s.pushSnapshots(ctx, u, rolesChanged || disabling); err != nil {
		return User{}, err
	}
	if rolesChanged || disabling {
		if err := s.revokeAll(ctx, u.ID, revocation.ReasonAdmin, true); err != nil {
			return User{}, err
		}
	}
	s.log.InfoContext(ctx, "user updated by an administrator", "user_id", u.ID, "admin", a.ID(), "changes", changed)
	s.audit(ctx, AuditAdminUserUpdated, a.ID(), u.ID, strings.Join(changed, " "))
	return u, nil
}

// pushSnapshots writes u into the user copy of each of its sessions, so
// that their next refresh mints tokens that show the change (or refuses:
// disabled). When strict (the change takes rights away), a session whose
// copy could not be written is ended instead, with an event: it must not
// mint tokens from the old copy until the recheck.
func (s *Service) pushSnapshots(ctx context.Context, u User, strict bool) error {
	snap := UserSnapshot{User: u.Public(), CheckedAt: s.cfg.Now().UTC().Add(time.Millisecond)}
	all, err := s.d.Sessions.List(ctx, u.ID)
	if err != nil {
		if !strict {
			s.log.WarnContext(ctx, "user snapshots not refreshed: sessions see the change within the recheck interval",
				"user_id", u.ID, "err", err)
			return nil
		}
		return err
	}
	var stale []string
	for _, sess := range all {
		if err := s.d.Sessions.SetSnapshot(ctx, u.ID, sess.ID, snap); err != nil {
			stale = append(stale, sess.ID)
		}
	}
	if len(stale) == 0 || !strict {
		return nil
	}
	s.log.WarnContext(ctx, "user snapshots not written: ending those sessions", "user_id", u.ID, "sessions", len(stale))
	if err := s.publish(ctx, revocation.ReasonAdmin, "admin", u.ID, stale...); err != nil {
		return err
	}
	_, err = s.d.Sessions.Delete(ctx, u.ID, stale...)
	return err
}

// revokeAll emits one event that revokes every token of sub (a user or a
// service account) issued in or before this second. With wait it returns
// only once that second is over, so that a token minted after it returns
// is accepted.
func (s *Service) revokeAll(ctx context.Context, sub, reason string, wait bool) error {
	now := s.cfg.Now().UTC()
	if err := s.d.Events.Publish(ctx, revocation.Event{ID: NewID(), Issuer: s.cfg.Issuer, Subject: sub,
		At: now, IssuedAt: now, Reason: reason, Initiator: "admin", TxnID: s.cfg.RequestID(ctx)}); err != nil {
		return fmt.Errorf("auth: revocation event: %w", err)
	}
	if !wait {
		return nil
	}
	next := now.Truncate(time.Second).Add(time.Second)
	if d := next.Sub(s.cfg.Now()); d > 0 && d <= time.Second {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// deleteSessions deletes every session of the user, without events, and
// answers how many it deleted.
func (s *Service) deleteSessions(ctx context.Context, userID string) (int, error) {
	all, err := s.d.Sessions.List(ctx, userID)
	if err != nil || len(all) == 0 {
		return 0, err
	}
	sids := make([]string, len(all))
	for i, o := range all {
		sids[i] = o.ID
	}
	return s.d.Sessions.Delete(ctx, userID, sids...)
}

// DeleteUser removes user id for an administrator, as the user's own
// deletion does: a user-wide account_deleted event, then the user and its
// sessions, and a notice mail.
func (s *Service) DeleteUser(ctx context.Context, a Admin, id string) error {
	u, err := s.AdminUser(ctx, a, id)
	if err != nil {
		return err
	}
	n, err := s.removeUser(ctx, u, "admin")
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "user deleted by an administrator", "user_id", u.ID, "admin", a.ID(), "sessions_ended", n)
	s.audit(ctx, AuditAdminUserDeleted, a.ID(), u.ID, "sessions="+strconv.Itoa(n))
	return nil
}

// LogoutUser ends every session of user id for an administrator: one
// event each (reason admin), then the sessions are deleted. A login after
// it is not affected.
func (s *Service) LogoutUser(ctx context.Context, a Admin, id string) error {
	u, err := s.AdminUser(ctx, a, id)
	if err != nil {
		return err
	}
	n, err := s.endSessions(ctx, u.ID, "", revocation.ReasonAdmin, "admin")
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "user logged out by an administrator", "user_id", u.ID, "admin", a.ID(), "sessions_ended", n)
	s.audit(ctx, AuditAdminLogout, a.ID(), u.ID, "sessions="+strconv.Itoa(n))
	return nil
}

// CreateUser creates a user with roles for an administrator (`issuer users
// create`): its address counts as verified (the administrator vouches for
// it) and no mail is sent.
func (s *Service) CreateUser(ctx context.Context, a Admin, in RegisterInput, roles []string) (User, error) {
	v := &ValidationError{}
	roles = checkRoles(v, "roles", roles)
	u, err := s.newUser(in, v)
	if err != nil {
		return User{}, err
	}
	u.Roles, u.EmailVerified = roles, true
	if err := s.createUser(ctx, &u, in.Password); err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "user created by an administrator", "user_id", u.ID, "admin", a.ID())
	s.audit(ctx, AuditUserRegistered, a.ID(), u.ID, "roles="+strings.Join(roles, ","))
	return u.Public(), nil
}

// SetRoles replaces the roles of the user of email (`issuer users roles`).
func (s *Service) SetRoles(ctx context.Context, a Admin, email string, roles []string) (User, error) {
	u, err := s.d.Users.ByEmail(ctx, email)
	if err != nil {
		return User{}, err
	}
	return s.UpdateUser(ctx, a, u.ID, UserUpdate{Roles: &roles})
}
