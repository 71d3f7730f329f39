package buildinfo_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/sdk/buildinfo"
)

func TestRead(t *testing.T) {
	i := buildinfo.Read("")
	if i.GoVersion != runtime.Version() || i.Version == "" {
		t.Fatalf("Read() = %+v", i)
	}
	if got := buildinfo.Read("v1.2.3"); got.Version != "v1.2.3" || !strings.HasPrefix(got.String(), "v1.2.3 ") {
		t.Fatalf("Read(v1.2.3) = %+v, %q", got, got.String())
	}
	s := buildinfo.Info{Version: "v1", Revision: "0123456789abcdef0123", Time: "2026-12-06T11:00:00Z", GoVersion: "go1.26.8"}.String()
	if s != "v1 (commit 0123456789ab, 2026-12-06T11:00:00Z) go1.26.8" {
		t.Fatalf("String() = %q", s)
	}
}
