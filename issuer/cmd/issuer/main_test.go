package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runMain runs main in a child process with env and args.
func runMain(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestMainChild$", "--"}, args...)...)
	cmd.Env = append([]string{"ISSUER_MAIN_CHILD=1", "PATH=" + os.Getenv("PATH")}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestMainChild(t *testing.T) {
	if os.Getenv("ISSUER_MAIN_CHILD") != "1" {
		t.Skip("runs only as the child of the other tests")
	}
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{"issuer"}, os.Args[i+1:]...)
			break
		}
	}
	main()
}

func TestHelpExitsZero(t *testing.T) {
	code, out, _ := runMain(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "JOTGUARD_MONGO_URI") || !strings.Contains(out, "keys rotate") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
}

func TestBadSettingIsOneLine(t *testing.T) {
	code, _, stderr := runMain(t, []string{"JOTGUARD_MONGO_URI=mongodb://127.0.0.1:1", "JOTGUARD_REDIS_URL=redis://127.0.0.1:1",
		"JOTGUARD_ACCESS_TTL=soon"})
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "JOTGUARD_ACCESS_TTL") {
		t.Fatalf("exit %d, stderr %q; want 2 and one line naming JOTGUARD_ACCESS_TTL", code, stderr)
	}
	for _, kafka := range [][]string{
		{"JOTGUARD_KAFKA_SASL_MECHANISM=KERBEROS"},
		{"JOTGUARD_KAFKA_SASL_USERNAME=jotguard"},
		{"JOTGUARD_KAFKA_TLS=on", "JOTGUARD_KAFKA_TLS_CA_FILE=/nonexistent/ca.pem"},
	} {
		name, _, _ := strings.Cut(kafka[len(kafka)-1], "=")
		code, _, stderr := runMain(t, append([]string{"JOTGUARD_MONGO_URI=mongodb://127.0.0.1:1", "JOTGUARD_REDIS_URL=redis://127.0.0.1:1"}, kafka...))
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, name) {
			t.Fatalf("%v: exit %d, stderr %q; want 2 and one line naming %s", kafka, code, stderr, name)
		}
	}
	code, _, stderr = runMain(t, nil)
	if code != 2 || !strings.Contains(stderr, "JOTGUARD_MONGO_URI") {
		t.Fatalf("missing required: exit %d, %q", code, stderr)
	}
	if code, _, _ := runMain(t, nil, "keys", "explode"); code != 2 {
		t.Fatalf("keys explode: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runMain(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "issuer ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
}
