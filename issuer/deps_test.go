package issuer_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const internal = "github.com/jotguard/jotguard/issuer/internal/"

// Driver import path prefixes.
const (
	mongoDriver = "go.mongodb.org/"
	redisDriver = "github.com/redis/"
	kafkaDriver = "github.com/segmentio/kafka-go"
)

// TestDependencyFence: the domain (auth) and the packages that work over its
// ports (keys, kafkaevents, mail) depend on no driver they do not speak, however
// indirectly. The drivers belong to the adapters named after them, to app,
// which wires everything, and to testenv, which gives tests their backends.
func TestDependencyFence(t *testing.T) {
	fences := map[string][]string{ // package: driver prefixes none of its dependencies may have
		internal + "auth":        {mongoDriver, redisDriver, kafkaDriver},
		internal + "keys":        {mongoDriver, redisDriver, kafkaDriver},
		internal + "kafkaevents": {mongoDriver, redisDriver},
		internal + "mail":        {mongoDriver, redisDriver, kafkaDriver},
	}
	for pkg, banned := range fences {
		deps := goList(t, "-deps", pkg)
		if !slices.Contains(deps, internal+"auth") {
			t.Fatalf("go list -deps %s lists no auth: the fence checks nothing", pkg)
		}
		for _, dep := range deps {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s; keep the driver in its adapter", pkg, dep)
				}
			}
		}
	}

	importers := map[string][]string{ // driver prefix: the only packages whose code or tests import it
		mongoDriver: {"mongostore", "app", "testenv"},
		redisDriver: {"redisstore", "ratelimit", "app"},
		kafkaDriver: {"kafkaevents", "app", "testenv"},
	}
	lines := goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}", "./...")
	if len(lines) < 10 {
		t.Fatalf("go list ./... lists %d packages: the fence checks nothing", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], internal)
		for _, imp := range f[1:] {
			for driver, allowed := range importers {
				if strings.HasPrefix(imp, driver) && !slices.Contains(allowed, pkg) {
					t.Errorf("%s imports %s; only %v may", f[0], imp, allowed)
				}
			}
		}
	}
}

// goList runs go list in the issuer module and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
