package run

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestBusyPortIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(t.Context(), Options{BinDir: t.TempDir(), DataDir: t.TempDir(),
		IssuerAddr: freeAddr(t), VerifierAddr: ln.Addr().String(), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t), InboxAddr: freeAddr(t)})
	if !errors.Is(err, ErrPortBusy) || !strings.Contains(err.Error(), ln.Addr().String()) ||
		!strings.Contains(err.Error(), "make run ARGS='--verifier-addr") {
		t.Fatalf("Start with the verifier's port taken: %v; want ErrPortBusy naming %s and the make run argument that moves it", err, ln.Addr())
	}
	_, err = Start(t.Context(), Options{BinDir: t.TempDir(), DataDir: t.TempDir(),
		IssuerAddr: freeAddr(t), VerifierAddr: freeAddr(t), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t), InboxAddr: ln.Addr().String()})
	if !errors.Is(err, ErrPortBusy) || !strings.Contains(err.Error(), "mail inbox") || !strings.Contains(err.Error(), "--inbox-addr") {
		t.Fatalf("Start with the inbox's port taken: %v; want ErrPortBusy naming the inbox and its flag", err)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := Start(t.Context(), Options{BinDir: t.TempDir(), DataDir: t.TempDir(),
		IssuerAddr: freeAddr(t), VerifierAddr: freeAddr(t), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t), InboxAddr: freeAddr(t)})
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("Start without binaries: %v; want a hint to run make build", err)
	}
}

