package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// runUserAdmin checks the administrator's side of auth.UserStore: Update
// and List.
func runUserAdmin(t *testing.T, newStore func(t *testing.T) auth.UserStore, user func(id, email, username string) auth.User) {
	t.Run("Update", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.Create(ctx, user("u1", "a@example.com", "alice")); err != nil {
			t.Fatal(err)
		}
		roles, yes, no := []string{"admin", "ops"}, true, false
		got, err := s.Update(ctx, "u1", auth.UserUpdate{Roles: &roles, Disabled: &yes})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Roles, roles) || !got.Disabled || got.EmailVerified || got.Email != "a@example.com" ||
			got.PasswordHash != "$argon2id$x" {
			t.Fatalf("Update = %+v", got)
		}
		if read, _ := s.ByID(ctx, "u1"); !slices.Equal(read.Roles, roles) || !read.Disabled {
			t.Fatalf("read after Update: %+v", read)
		}
		// Only the fields given change; no roles is an empty list.
		none := []string{}
		if got, err = s.Update(ctx, "u1", auth.UserUpdate{EmailVerified: &yes, Disabled: &no, Roles: &none}); err != nil {
			t.Fatal(err)
		}
		if len(got.Roles) != 0 || got.Disabled || !got.EmailVerified {
			t.Fatalf("second Update = %+v", got)
		}
		if got, err = s.Update(ctx, "u1", auth.UserUpdate{}); err != nil || !got.EmailVerified {
			t.Fatalf("empty Update = %+v, %v", got, err)
		}
		if _, err := s.Update(ctx, "nope", auth.UserUpdate{Disabled: &yes}); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("Update(unknown) = %v, want ErrUserNotFound", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for i, e := range []string{"ann@example.com", "bob@example.org", "carl@example.com", "dora@example.org", "eve@ann.example"} {
			if err := s.Create(ctx, user(fmt.Sprintf("u%d", i), e, fmt.Sprintf("name%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(us []auth.User) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out
		}
		list := func(q auth.UserQuery) []string {
			t.Helper()
			us, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return ids(us)
		}
		for _, tt := range []struct {
			q    auth.UserQuery
			want []string
		}{
			{auth.UserQuery{Limit: 10}, []string{"u0", "u1", "u2", "u3", "u4"}},
			{auth.UserQuery{Limit: 2}, []string{"u0", "u1"}},
			{auth.UserQuery{Limit: 2, After: "u1"}, []string{"u2", "u3"}},
			{auth.UserQuery{Limit: 10, After: "u4"}, nil},
			{auth.UserQuery{Limit: 10, Query: "example.org"}, []string{"u1", "u3"}},
			{auth.UserQuery{Limit: 10, Query: "ann"}, []string{"u0", "u4"}}, // by email, anywhere in it
			{auth.UserQuery{Limit: 10, Query: "name2"}, []string{"u2"}},     // by username
			{auth.UserQuery{Limit: 10, Query: "u3"}, []string{"u3"}},        // by id
			{auth.UserQuery{Limit: 10, Query: "a.n"}, nil},                  // no pattern: the dot is a dot
			{auth.UserQuery{Limit: 1, Query: "example.org", After: "u1"}, []string{"u3"}},
		} {
			if got := list(tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		}
		us, _ := s.List(ctx, auth.UserQuery{Limit: 1, Query: "bob"})
		if len(us) != 1 || us[0].Email != "bob@example.org" || us[0].Username != "name1" || len(us[0].Roles) != 1 {
			t.Fatalf("a listed user: %+v", us)
		}
	})
}

// RunClientStore checks the auth.ClientStore contract.
func RunClientStore(t *testing.T, newStore func(t *testing.T) auth.ClientStore) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	client := func(id string) auth.Client {
		return auth.Client{ID: id, Name: "reports " + id, Roles: []string{"reader"},
			SecretHash: auth.HashClientSecret("s-" + id), CreatedAt: at, CreatedBy: "u-admin"}
	}
	t.Run("CreateFindListDelete", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if got, err := s.List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("List of an empty store = %v, %v", got, err)
		}
		for _, id := range []string{"svc-b", "svc-a"} {
			if err := s.Create(ctx, client(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Create(ctx, client("svc-a")); !errors.Is(err, auth.ErrConflict) {
			t.Fatalf("Create of a taken id: %v, want ErrConflict", err)
		}
		got, err := s.ByID(ctx, "svc-a")
		want := client("svc-a")
		if err != nil || got.ID != want.ID || got.Name != want.Name || !slices.Equal(got.Roles, want.Roles) ||
			got.SecretHash != want.SecretHash || !got.CreatedAt.Equal(at) || got.CreatedBy != "u-admin" {
			t.Fatalf("ByID = %+v, %v; want %+v", got, err, want)
		}
		all, err := s.List(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "svc-a" || all[1].ID != "svc-b" {
			t.Fatalf("List = %+v, %v", all, err)
		}
		if err := s.Delete(ctx, "svc-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ByID(ctx, "svc-a"); !errors.Is(err, auth.ErrClientNotFound) {
			t.Fatalf("ByID after Delete: %v, want ErrClientNotFound", err)
		}
		if err := s.Delete(ctx, "svc-a"); !errors.Is(err, auth.ErrClientNotFound) {
			t.Fatalf("second Delete: %v, want ErrClientNotFound", err)
		}
		if all, _ := s.List(ctx); len(all) != 1 {
			t.Fatalf("List after Delete: %+v", all)
		}
	})
	t.Run("NoRoles", func(t *testing.T) {
		s := newStore(t)
		c := client("svc-x")
		c.Roles = nil
		if err := s.Create(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ByID(t.Context(), "svc-x"); err != nil || len(got.Roles) != 0 {
			t.Fatalf("ByID = %+v, %v", got, err)
		}
	})
}

// RunAuditLog checks the auth.AuditLog contract: newest first, filters,
// cursor, expiry, and a retried batch stored once.
func RunAuditLog(t *testing.T, newStore func(t *testing.T) auth.AuditLog) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entry := func(i int, typ, actor, target string) auth.AuditEntry {
		tm := base.Add(time.Duration(i) * time.Second)
		return auth.AuditEntry{ID: fmt.Sprintf("%012x-%03d", tm.UnixMilli(), i), Time: tm, Type: typ, Actor: actor,
			Target: target, IP: "192.0.2.1", UserAgent: "test/1", RequestID: fmt.Sprint("req", i),
			Detail: "d", ExpiresAt: tm.Add(time.Hour)}
	}
	fill := func(t *testing.T, s auth.AuditLog) []auth.AuditEntry {
		t.Helper()
		es := []auth.AuditEntry{
			entry(0, auth.AuditUserRegistered, "u1", "u1"),
			entry(1, auth.AuditLoginSucceeded, "u1", "u1"),
			entry(2, auth.AuditLoginFailed, "", "u2"),
			entry(3, auth.AuditAdminUserUpdated, "u-admin", "u1"),
			entry(4, auth.AuditLogout, "u2", "u2"),
		}
		if err := s.Append(t.Context(), es[:2]...); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(t.Context(), es[2:]...); err != nil {
			t.Fatal(err)
		}
		return es
	}
	ids := func(t *testing.T, s auth.AuditLog, q auth.AuditQuery) []string {
		t.Helper()
		es, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.RequestID)
		}
		return out
	}
	t.Run("ListFiltersAndPages", func(t *testing.T) {
		s := newStore(t)
		es := fill(t, s)
		for _, tt := range []struct {
			q    auth.AuditQuery
			want []string
		}{
			{auth.AuditQuery{Limit: 10}, []string{"req4", "req3", "req2", "req1", "req0"}},
			{auth.AuditQuery{Limit: 2}, []string{"req4", "req3"}},
			{auth.AuditQuery{Limit: 2, Before: es[3].ID}, []string{"req2", "req1"}},
			{auth.AuditQuery{Limit: 10, UserID: "u1"}, []string{"req3", "req1", "req0"}}, // actor or target
			{auth.AuditQuery{Limit: 10, UserID: "u-admin"}, []string{"req3"}},
			{auth.AuditQuery{Limit: 10, Type: auth.AuditLoginFailed}, []string{"req2"}},
			{auth.AuditQuery{Limit: 10, UserID: "u2", Type: auth.AuditLogout}, []string{"req4"}},
			{auth.AuditQuery{Limit: 10, UserID: "nobody"}, nil},
		} {
			if got := ids(t, s, tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		}
		got, err := s.List(t.Context(), auth.AuditQuery{Limit: 1, Before: es[3].ID})
		if err != nil || len(got) != 1 || got[0] != es[2] {
			t.Fatalf("an entry read back: %+v, %v; want %+v", got, err, es[2])
		}
	})
	t.Run("RetriedBatchStoredOnce", func(t *testing.T) {
		s := newStore(t)
		es := fill(t, s)
		more := entry(5, auth.AuditLogout, "u3", "u3")
		if err := s.Append(t.Context(), es[4], more); err != nil { // a batch retried after a lost answer
			t.Fatalf("Append of a batch partly stored already: %v", err)
		}
		if got := ids(t, s, auth.AuditQuery{Limit: 10}); !slices.Equal(got, []string{"req5", "req4", "req3", "req2", "req1", "req0"}) {
			t.Fatalf("after the retry: %v", got)
		}
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		s := newStore(t)
		fill(t, s)
		// entries expire an hour after their time: 0…2 by base+1h+2s
		if err := s.DeleteExpired(t.Context(), base.Add(time.Hour+2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := ids(t, s, auth.AuditQuery{Limit: 10}); !slices.Equal(got, []string{"req4", "req3"}) {
			t.Fatalf("after DeleteExpired: %v", got)
		}
	})
}
