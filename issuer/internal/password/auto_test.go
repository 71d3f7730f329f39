package password_test

import (
	"math"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/password"
)

func TestAutoConcurrency(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		limit int64
		cores int
		want  int
	}{
		{math.MaxInt64, 16, 16}, // no limit: one per core
		{230 * mib, 16, 6},      // a 256 MiB container (limit at 90%)
		{144 * mib, 16, 2},      // a 160 MiB container
		{144 * mib, 1, 1},       // one core
		{64 * mib, 16, 1},       // less than the rest of the issuer needs: still one
		{16 << 30, 2, 2},        // plenty of memory: the cores decide
	} {
		if got := password.AutoConcurrency(password.OWASP, tt.limit, tt.cores); got != tt.want {
			t.Errorf("AutoConcurrency(OWASP, %d MiB, %d cores) = %d, want %d", tt.limit/mib, tt.cores, got, tt.want)
		}
	}
}