func TestKeyEncryptionKeyIsKept(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	a, err := keyEncryptionKey(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keyEncryptionKey(p)
	if err != nil || a != b || len(a) != 64 {
		t.Fatalf("second read %q (%v), first %q: want the same 64 hex digits", b, err, a)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestWalkthrough starts the issuer, the demo and a proxying verifier on
// the servers of `make test` and runs every printed walk-through command
// with bash and curl, as a user pasting them would.
func TestWalkthrough(t *testing.T) {
	backends := backendsFromEnv(t)
	for _, tool := range []string{"bash", "curl", "sed", "grep", "cut", "head"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the walk-through needs it", tool)
		}
	}
	bin := buildBinaries(t)
	suffix := strings.ToLower(rand.Text()[:8])
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var progress strings.Builder
	sys, err := Start(ctx, Options{
		BinDir: bin, DataDir: t.TempDir(), Backends: backends, Progress: &progress, Timeout: time.Minute,
		IssuerAddr: freeAddr(t), VerifierAddr: freeAddr(t), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t),
		Extra: []string{"JOTGUARD_MONGO_DB=walk_" + suffix, "JOTGUARD_REDIS_PREFIX=walk" + suffix},
	})
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, progress.String())
	}
	defer sys.Stop()
	if sys.InboxURL != os.Getenv("JOTGUARD_MAILPIT_URL") {
		t.Errorf("InboxURL = %q, want the dev stack's JOTGUARD_MAILPIT_URL", sys.InboxURL)
	}
	if b, _ := os.ReadFile(sys.Log("issuer")); !strings.Contains(string(b), "sent over SMTP") || strings.Contains(string(b), "MAIL IS DISABLED") {
		t.Errorf("the issuer did not get JOTGUARD_SMTP_URL; its log:\n%s", b)
	}

	steps := Walkthrough(sys.IssuerURL, sys.VerifierURL, sys.InboxURL, "walk-"+suffix+"@example.com",
		"correct horse battery staple", filepath.Join(t.TempDir(), "jar.txt"))
	// One shell, so that TOKEN carries from step to step; a marker before
	// each step's output.
	var script strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&script, "echo '@@step %d'\n", i)
		if s.Eventually { // the mail, or the revocation over Kafka: allow it 5 s
			fmt.Fprintf(&script, "for i in $(seq 50); do out=$(%s); case \"$out\" in *%q*) break;; esac; sleep 0.1; done; echo \"$out\"\n",
				s.Command, s.Want)
		} else {
			script.WriteString(s.Command + "\n")
		}
	}
	out, err := exec.CommandContext(ctx, "bash", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("walk-through script: %v\n%s", err, out)
	}
	parts := strings.Split(string(out), "@@step ")[1:]
	if len(parts) != len(steps) {
		t.Fatalf("%d step outputs for %d steps:\n%s", len(parts), len(steps), out)
	}
	for i, s := range steps {
		if !strings.Contains(parts[i], s.Want) {
			t.Errorf("step %d (%s)\n$ %s\n%s\nwant output containing %q", i+1, s.Title, s.Command, parts[i], s.Want)
		}
	}

	// The banner's admin command works on the running system's stores: the
	// administrator it makes finds the walk-through's user.
	admin := "root-" + suffix + "@example.com"
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -a; . "+sys.IssuerEnv+"; set +a; "+
		filepath.Join(bin, "issuer")+" users create --email "+admin+" --roles admin")
	cmd.Stdin = strings.NewReader("correct horse battery staple\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("issuer users create with %s: %v\n%s", sys.IssuerEnv, err, out)
	}
	if fi, err := os.Stat(sys.IssuerEnv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600 (it holds the key encryption key)", sys.IssuerEnv, err, fi.Mode().Perm())
	}
	res, err := http.Post(sys.IssuerURL+"/login", "application/json",
		strings.NewReader(`{"email":"`+admin+`","password":"correct horse battery staple"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the administrator's login: %d %v", res.StatusCode, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.IssuerURL+"/admin/users?query=walk-"+suffix, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "walk-"+suffix+"@example.com") {
		t.Errorf("GET /admin/users as the new administrator: %d %s", res.StatusCode, body)
	}
	if t.Failed() {
		for _, n := range []string{"issuer", "verifier", "demo"} {
			b, _ := os.ReadFile(sys.Log(n))
			t.Logf("%s log:\n%s", n, b)
		}
	}
}

// buildBinaries builds the issuer, the verifier and the demo into a
// temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for _, b := range []struct{ name, dir, pkg string }{
		{"issuer", "../../../../issuer", "./cmd/issuer"},
		{"verifier", "../../../../verifier", "./cmd/verifier"},
		{"demo", "../..", "./cmd/demo"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b.name), b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.name, err, out)
		}
	}
	return bin
}

// backendsFromEnv returns the settings of `make test`'s servers.
func backendsFromEnv(t *testing.T) []string {
	t.Helper()
	b := []string{
		"JOTGUARD_MONGO_URI=" + sdktest.RequireEnv(t, "JOTGUARD_MONGO_URI"),
		"JOTGUARD_REDIS_URL=" + sdktest.RequireEnv(t, "JOTGUARD_REDIS_URL"),
		"JOTGUARD_KAFKA_BROKERS=" + sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"),
	}
	if topic := os.Getenv("JOTGUARD_REVOCATION_TOPIC"); topic != "" {
		b = append(b, "JOTGUARD_REVOCATION_TOPIC="+topic)
	}
	return append(b, "JOTGUARD_SMTP_URL="+sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL"),
		"JOTGUARD_MAILPIT_URL="+sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL"))
}

// TestSecondRunReusesData is the second `make run`: the same database and
// key encryption key, so the signing key and the users are still there.
func TestSecondRunReusesData(t *testing.T) {
	backends := backendsFromEnv(t)
	bin := buildBinaries(t)
	suffix := strings.ToLower(rand.Text()[:8])
	o := Options{BinDir: bin, DataDir: t.TempDir(), Backends: backends, Timeout: time.Minute,
		IssuerAddr: freeAddr(t), VerifierAddr: freeAddr(t), AdminAddr: freeAddr(t), DemoAddr: freeAddr(t),
		Extra: []string{"JOTGUARD_MONGO_DB=rerun_" + suffix, "JOTGUARD_REDIS_PREFIX=rerun" + suffix}}
	creds := `{"email":"rerun-` + suffix + `@example.com","password":"correct horse battery staple"}`
	post := func(url string) int {
		resp, err := http.Post(url, "application/json", strings.NewReader(creds))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	first, err := Start(t.Context(), o)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if code := post(first.IssuerURL + "/register"); code != http.StatusCreated {
		first.Stop()
		t.Fatalf("register: %d", code)
	}
	kids := first.KeyIDs
	first.Stop()
	if len(kids) == 0 {
		t.Fatal("the first run published no signing key")
	}

	second, err := Start(t.Context(), o)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	defer second.Stop()
	if !slices.Contains(second.KeyIDs, kids[0]) {
		t.Errorf("second run's JWKS %v lacks the first run's key %s", second.KeyIDs, kids[0])
	}
	if code := post(second.IssuerURL + "/login"); code != http.StatusOK {
		t.Errorf("login of the first run's user: %d, want 200", code)
	}
}

// The dev stack prints its export lines in one write: all of them are
// read, the mail catcher's (after Kafka's) included; lines split over two
// writes are waited for.
func TestReadExports(t *testing.T) {
	all := "export JOTGUARD_MONGO_URI=mongodb://127.0.0.1:1/\nexport JOTGUARD_REDIS_URL=redis://127.0.0.1:2/0\n" +
		"export JOTGUARD_KAFKA_BROKERS=127.0.0.1:3\nexport JOTGUARD_REVOCATION_TOPIC=jotguard.revocations\n" +
		"export JOTGUARD_SMTP_URL=smtp://127.0.0.1:4\nexport JOTGUARD_MAILPIT_URL=http://127.0.0.1:5\n"
	for _, writes := range [][]string{{all}, {all[:40], all[40:]}, {all[:130], all[130:]}} {
		r, w := io.Pipe()
		go func() {
			for _, chunk := range writes {
				_, _ = w.Write([]byte(chunk))
			}
		}()
		got := readExports(r)
		r.Close()
		if len(got) != 6 || got[4] != "JOTGUARD_SMTP_URL=smtp://127.0.0.1:4" || got[5] != "JOTGUARD_MAILPIT_URL=http://127.0.0.1:5" {
			t.Errorf("writes %q: read %q, want all six settings", writes, got)
		}
	}
	if got := readExports(strings.NewReader("export JOTGUARD_MONGO_URI=x\n")); got != nil {
		t.Errorf("an incomplete stack's output: %q, want nil", got)
	}
}

// The sign-in page and the inbox are the first URLs printed; without an
// inbox, mail is said to be off.
func TestPrintReadyShowsInbox(t *testing.T) {
	sys := &System{IssuerURL: "http://127.0.0.1:8080", InboxURL: "http://127.0.0.1:39123", LogDir: ".data/logs"}
	var b strings.Builder
	PrintReady(&b, Style{}, sys, nil)
	if !regexp.MustCompile(`(?m)^jotguard is running\.\n\n  sign in +http://127\.0\.0\.1:8080/account/login +\S.*\n  mail inbox +http://127\.0\.0\.1:39123 `).MatchString(b.String()) {
		t.Errorf("the sign-in page and the inbox are not the first rows:\n%s", b.String())
	}
	sys.InboxURL = ""
	b.Reset()
	PrintReady(&b, Style{}, sys, nil)
	if !strings.Contains(b.String(), "mail is disabled") {
		t.Errorf("no word on disabled mail:\n%s", b.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestREADMEWalkthrough keeps the README's copy of the walk-through equal
// to what jotguard-run prints (with the README's example e-mail address).
func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := Walkthrough("http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8025", "ada-x7k2qp@example.com",
		"correct horse battery staple", "/tmp/jotguard-cookies.txt")
	for i, s := range steps {
		block := fmt.Sprintf("# %d. %s\n%s\n", i+1, s.Title, s.Command)
		if !strings.Contains(string(readme), block) {
			t.Errorf("README.md lacks step %d as jotguard-run prints it:\n%s", i+1, block)
		}
	}
}
