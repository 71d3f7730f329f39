package sdktest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequireEnvFailsInCI runs RequireEnv in a child test process with the
// variable unset: it must skip without CI and fail with CI.
func TestRequireEnvFailsInCI(t *testing.T) {
	if os.Getenv("SDKTEST_CHILD") == "1" {
		RequireEnv(t, "JOTGUARD_SURELY_UNSET_VARIABLE")
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireEnvFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "SDKTEST_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "SKIP")):
			t.Errorf("without CI: want a skip, got err=%v\n%s", err, out)
		case ci != "" && (err == nil || !strings.Contains(string(out), "make test")):
			t.Errorf("with CI: want a failure naming make test, got err=%v\n%s", err, out)
		}
	}
}
