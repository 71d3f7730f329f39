package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// runUserIdentities checks the links of users to their accounts at
// external OpenID providers.
func runUserIdentities(t *testing.T, newStore func(t *testing.T) auth.UserStore, user func(id, email, username string) auth.User) {
	linkedAt := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	// ident is a link; its provider had verified the address unless the
	// subject starts with "u-", so that both are kept.
	ident := func(provider, subject string) auth.Identity {
		return auth.Identity{Provider: provider, Subject: subject, Email: subject + "@idp.example",
			EmailVerified: !strings.HasPrefix(subject, "u-"), LinkedAt: linkedAt}
	}
	// passwordless is a user who signs in only through its identities.
	passwordless := func(id, email string, idents ...auth.Identity) auth.User {
		u := user(id, email, "")
		u.PasswordHash, u.Identities = "", idents
		return u
	}
	create := func(t *testing.T, s auth.UserStore, users ...auth.User) {
		t.Helper()
		for _, u := range users {
			if err := s.Create(t.Context(), u); err != nil {
				t.Fatalf("Create %s: %v", u.ID, err)
			}
		}
	}
	identitiesOf := func(t *testing.T, s auth.UserStore, id string) []auth.Identity {
		t.Helper()
		u, err := s.ByID(t.Context(), id)
		if err != nil {
			t.Fatalf("ByID %s: %v", id, err)
		}
		return u.Identities
	}
	t.Run("CreateWithIdentitiesAndFind", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		want := []auth.Identity{ident("google", "g-123"), ident("okta", "u-00u1")}
		create(t, s, passwordless("u1", "a@example.com", want...))
		for name, f := range map[string]func() (auth.User, error){
			"ByIdentity(google)": func() (auth.User, error) { return s.ByIdentity(ctx, "google", "g-123") },
			"ByIdentity(okta)":   func() (auth.User, error) { return s.ByIdentity(ctx, "okta", "u-00u1") },
			"ByID":               func() (auth.User, error) { return s.ByID(ctx, "u1") },
			"ByEmail":            func() (auth.User, error) { return s.ByEmail(ctx, "a@example.com") },
		} {
			got, err := f()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.ID != "u1" || got.PasswordHash != "" || !sameIdentities(got.Identities, want) {
				t.Fatalf("%s = %+v, want u1 without a password and with %+v", name, got, want)
			}
		}
		for _, miss := range [][2]string{{"google", "g-999"}, {"okta", "g-123"}, {"google", ""}, {"", "g-123"}} {
			if _, err := s.ByIdentity(ctx, miss[0], miss[1]); !errors.Is(err, auth.ErrUserNotFound) {
				t.Errorf("ByIdentity(%q, %q) = %v, want ErrUserNotFound", miss[0], miss[1], err)
			}
		}
	})
	t.Run("IdentityTaken", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		create(t, s, passwordless("u1", "a@example.com", ident("google", "g-1")), user("u2", "b@example.com", "bob"))
		if err := s.Create(ctx, passwordless("u3", "c@example.com", ident("google", "g-1"))); !errors.Is(err, auth.ErrIdentityTaken) {
			t.Fatalf("Create with another user's identity: %v, want ErrIdentityTaken", err)
		}
		// The failed creation released what it claimed.
		create(t, s, user("u4", "c@example.com", ""))
		if err := s.AddIdentity(ctx, "u2", ident("google", "g-1")); !errors.Is(err, auth.ErrIdentityTaken) {
			t.Fatalf("AddIdentity of another user's identity: %v, want ErrIdentityTaken", err)
		}
		if err := s.AddIdentity(ctx, "u1", ident("google", "g-1")); err != nil {
			t.Fatalf("AddIdentity of the user's own identity: %v, want nil", err)
		}
		if got := identitiesOf(t, s, "u1"); len(got) != 1 {
			t.Fatalf("after linking an identity twice the user has %d, want 1", len(got))
		}
		if err := s.AddIdentity(ctx, "nope", ident("okta", "o-1")); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("AddIdentity to an unknown user: %v, want ErrUserNotFound", err)
		}
		if _, err := s.ByIdentity(ctx, "okta", "o-1"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("an identity linked to no user is found: %v", err)
		}
	})
	t.Run("AddIdentity", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		create(t, s, user("u1", "a@example.com", "alice"))
		if err := s.AddIdentity(ctx, "u1", ident("google", "g-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.AddIdentity(ctx, "u1", ident("google", "u-2")); err != nil {
			t.Fatal(err)
		}
		got, err := s.ByIdentity(ctx, "google", "u-2")
		if err != nil || got.ID != "u1" || got.PasswordHash == "" || got.Username != "alice" {
			t.Fatalf("ByIdentity after AddIdentity = %+v, %v", got, err)
		}
		if want := []auth.Identity{ident("google", "g-1"), ident("google", "u-2")}; !sameIdentities(got.Identities, want) {
			t.Fatalf("identities = %+v, want %+v", got.Identities, want)
		}
	})
	t.Run("RacingFirstSignInsHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		OneWinner(t, 8, auth.ErrIdentityTaken, func(i int) error {
			return s.Create(t.Context(), passwordless(fmt.Sprint("u", i), fmt.Sprintf("racer%d@example.com", i), ident("google", "g-race")))
		})
	})
	t.Run("RacingLinksHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		for i := range 8 {
			create(t, s, user(fmt.Sprint("u", i), fmt.Sprintf("racer%d@example.com", i), ""))
		}
		OneWinner(t, 8, auth.ErrIdentityTaken, func(i int) error {
			return s.AddIdentity(t.Context(), fmt.Sprint("u", i), ident("google", "g-race"))
		})
	})
	t.Run("RemoveIdentity", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		create(t, s, passwordless("u1", "a@example.com", ident("google", "g-1"), ident("okta", "u-o1")),
			user("u2", "b@example.com", "bob"))
		if err := s.AddIdentity(ctx, "u2", ident("google", "g-2")); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveIdentity(ctx, "u1", "google", "g-2"); !errors.Is(err, auth.ErrIdentityNotFound) {
			t.Fatalf("RemoveIdentity of another user's identity: %v, want ErrIdentityNotFound", err)
		}
		if err := s.RemoveIdentity(ctx, "nope", "google", "g-1"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("RemoveIdentity of an unknown user: %v, want ErrUserNotFound", err)
		}
		if err := s.RemoveIdentity(ctx, "u1", "google", "g-1"); err != nil {
			t.Fatalf("RemoveIdentity with another left: %v", err)
		}
		if err := s.RemoveIdentity(ctx, "u1", "okta", "u-o1"); !errors.Is(err, auth.ErrLastSignInMethod) {
			t.Fatalf("RemoveIdentity of a passwordless user's last identity: %v, want ErrLastSignInMethod", err)
		}
		if want := []auth.Identity{ident("okta", "u-o1")}; !sameIdentities(identitiesOf(t, s, "u1"), want) {
			t.Fatalf("u1's identities = %+v, want %+v", identitiesOf(t, s, "u1"), want)
		}
		// A user with a password may remove every identity.
		if err := s.RemoveIdentity(ctx, "u2", "google", "g-2"); err != nil {
			t.Fatalf("RemoveIdentity of a user with a password: %v", err)
		}
		if got := identitiesOf(t, s, "u2"); len(got) != 0 {
			t.Fatalf("u2's identities = %+v, want none", got)
		}
		// Removed identities are found no more and may be linked again.
		for _, sub := range []string{"g-1", "g-2"} {
			if _, err := s.ByIdentity(ctx, "google", sub); !errors.Is(err, auth.ErrUserNotFound) {
				t.Fatalf("ByIdentity of a removed identity: %v, want ErrUserNotFound", err)
			}
		}
		if err := s.AddIdentity(ctx, "u2", ident("google", "g-1")); err != nil {
			t.Fatalf("linking an identity another user removed: %v", err)
		}
		// A password set later makes the last identity removable.
		if err := s.SetPasswordHash(ctx, "u1", "$argon2id$new"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveIdentity(ctx, "u1", "okta", "u-o1"); err != nil {
			t.Fatalf("RemoveIdentity after a password was set: %v", err)
		}
	})
	t.Run("RacingUnlinksKeepOneWayToSignIn", func(t *testing.T) {
		s := newStore(t)
		create(t, s, passwordless("u1", "a@example.com", ident("google", "g-1"), ident("okta", "o-1")))
		subjects := [][2]string{{"google", "g-1"}, {"okta", "o-1"}}
		OneWinner(t, 2, auth.ErrLastSignInMethod, func(i int) error {
			return s.RemoveIdentity(t.Context(), "u1", subjects[i][0], subjects[i][1])
		})
		if got := identitiesOf(t, s, "u1"); len(got) != 1 {
			t.Fatalf("after racing unlinks the user has %d identities, want 1", len(got))
		}
	})
	t.Run("DeleteReleasesIdentities", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		create(t, s, passwordless("u1", "a@example.com", ident("google", "g-1")))
		if err := s.Delete(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ByIdentity(ctx, "google", "g-1"); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("ByIdentity after Delete: %v, want ErrUserNotFound", err)
		}
		create(t, s, passwordless("u2", "b@example.com", ident("google", "g-1")))
	})
}

// sameIdentities compares identities field by field, in order.
func sameIdentities(got, want []auth.Identity) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Provider != w.Provider || g.Subject != w.Subject || g.Email != w.Email || g.EmailVerified != w.EmailVerified ||
			!g.LinkedAt.Equal(w.LinkedAt) {
			return false
		}
	}
	return true
}
