package auth_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Every token of a session carries its chain id and 256 bits of its own; a
// token from before chains existed has none, and its successor starts one.
func TestRefreshTokenChain(t *testing.T) {
	first := auth.NewRefreshToken()
	chain, ok := auth.RefreshChain(first)
	if !ok || len(chain) != 16 || len(first) != 64 {
		t.Fatalf("NewRefreshToken %q: chain %x, %v", first, chain, ok)
	}
	next := auth.NextRefreshToken(first)
	if c, ok := auth.RefreshChain(next); !ok || !bytes.Equal(c, chain) || next == first || next[22:] == first[22:] {
		t.Fatalf("NextRefreshToken kept chain %v, token %q after %q", ok, next, first)
	}
	if other, _ := auth.RefreshChain(auth.NewRefreshToken()); bytes.Equal(other, chain) {
		t.Fatal("two sessions share a chain id")
	}
	legacy := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if _, ok := auth.RefreshChain(legacy); ok || !auth.LegacyRefreshToken(legacy) {
		t.Fatalf("legacy token: chain %v, legacy %v", ok, auth.LegacyRefreshToken(legacy))
	}
	if _, ok := auth.RefreshChain(auth.NextRefreshToken(legacy)); !ok {
		t.Fatal("the successor of a legacy token has no chain")
	}
	for _, bad := range []string{"", "garbage", strings.Repeat("!", 64), first + "A", first[:63]} {
		if _, ok := auth.RefreshChain(bad); ok || auth.LegacyRefreshToken(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
