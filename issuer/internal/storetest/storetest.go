// Package storetest holds one contract suite per storage port of auth
// (UserStore, SessionStore, KeyStore, Outbox, LinkTokens, ClientStore,
// AuditLog), modelled on dex's
// storage/conformance. memstore runs them, and so do mongostore and
// redisstore against real servers; the real runs are what count.
package storetest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
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
		OneWinner(t, 16, auth.ErrEmailTaken, func(i int) error {
			return s.Create(t.Context(), user(fmt.Sprint("u", i), "race@example.com", fmt.Sprint("racer", i)))
		})
	})
	runUserChanges(t, newStore, user)
	runUserIdentities(t, newStore, user)
}

// runUserChanges checks the changes of a user after its creation.
func runUserChanges(t *testing.T, newStore func(t *testing.T) auth.UserStore, user func(id, email, username string) auth.User) {
	t.Run("UpdateProfile", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for _, u := range []auth.User{user("u1", "a@example.com", "alice"), user("u2", "b@example.com", "bob")} {
			if err := s.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.UpdateProfile(ctx, "u1", auth.Profile{Username: "Alice.B", FirstName: "Alice", LastName: "B"})
		if err != nil || got.ID != "u1" || got.Username != "Alice.B" || got.FirstName != "Alice" || got.LastName != "B" ||
			got.Email != "a@example.com" || got.PasswordHash == "" {
			t.Fatalf("UpdateProfile = %+v, %v", got, err)
		}
		if u, err := s.ByUsername(ctx, "alice.b"); err != nil || u.ID != "u1" || u.FirstName != "Alice" {
			t.Fatalf("ByUsername(new) = %+v, %v", u, err)
		}
		if _, err := s.ByUsername(ctx, "alice"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("ByUsername(old) = %v, want ErrUserNotFound: the old username is released", err)
		}
		if err := s.Create(ctx, user("u3", "c@example.com", "ALICE")); err != nil {
			t.Fatalf("Create with the released username: %v", err)
		}
		if _, err := s.UpdateProfile(ctx, "u2", auth.Profile{Username: "alice.B"}); !errors.Is(err, auth.ErrUsernameTaken) {
			t.Fatalf("UpdateProfile to another user's username: %v, want ErrUsernameTaken", err)
		}
		if u, _ := s.ByID(ctx, "u2"); u.Username != "bob" {
			t.Fatalf("a refused change changed the user: %+v", u)
		}
		// Same key, another spelling; then no username at all.
		if got, err := s.UpdateProfile(ctx, "u2", auth.Profile{Username: "BOB"}); err != nil || got.Username != "BOB" {
			t.Fatalf("UpdateProfile to another spelling = %+v, %v", got, err)
		}
		if got, err := s.UpdateProfile(ctx, "u2", auth.Profile{}); err != nil || got.Username != "" {
			t.Fatalf("UpdateProfile without a username = %+v, %v", got, err)
		}
		if _, err := s.ByUsername(ctx, "bob"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("ByUsername after removing it: %v", err)
		}
		if _, err := s.UpdateProfile(ctx, "nope", auth.Profile{Username: "zed"}); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("UpdateProfile(unknown) = %v", err)
		}
	})
	// Eight users race for one username, then for one address.
	racers := func(t *testing.T) auth.UserStore {
		s := newStore(t)
		for i := range 8 {
			if err := s.Create(t.Context(), user(fmt.Sprint("u", i), fmt.Sprint("u", i, "@example.com"), "")); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	t.Run("RacingUsernameChangesHaveOneWinner", func(t *testing.T) {
		s := racers(t)
		OneWinner(t, 8, auth.ErrUsernameTaken, func(i int) error {
			_, err := s.UpdateProfile(t.Context(), fmt.Sprint("u", i), auth.Profile{Username: "wanted"})
			return err
		})
	})
	t.Run("SetEmail", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for _, u := range []auth.User{user("u1", "a@example.com", "alice"), user("u2", "b@example.com", "")} {
			if err := s.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetEmail(ctx, "u1", "a@example.com", "b@example.com"); !errors.Is(err, auth.ErrEmailTaken) {
			t.Fatalf("SetEmail to another user's address: %v, want ErrEmailTaken", err)
		}
		if err := s.SetEmail(ctx, "u1", "old@example.com", "new@example.com"); !errors.Is(err, auth.ErrConflict) {
			t.Fatalf("SetEmail from an address the user does not have: %v, want ErrConflict", err)
		}
		if err := s.SetEmail(ctx, "u1", "a@example.com", "new@example.com"); err != nil {
			t.Fatal(err)
		}
		if u, err := s.ByEmail(ctx, "NEW@example.com"); err != nil || u.ID != "u1" || u.Email != "new@example.com" || !u.EmailVerified {
			t.Fatalf("ByEmail(new) = %+v, %v; want u1, verified", u, err)
		}
		if _, err := s.ByEmail(ctx, "a@example.com"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("ByEmail(old) = %v, want ErrUserNotFound", err)
		}
		if err := s.Create(ctx, user("u3", "a@example.com", "")); err != nil {
			t.Fatalf("Create with the released address: %v", err)
		}
		// Another spelling of the same key ("ß" folds to "ss"): the user's own.
		if err := s.Create(ctx, user("u4", "strasse@example.com", "")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEmail(ctx, "u4", "strasse@example.com", "stra\u00dfe@example.com"); err != nil {
			t.Fatalf("SetEmail to another spelling of the user's own key: %v", err)
		}
		if u, err := s.ByEmail(ctx, "strasse@example.com"); err != nil || u.ID != "u4" || u.Email != "stra\u00dfe@example.com" {
			t.Fatalf("ByEmail after a change of spelling = %+v, %v", u, err)
		}
		if err := s.SetEmail(ctx, "nope", "x@example.com", "y@example.com"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("SetEmail(unknown) = %v", err)
		}
	})
	t.Run("RacingEmailChangesHaveOneWinner", func(t *testing.T) {
		s := racers(t)
		OneWinner(t, 8, auth.ErrEmailTaken, func(i int) error {
			return s.SetEmail(t.Context(), fmt.Sprint("u", i), fmt.Sprint("u", i, "@example.com"), "wanted@example.com")
		})
	})
	t.Run("SetEmailVerified", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.Create(ctx, user("u1", "a@example.com", "")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEmailVerified(ctx, "u1", "b@example.com"); !errors.Is(err, auth.ErrConflict) {
			t.Fatalf("SetEmailVerified of another address: %v, want ErrConflict", err)
		}
		if u, _ := s.ByID(ctx, "u1"); u.EmailVerified {
			t.Fatal("verified by a refused call")
		}
		if err := s.SetEmailVerified(ctx, "u1", "a@example.com"); err != nil {
			t.Fatal(err)
		}
		if u, _ := s.ByEmail(ctx, "a@example.com"); !u.EmailVerified {
			t.Fatalf("after SetEmailVerified: %+v", u)
		}
		if err := s.SetEmailVerified(ctx, "nope", "a@example.com"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("SetEmailVerified(unknown) = %v", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.Create(ctx, user("u1", "a@example.com", "alice")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		for name, f := range map[string]func() (auth.User, error){
			"ByEmail":    func() (auth.User, error) { return s.ByEmail(ctx, "a@example.com") },
			"ByUsername": func() (auth.User, error) { return s.ByUsername(ctx, "alice") },
			"ByID":       func() (auth.User, error) { return s.ByID(ctx, "u1") },
		} {
			if _, err := f(); !errors.Is(err, auth.ErrUserNotFound) {
				t.Errorf("%s after Delete: %v, want ErrUserNotFound", name, err)
			}
		}
		if err := s.Delete(ctx, "u1"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("second Delete: %v, want ErrUserNotFound", err)
		}
		// The address and the username may be registered again at once.
		if err := s.Create(ctx, user("u2", "A@example.com", "Alice")); err != nil {
			t.Fatalf("Create with a deleted user's address and username: %v", err)
		}
	})
	runUserAdmin(t, newStore, user)
}

// OneWinner runs f(0) … f(n-1) at once and checks that exactly one
// succeeds and every other fails with lose.
func OneWinner(t *testing.T, n int, lose error, f func(i int) error) {
	t.Helper()
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			switch err := f(i); {
			case err == nil:
				won.Add(1)
			case errors.Is(err, lose):
				lost.Add(1)
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 || lost.Load() != int32(n-1) {
		t.Fatalf("%d racers: %d won, %d lost with %v; want 1 and %d", n, won.Load(), lost.Load(), lose, n-1)
	}
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
		rt := auth.NewRefreshToken()
		next := auth.NextRefreshToken(rt)
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
		unknown := auth.NewRefreshToken()
		if _, err := s.Rotate(ctx, unknown, auth.NextRefreshToken(unknown)); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("Rotate(unknown) = %v", err)
		}
	})
	t.Run("GraceRetryReturnsSameSuccessor", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		rt := auth.NewRefreshToken()
		next := auth.NextRefreshToken(rt)
		if err := s.Create(ctx, sess("u1", "s1"), rt); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, rt, next); err != nil {
			t.Fatal(err)
		}
		rot, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt))
		if err != nil || rot.Token != next || !rot.GraceRetry || rot.Session.ID != "s1" {
			t.Fatalf("grace retry = %+v, %v; want the same successor", rot, err)
		}
		// The successor is the live one: rotating it works.
		if rot, err := s.Rotate(ctx, next, auth.NextRefreshToken(next)); err != nil || rot.GraceRetry {
			t.Fatalf("Rotate(successor) = %+v, %v", rot, err)
		}
	})
	t.Run("ReuseAfterGraceRevokesSession", func(t *testing.T) {
		grace := 300 * time.Millisecond
		s := newStore(t, grace)
		ctx := t.Context()
		rt := auth.NewRefreshToken()
		next := auth.NextRefreshToken(rt)
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
		rot, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt))
		if !errors.Is(err, auth.ErrRefreshReuse) || rot.Session.ID != "s1" || rot.Session.UserID != "u1" {
			t.Fatalf("reuse after grace = %+v, %v; want ErrRefreshReuse naming s1", rot, err)
		}
		if _, err := s.Rotate(ctx, next, auth.NextRefreshToken(next)); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("successor after reuse = %v, want ErrInvalidRefreshToken", err)
		}
		if _, err := s.Get(ctx, "u1", "s1"); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Fatalf("session after reuse: %v, want gone", err)
		}
		if _, err := s.Lookup(ctx, other); err != nil {
			t.Fatalf("the user's other session: %v", err)
		}
	})
	// However many rotations later, any earlier token of a live session is
	// a reuse: a thief who keeps rotating a stolen token cannot make the
	// victim's copy merely invalid. An unknown token revokes nothing.
	t.Run("ReuseOfAnyEarlierTokenRevokesSession", func(t *testing.T) {
		grace := 200 * time.Millisecond
		s := newStore(t, grace)
		ctx := t.Context()
		for _, reused := range []int{0, 7} {
			sid := fmt.Sprint("s", reused)
			tokens := []string{auth.NewRefreshToken()}
			if err := s.Create(ctx, sess("u1", sid), tokens[0]); err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				rot, err := s.Rotate(ctx, tokens[i], auth.NextRefreshToken(tokens[i]))
				if err != nil || rot.GraceRetry {
					t.Fatalf("rotation %d = %+v, %v", i, rot, err)
				}
				tokens = append(tokens, rot.Token)
			}
			time.Sleep(2 * grace)
			// Tokens that carry no live session's chain revoke nothing: a new
			// one, one of the form used before chains existed, garbage.
			for _, unknown := range []string{auth.NewRefreshToken(), legacyToken(), "garbage"} {
				if _, err := s.Rotate(ctx, unknown, auth.NextRefreshToken(unknown)); !errors.Is(err, auth.ErrInvalidRefreshToken) || errors.Is(err, auth.ErrRefreshReuse) {
					t.Fatalf("unknown token %q: %v, want a plain ErrInvalidRefreshToken", unknown, err)
				}
			}
			if _, err := s.Get(ctx, "u1", sid); err != nil {
				t.Fatalf("session after unknown tokens: %v", err)
			}
			if _, err := s.Lookup(ctx, tokens[reused]); !errors.Is(err, auth.ErrInvalidRefreshToken) {
				t.Fatalf("Lookup of token %d after 40 rotations: %v, want ErrInvalidRefreshToken", reused, err)
			}
			rot, err := s.Rotate(ctx, tokens[reused], auth.NextRefreshToken(tokens[reused]))
			if !errors.Is(err, auth.ErrRefreshReuse) || rot.Session.ID != sid || rot.Session.UserID != "u1" {
				t.Fatalf("token %d reused after 40 rotations = %+v, %v; want ErrRefreshReuse naming %s", reused, rot, err, sid)
			}
			if _, err := s.Rotate(ctx, tokens[40], auth.NextRefreshToken(tokens[40])); !errors.Is(err, auth.ErrInvalidRefreshToken) {
				t.Fatalf("the thief's current token after reuse: %v, want ErrInvalidRefreshToken", err)
			}
			if _, err := s.Get(ctx, "u1", sid); !errors.Is(err, auth.ErrSessionNotFound) {
				t.Fatalf("session after reuse: %v, want gone", err)
			}
		}
	})
	// Within one grace window, each of the latest GraceRecords rotated
	// tokens gets its own successor again, however fast they rotated.
	t.Run("GraceRetriesOfARotationBurst", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		tokens := []string{auth.NewRefreshToken()}
		if err := s.Create(ctx, sess("u1", "s1"), tokens[0]); err != nil {
			t.Fatal(err)
		}
		n := auth.GraceRecords + 2
		for i := range n {
			rot, err := s.Rotate(ctx, tokens[i], auth.NextRefreshToken(tokens[i]))
			if err != nil || rot.GraceRetry {
				t.Fatalf("rotation %d = %+v, %v", i, rot, err)
			}
			tokens = append(tokens, rot.Token)
		}
		for i := n - auth.GraceRecords; i < n; i++ {
			rot, err := s.Rotate(ctx, tokens[i], auth.NextRefreshToken(tokens[i]))
			if err != nil || !rot.GraceRetry || rot.Token != tokens[i+1] {
				t.Fatalf("grace retry of rotated token %d = %+v, %v; want its successor", i, rot, err)
			}
			if got, err := s.Lookup(ctx, tokens[i]); err != nil || got.ID != "s1" {
				t.Fatalf("Lookup of token %d within its grace window = %+v, %v", i, got, err)
			}
		}
		rot, err := s.Rotate(ctx, tokens[n], auth.NextRefreshToken(tokens[n]))
		if err != nil || rot.GraceRetry {
			t.Fatalf("Rotate(current) after grace retries = %+v, %v", rot, err)
		}
		// A successor of another chain is the caller's mistake: an error,
		// and the session lives on.
		cur := rot.Token
		if _, err := s.Rotate(ctx, cur, auth.NewRefreshToken()); err == nil || errors.Is(err, auth.ErrRefreshReuse) {
			t.Fatalf("Rotate with a successor of another chain: %v, want an error", err)
		}
		if rot, err := s.Rotate(ctx, cur, auth.NextRefreshToken(cur)); err != nil || rot.GraceRetry {
			t.Fatalf("Rotate(current) after a refused successor = %+v, %v", rot, err)
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
				rot, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt))
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
		rt := auth.NewRefreshToken()
		next := auth.NextRefreshToken(rt)
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
		rot, err = s.Rotate(ctx, rt, auth.NextRefreshToken(rt))
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
		next2 := auth.NextRefreshToken(next)
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
		if rot, err := s.Rotate(ctx, old, auth.NextRefreshToken(old)); err != nil || rot.Session.Snapshot != nil {
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
		if all, err := s.List(ctx, "u1"); err != nil || len(all) != 1 || all[0].ID != "s2" {
			t.Fatalf("List = %v, %v; want [s2]", all, err)
		}
		if _, err := s.Rotate(ctx, next2, auth.NextRefreshToken(next2)); !errors.Is(err, auth.ErrInvalidRefreshToken) {
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
		all, err := s.List(ctx, "u1")
		if err != nil || len(all) != 3 {
			t.Fatalf("List = %v, %v; want 3 sessions", all, err)
		}
		n, err := s.Delete(ctx, "u1", "s1", "s2", "nope")
		if err != nil || n != 2 {
			t.Fatalf("Delete = %d, %v; want 2", n, err)
		}
		if all, _ := s.List(ctx, "u1"); len(all) != 1 || all[0].ID != "s3" {
			t.Fatalf("List after Delete = %v, want [s3]", all)
		}
		if _, err := s.Lookup(ctx, tokens["s1"]); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("token of a deleted session: %v", err)
		}
		if _, err := s.Rotate(ctx, tokens["s2"], auth.NextRefreshToken(tokens["s2"])); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("rotate token of a deleted session: %v", err)
		}
		if all, _ := s.List(ctx, "u2"); len(all) != 1 {
			t.Fatalf("other user's sessions: %v", all)
		}
	})
	// A session keeps its login's user agent (cut to auth.MaxUserAgent
	// bytes) and address; its last use is its creation until a rotation
	// moves it to the store's clock. List and Get show them, never the
	// snapshot.
	t.Run("Metadata", func(t *testing.T) {
		s := newStore(t, time.Minute)
		ctx := t.Context()
		longUA := "Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("é", 300)
		with := sess("u1", "s1")
		with.UserAgent, with.IP = longUA, "2001:db8::7"
		with.LastUsedAt = created.Add(-time.Hour) // ignored: a new session was last used at its creation
		with.Snapshot = &auth.UserSnapshot{User: auth.User{ID: "u1", Email: "a@example.com"}, CheckedAt: created}
		rt := auth.NewRefreshToken()
		if err := s.Create(ctx, with, rt); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, sess("u1", "s2"), auth.NewRefreshToken()); err != nil {
			t.Fatal(err)
		}
		wantUA := auth.CleanUserAgent(longUA)
		if len(wantUA) > auth.MaxUserAgent || len(wantUA) < auth.MaxUserAgent-1 || !strings.HasPrefix(wantUA, "Mozilla/5.0") {
			t.Fatalf("CleanUserAgent cut %d bytes to %d", len(longUA), len(wantUA))
		}
		check := func(what string, got auth.Session, used time.Time) {
			t.Helper()
			if got.ID != "s1" || got.UserID != "u1" || got.ClientID != "web" || !got.CreatedAt.Equal(created) ||
				!got.LastUsedAt.Equal(used) || got.UserAgent != wantUA || got.IP != "2001:db8::7" || got.Snapshot != nil {
				t.Fatalf("%s = %+v; want created and last used %v, %v, the user agent cut to %d bytes, the address, no snapshot",
					what, got, created, used, len(wantUA))
			}
		}
		byID := func() map[string]auth.Session {
			t.Helper()
			all, err := s.List(ctx, "u1")
			if err != nil || len(all) != 2 {
				t.Fatalf("List = %+v, %v; want 2 sessions", all, err)
			}
			m := map[string]auth.Session{}
			for _, x := range all {
				m[x.ID] = x
			}
			return m
		}
		check("List", byID()["s1"], created)
		if other := byID()["s2"]; other.UserAgent != "" || other.IP != "" || !other.LastUsedAt.Equal(created) {
			t.Fatalf("a session without metadata = %+v", other)
		}
		got, err := s.Get(ctx, "u1", "s1")
		if err != nil {
			t.Fatal(err)
		}
		check("Get", got, created)
		before := time.Now().Add(-time.Second)
		rot, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt))
		if err != nil {
			t.Fatal(err)
		}
		used := byID()["s1"].LastUsedAt
		if used.Before(before) || used.After(time.Now().Add(time.Second)) || !rot.Session.LastUsedAt.Equal(used) {
			t.Fatalf("last used %v after a rotation at about %v (Rotate said %v)", used, before.Add(time.Second), rot.Session.LastUsedAt)
		}
		check("List after a rotation", byID()["s1"], used)
		if _, err := s.Get(ctx, "u2", "s1"); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Fatalf("Get of another user's session: %v, want ErrSessionNotFound", err)
		}
	})
}

// legacyToken is a refresh token of the form issued before chains existed:
// 256 random bits, base64url, no chain id.
func legacyToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
