// Package storetest holds one contract suite per storage port of auth
// (UserStore, SessionStore, KeyStore, Outbox), modelled on dex's
// storage/conformance. memstore runs them, and so do mongostore and
// redisstore against real servers; the real runs are what count.
package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// RunUserStore checks the auth.UserStore contract.
func RunUserStore(t *testing.T, newStore func(t *testing.T) auth.UserStore) {
	user := func(id, email, username string) auth.User {
		return auth.User{ID: id, Email: email, Username: username, PasswordHash: "$argon2id$x",
			Roles: []string{"user"}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	t.Run("UnknownIsNotFound", func(t *testing.T) {
		s := newStore(t)
		for name, f := range map[string]func() (auth.User, error){
			"ByEmail":    func() (auth.User, error) { return s.ByEmail(t.Context(), "nobody@example.com") },
			"ByUsername": func() (auth.User, error) { return s.ByUsername(t.Context(), "nobody") },
			"ByID":       func() (auth.User, error) { return s.ByID(t.Context(), "nope") },
		} {
			if _, err := f(); !errors.Is(err, auth.ErrUserNotFound) {
				t.Errorf("%s: %v, want ErrUserNotFound", name, err)
			}
		}
	})
	t.Run("CreateAndFind", func(t *testing.T) {
		s := newStore(t)
		want := user("u1", "ann@example.com", "Ann.B")
		want.FirstName, want.LastName = "Ann", "B"
		if err := s.Create(t.Context(), want); err != nil {
			t.Fatal(err)
		}
		for name, f := range map[string]func() (auth.User, error){
			"ByEmail":    func() (auth.User, error) { return s.ByEmail(t.Context(), "ann@example.com") },
			"ByUsername": func() (auth.User, error) { return s.ByUsername(t.Context(), "ann.b") },
			"ByID":       func() (auth.User, error) { return s.ByID(t.Context(), "u1") },
		} {
			got, err := f()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.ID != want.ID || got.Email != want.Email || got.Username != want.Username ||
				got.FirstName != "Ann" || got.PasswordHash != want.PasswordHash || !got.CreatedAt.Equal(want.CreatedAt) ||
				len(got.Roles) != 1 {
				t.Fatalf("%s = %+v, want %+v", name, got, want)
			}
		}
		if err := s.SetPasswordHash(t.Context(), "u1", "$argon2id$new"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ByID(t.Context(), "u1"); got.PasswordHash != "$argon2id$new" {
			t.Fatalf("after SetPasswordHash: %q", got.PasswordHash)
		}
	})
	t.Run("EmailAndUsernameTaken", func(t *testing.T) {
		s := newStore(t)
		if err := s.Create(t.Context(), user("u1", "a@example.com", "alice")); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(t.Context(), user("u2", "a@example.com", "other")); !errors.Is(err, auth.ErrEmailTaken) {
			t.Fatalf("same email: %v, want ErrEmailTaken", err)
		}
		if err := s.Create(t.Context(), user("u3", "b@example.com", "ALICE")); !errors.Is(err, auth.ErrUsernameTaken) {
			t.Fatalf("same username: %v, want ErrUsernameTaken", err)
		}
		// The failed sign-up released its email.
		if err := s.Create(t.Context(), user("u4", "b@example.com", "bob")); err != nil {
			t.Fatalf("email of a sign-up that lost on username: %v", err)
		}
		// Users without a username don't clash with each other.
		if err := s.Create(t.Context(), user("u5", "c@example.com", "")); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(t.Context(), user("u6", "d@example.com", "")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("RacingSignUpsHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		var won, taken atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				err := s.Create(t.Context(), user(fmt.Sprint("u", i), "race@example.com", fmt.Sprint("racer", i)))
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, auth.ErrEmailTaken):
					taken.Add(1)
				default:
					t.Errorf("Create: %v", err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || taken.Load() != 15 {
			t.Fatalf("won %d, email taken %d; want 1 and 15", won.Load(), taken.Load())
		}
	})
}

// NewSessionStore returns a fresh, empty store with the given grace window.
type NewSessionStore func(t *testing.T, grace time.Duration) auth.SessionStore

// RunSessionStore checks the auth.SessionStore contract, refresh rotation
// with its grace retries and reuse detection included.
func RunSessionStore(t *testing.T, newStore NewSessionStore) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := func(uid, sid string) auth.Session {
		return auth.Session{ID: sid, UserID: uid, ClientID: "web", CreatedAt: created}
	}
	t.Run("CreateLookupRotate", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		rt, next := auth.NewRefreshToken(), auth.NewRefreshToken()
		if err := s.Create(ctx, sess("u1", "s1"), rt); err != nil {
			t.Fatal(err)
		}
		got, err := s.Lookup(ctx, rt)
		if err != nil || got.ID != "s1" || got.UserID != "u1" || got.ClientID != "web" || !got.CreatedAt.Equal(created) {
			t.Fatalf("Lookup = %+v, %v", got, err)
		}
		rot, err := s.Rotate(ctx, rt, next)
		if err != nil || rot.Token != next || rot.GraceRetry || rot.Session.ID != "s1" || rot.Session.UserID != "u1" {
			t.Fatalf("Rotate = %+v, %v", rot, err)
		}
		if got, err := s.Lookup(ctx, next); err != nil || got.ID != "s1" {
			t.Fatalf("Lookup(successor) = %+v, %v", got, err)
		}
		if _, err := s.Get(ctx, "u1", "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "u1", "nope"); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Fatalf("Get(unknown) = %v", err)
		}
		if _, err := s.Lookup(ctx, auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("Lookup(unknown) = %v", err)
		}
		if _, err := s.Rotate(ctx, auth.NewRefreshToken(), auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("Rotate(unknown) = %v", err)
		}
	})
	t.Run("GraceRetryReturnsSameSuccessor", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		rt, next := auth.NewRefreshToken(), auth.NewRefreshToken()
		if err := s.Create(ctx, sess("u1", "s1"), rt); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, rt, next); err != nil {
			t.Fatal(err)
		}
		rot, err := s.Rotate(ctx, rt, auth.NewRefreshToken())
		if err != nil || rot.Token != next || !rot.GraceRetry || rot.Session.ID != "s1" {
			t.Fatalf("grace retry = %+v, %v; want the same successor", rot, err)
		}
		// The successor is the live one: rotating it works.
		if rot, err := s.Rotate(ctx, next, auth.NewRefreshToken()); err != nil || rot.GraceRetry {
			t.Fatalf("Rotate(successor) = %+v, %v", rot, err)
		}
	})
	t.Run("ReuseAfterGraceRevokesSession", func(t *testing.T) {
		grace := 300 * time.Millisecond
		s := newStore(t, grace)
		ctx := t.Context()
		rt, next := auth.NewRefreshToken(), auth.NewRefreshToken()
		other := auth.NewRefreshToken()
		if err := s.Create(ctx, sess("u1", "s1"), rt); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, sess("u1", "s2"), other); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, rt, next); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * grace)
		rot, err := s.Rotate(ctx, rt, auth.NewRefreshToken())
		if !errors.Is(err, auth.ErrRefreshReuse) || rot.Session.ID != "s1" || rot.Session.UserID != "u1" {
			t.Fatalf("reuse after grace = %+v, %v; want ErrRefreshReuse naming s1", rot, err)
		}
		if _, err := s.Rotate(ctx, next, auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("successor after reuse = %v, want ErrInvalidRefreshToken", err)
		}
		if _, err := s.Get(ctx, "u1", "s1"); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Fatalf("session after reuse: %v, want gone", err)
		}
		if _, err := s.Lookup(ctx, other); err != nil {
			t.Fatalf("the user's other session: %v", err)
		}
	})
	t.Run("ConcurrentRotateOneSuccessor", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		rt := auth.NewRefreshToken()
		if err := s.Create(ctx, sess("u1", "s1"), rt); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				rot, err := s.Rotate(ctx, rt, auth.NewRefreshToken())
				if err != nil {
					t.Errorf("Rotate: %v", err)
					return
				}
				mu.Lock()
				got[rot.Token]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(got) != 1 {
			t.Fatalf("20 concurrent rotations gave %d successors, want 1", len(got))
		}
	})
	t.Run("UserSnapshot", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		checked := created.Add(time.Hour + 123*time.Millisecond)
		u := auth.User{ID: "u1", Email: "ann@example.com", Username: "Ann", FirstName: "Ann", LastName: "B",
			PasswordHash: "$argon2id$secret", EmailVerified: true, Roles: []string{"admin", "user"},
			CreatedAt: created.Add(456 * time.Millisecond)}
		with := sess("u1", "s1")
		with.Snapshot = &auth.UserSnapshot{User: u, CheckedAt: checked}
		rt, next := auth.NewRefreshToken(), auth.NewRefreshToken()
		if err := s.Create(ctx, with, rt); err != nil {
			t.Fatal(err)
		}
		want := u.Public()
		check := func(what string, got *auth.UserSnapshot, want auth.User, at time.Time) {
			t.Helper()
			switch {
			case got == nil:
				t.Fatalf("%s: no snapshot", what)
			case got.User.ID != want.ID || got.User.Email != want.Email || got.User.Username != want.Username ||
				got.User.FirstName != want.FirstName || got.User.LastName != want.LastName ||
				got.User.EmailVerified != want.EmailVerified || got.User.Disabled != want.Disabled ||
				fmt.Sprint(got.User.Roles) != fmt.Sprint(want.Roles) || !got.User.CreatedAt.Equal(want.CreatedAt):
				t.Fatalf("%s: snapshot user %+v, want %+v", what, got.User, want)
			case got.User.PasswordHash != "":
				t.Fatalf("%s: the snapshot kept the password hash", what)
			case !got.CheckedAt.Equal(at):
				t.Fatalf("%s: checked at %v, want %v", what, got.CheckedAt, at)
			}
		}
		rot, err := s.Rotate(ctx, rt, next)
		if err != nil {
			t.Fatal(err)
		}
		check("Rotate", rot.Session.Snapshot, want, checked)
		rot, err = s.Rotate(ctx, rt, auth.NewRefreshToken())
		if err != nil || !rot.GraceRetry {
			t.Fatalf("grace retry = %+v, %v", rot, err)
		}
		check("grace retry", rot.Session.Snapshot, want, checked)

		// A newer read replaces the snapshot; an older one does not.
		newer := want
		newer.Disabled, newer.Roles = true, nil
		if err := s.SetSnapshot(ctx, "u1", "s1", auth.UserSnapshot{User: newer, CheckedAt: checked.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSnapshot(ctx, "u1", "s1", auth.UserSnapshot{User: want, CheckedAt: checked.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		next2 := auth.NewRefreshToken()
		rot, err = s.Rotate(ctx, next, next2)
		if err != nil {
			t.Fatal(err)
		}
		check("Rotate after SetSnapshot", rot.Session.Snapshot, newer, checked.Add(time.Minute))

		// A session without a snapshot (stored before they existed) has none.
		old := auth.NewRefreshToken()
		if err := s.Create(ctx, sess("u1", "s2"), old); err != nil {
			t.Fatal(err)
		}
		if rot, err := s.Rotate(ctx, old, auth.NewRefreshToken()); err != nil || rot.Session.Snapshot != nil {
			t.Fatalf("Rotate of a session without a snapshot = %+v, %v", rot, err)
		}

		// A write-back to a deleted session does not bring it back.
		if _, err := s.Delete(ctx, "u1", "s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSnapshot(ctx, "u1", "s1", auth.UserSnapshot{User: want, CheckedAt: checked.Add(time.Hour)}); err != nil {
			t.Fatalf("SetSnapshot on a deleted session: %v", err)
		}
		if _, err := s.Get(ctx, "u1", "s1"); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Fatalf("Get after SetSnapshot on a deleted session: %v, want ErrSessionNotFound", err)
		}
		if sids, err := s.List(ctx, "u1"); err != nil || len(sids) != 1 || sids[0] != "s2" {
			t.Fatalf("List = %v, %v; want [s2]", sids, err)
		}
		if _, err := s.Rotate(ctx, next2, auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("Rotate in a deleted session after SetSnapshot: %v", err)
		}
	})
	t.Run("ListAndDelete", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		tokens := map[string]string{}
		for _, sid := range []string{"s1", "s2", "s3"} {
			tokens[sid] = auth.NewRefreshToken()
			if err := s.Create(ctx, sess("u1", sid), tokens[sid]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Create(ctx, sess("u2", "x1"), auth.NewRefreshToken()); err != nil {
			t.Fatal(err)
		}
		sids, err := s.List(ctx, "u1")
		if err != nil || len(sids) != 3 {
			t.Fatalf("List = %v, %v; want 3 sessions", sids, err)
		}
		n, err := s.Delete(ctx, "u1", "s1", "s2", "nope")
		if err != nil || n != 2 {
			t.Fatalf("Delete = %d, %v; want 2", n, err)
		}
		if sids, _ := s.List(ctx, "u1"); len(sids) != 1 || sids[0] != "s3" {
			t.Fatalf("List after Delete = %v, want [s3]", sids)
		}
		if _, err := s.Lookup(ctx, tokens["s1"]); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("token of a deleted session: %v", err)
		}
		if _, err := s.Rotate(ctx, tokens["s2"], auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("rotate token of a deleted session: %v", err)
		}
		if sids, _ := s.List(ctx, "u2"); len(sids) != 1 {
			t.Fatalf("other user's sessions: %v", sids)
		}
	})
}
