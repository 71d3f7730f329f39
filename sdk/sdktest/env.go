// Package sdktest helps downstream teams test handlers that use the sdk
// without running jotguard: test keys, a JWKS server, token minting and
// revocation injection. It also holds the rule for tests that need a server.
package sdktest

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv returns the environment variable key. When it is unset the test
// is skipped with a message naming `make test`, unless CI is set: then a
// missing backend fails the test instead of hiding behind a skip.
func RequireEnv(tb testing.TB, key string) string {
	tb.Helper()
	v := os.Getenv(key)
	if v == "" {
		msg := fmt.Sprintf("%s is not set: run `make test`, which starts deploy/devstack", key)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg + " (CI is set: a missing backend fails)")
		}
		tb.Skip(msg)
	}
	return v
}
