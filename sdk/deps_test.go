package sdk_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyFence: whatever the sdk imports, every service that verifies
// tokens inherits. kafkafeed and echoauth may bring their one driver each,
// and kafkafeed OpenTelemetry's tracing API (never its SDK or an exporter:
// the application chooses those); the core packages none.
func TestDependencyFence(t *testing.T) {
	never := []string{"go.mongodb.org/", "github.com/redis/", "github.com/FerretDB/",
		"github.com/twmb/", "github.com/alicebob/", "github.com/axllent/",
		"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/contrib",
		"google.golang.org/grpc",
		"github.com/jotguard/jotguard/issuer", "github.com/jotguard/jotguard/verifier"}
	core := slices.Concat(never, []string{"github.com/segmentio/kafka-go", "github.com/labstack/echo", "go.opentelemetry.io/"})
	fences := map[string][]string{
		"github.com/jotguard/jotguard/sdk/...":        never, // kafkafeed, echoauth: their one driver each
		"github.com/jotguard/jotguard/sdk":            core,
		"github.com/jotguard/jotguard/sdk/revocation": core,
		"github.com/jotguard/jotguard/sdk/sdktest":    core,
	}
	for pattern, banned := range fences {
		out, err := exec.Command("go", "list", "-deps", pattern).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pattern, err)
		}
		pkgs := strings.Fields(string(out))
		if !slices.Contains(pkgs, "github.com/golang-jwt/jwt/v5") {
			t.Fatalf("go list -deps %s lists no golang-jwt: the fence checks nothing", pattern)
		}
		for _, pkg := range pkgs {
			for _, b := range banned {
				if strings.HasPrefix(pkg, b) {
					t.Errorf("%s depends on %s; keep it out of the sdk", pattern, pkg)
				}
			}
		}
	}
}
