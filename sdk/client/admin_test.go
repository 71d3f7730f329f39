package client_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/client"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// bootstrapAdmin creates an administrator with `issuer users create`, as an
// operator would, and logs it in.
func bootstrapAdmin(t *testing.T, iss *sdktest.IssuerProcess, c *client.Client) *client.Tokens {
	t.Helper()
	email := newEmail()
	cmd := exec.Command(os.Getenv("JOTGUARD_ISSUER_BIN"), "users", "create", "--email", email, "--roles", "admin")
	cmd.Env = os.Environ()
	for k, v := range iss.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("issuer users create: %v\n%s", err, out)
	}
	return login(t, c, email)
}

// The administration methods and a service account's token source against
// the real issuer.
func TestRealAdministration(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	ctx := t.Context()
	adm := bootstrapAdmin(t, iss, c).AccessToken
	u, tok := signUp(t, c)

	if _, err := c.ListUsers(ctx, tok.AccessToken, client.UserQuery{}); !client.HasCode(err, client.CodeInsufficientScope) {
		t.Fatalf("ListUsers as a user: %v, want %s", err, client.CodeInsufficientScope)
	}
	page, err := c.ListUsers(ctx, adm, client.UserQuery{Query: u.Email, Limit: 10})
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != u.ID || page.NextCursor != "" {
		t.Fatalf("ListUsers = %+v, %v", page, err)
	}
	roles, off := []string{"editor"}, false
	got, err := c.UpdateUser(ctx, adm, u.ID, client.UserUpdate{Roles: &roles, Disabled: &off})
	if err != nil || !slices.Equal(got.Roles, roles) || got.Disabled {
		t.Fatalf("UpdateUser = %+v, %v", got, err)
	}
	next, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil || !slices.Equal(next.User.Roles, roles) {
		t.Fatalf("the refresh after the role change: %+v, %v", next, err)
	}
	if err := c.LogoutUser(ctx, adm, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, next.RefreshToken); !client.HasCode(err, client.CodeInvalidRefreshToken) {
		t.Fatalf("refresh after LogoutUser: %v", err)
	}
	audit, err := c.Audit(ctx, adm, client.AuditQuery{UserID: u.ID, Type: "admin.logout"})
	for tries := 0; err == nil && len(audit.Entries) == 0 && tries < 100; tries++ { // written behind the request
		audit, err = c.Audit(ctx, adm, client.AuditQuery{UserID: u.ID, Type: "admin.logout"})
	}
	if err != nil || len(audit.Entries) != 1 || audit.Entries[0].Target != u.ID {
		t.Fatalf("Audit = %+v, %v", audit, err)
	}

	// A service account with the admin role administers through its token
	// source.
	sa, err := c.CreateServiceAccount(ctx, adm, "robot", []string{"admin"})
	if err != nil || !strings.HasPrefix(sa.ClientSecret, "jgs_") {
		t.Fatalf("CreateServiceAccount = %+v, %v", sa, err)
	}
	src := c.ServiceTokenSource(ctx, sa.ClientID, sa.ClientSecret)
	st, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, st.AccessToken)
	if err != nil || !claims.ServiceAccount() || claims.Subject != sa.ClientID {
		t.Fatalf("the service account's token: %+v, %v", claims, err)
	}
	if again, _ := src.Token(); again.AccessToken != st.AccessToken {
		t.Fatal("the token source asked for a new token while the first is fresh")
	}
	res, err := oauth2.NewClient(ctx, src).Get(iss.URL + "/admin/users/" + u.ID)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/users/{id} with the token source: %d", res.StatusCode)
	}
	in, err := c.Introspect(ctx, sa.ClientID, sa.ClientSecret, login(t, c, u.Email).AccessToken)
	if err != nil || !in.Active || in.Subject != u.ID || !slices.Equal(in.Roles, roles) {
		t.Fatalf("Introspect = %+v, %v", in, err)
	}
	if in, err := c.Introspect(ctx, sa.ClientID, sa.ClientSecret, "garbage"); err != nil || in.Active {
		t.Fatalf("Introspect(garbage) = %+v, %v", in, err)
	}
	all, err := c.ServiceAccounts(ctx, adm)
	if err != nil || !slices.ContainsFunc(all, func(s client.ServiceAccount) bool { return s.ClientID == sa.ClientID }) {
		t.Fatalf("ServiceAccounts = %+v, %v", all, err)
	}
	if err := c.DeleteServiceAccount(ctx, adm, sa.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Introspect(ctx, sa.ClientID, sa.ClientSecret, "x"); !client.HasCode(err, client.CodeInvalidClient) {
		t.Fatalf("Introspect with a deleted service account: %v", err)
	}
	if _, err := c.ClientCredentials(sa.ClientID, sa.ClientSecret).Token(ctx); err == nil {
		t.Fatal("a deleted service account got a token")
	} else if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != client.CodeInvalidClient {
		t.Fatalf("a deleted service account's grant: %v", err)
	}
	if err := c.DeleteUser(ctx, adm, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, adm, u.ID); !client.HasCode(err, client.CodeNotFound) {
		t.Fatalf("GetUser after DeleteUser: %v", err)
	}
}
