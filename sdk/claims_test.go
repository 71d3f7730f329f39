package sdk_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
)

// A service account's claims, as signed, leave out what only a user has
// (sid, email_verified), a user's keep them even when empty or false, and
// both read back as they were.
func TestClaimsJSON(t *testing.T) {
	reg := jwt.RegisteredClaims{Issuer: "https://iss", ID: "j1", IssuedAt: jwt.NewNumericDate(now)}
	svc := sdk.Claims{RegisteredClaims: reg, ClientID: "svc-1", Roles: []string{"reports"}}
	svc.Subject = "svc-1"
	user := sdk.Claims{RegisteredClaims: reg, ClientID: "jotguard", SessionID: "s1"}
	user.Subject = "u1"
	for _, tt := range []struct {
		name      string
		c         sdk.Claims
		service   bool
		want, not []string
	}{
		{"service account", svc, true, []string{`"sub":"svc-1"`, `"client_id":"svc-1"`, `"roles":["reports"]`}, []string{`"sid"`, `"email_verified"`, `"email"`}},
		{"user", user, false, []string{`"sid":"s1"`, `"email_verified":false`}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.ServiceAccount(); got != tt.service {
				t.Fatalf("ServiceAccount() = %v, want %v", got, tt.service)
			}
			b, err := json.Marshal(tt.c.Signable())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(string(b), n) {
					t.Errorf("%s has %s", b, n)
				}
			}
			var back sdk.Claims
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Subject != tt.c.Subject || back.SessionID != tt.c.SessionID || back.ServiceAccount() != tt.service {
				t.Fatalf("read back %+v, want %+v", back, tt.c)
			}
		})
	}
}
