package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Peers are other projects' auth servers, built from the Go module proxy
// in the bench run (once: their binaries are kept in a cache directory and
// reused while present) and measured beside the verifier, each verifying
// the issuer's tokens by its JWKS.
const (
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.15.6"
	oathkeeperModule   = "github.com/ory/oathkeeper"
	// oathkeeperKnown is built when the proxy will not list oathkeeper's
	// versions: the newest release this bench was checked against.
	oathkeeperKnown = "v0.40.9"
)

// Peer target names.
const (
	tOAuth2Proxy = "oauth2-proxy /oauth2/auth"
	tOathkeeper  = "Ory Oathkeeper /decisions"
)

// PeerBuild is how one peer was installed, or why it could not be.
type PeerBuild struct {
	Name, Module, Version string
	Bin                   string        // "" when it could not be built
	Err                   string        // why not
	Note                  string        // how, and anything worth knowing
	Took                  time.Duration // 0: reused from the cache
}

// buildPeers builds oauth2-proxy and Oathkeeper into dir, or reuses the
// binaries already there.
func buildPeers(ctx context.Context, log *logger, dir string) []PeerBuild {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []PeerBuild{{Name: "oauth2-proxy", Err: err.Error()}, {Name: "Ory Oathkeeper", Err: err.Error()}}
	}
	o2p := PeerBuild{Name: "oauth2-proxy", Module: oauth2ProxyModule, Version: oauth2ProxyVersion,
		Note: "`go install " + oauth2ProxyModule + "@" + oauth2ProxyVersion + "`"}
	o2p.build(ctx, log, filepath.Join(dir, "oauth2-proxy-"+oauth2ProxyVersion), func(out string) ([]byte, error) {
		return goCmd(ctx, dir, []string{"GOBIN=" + dir}, "install", oauth2ProxyModule+"@"+oauth2ProxyVersion)
	}, filepath.Join(dir, "oauth2-proxy"))
	return []PeerBuild{o2p, buildOathkeeper(ctx, log, dir)}
}

// buildOathkeeper builds the newest Oathkeeper the proxy lists, or, when
// it refuses the list (it answers 403 for oathkeeper's), the known
// release. `go install module@version` would also read the list (for
// deprecations): the build runs in a module of the bench's own that
// requires it.
func buildOathkeeper(ctx context.Context, log *logger, dir string) PeerBuild {
	pb := PeerBuild{Name: "Ory Oathkeeper", Module: oathkeeperModule}
	out, err := goCmd(ctx, dir, nil, "list", "-m", "-versions", oathkeeperModule)
	if vs := strings.Fields(string(out)); err == nil && len(vs) > 1 {
		pb.Version = vs[len(vs)-1]
		pb.Note = "the newest version `go list -m -versions` lists"
	} else {
		pb.Version = oathkeeperKnown
		pb.Note = fmt.Sprintf("the Go module proxy refuses `go list -m -versions %s` (%s); %s, the newest release this bench knows, is served when asked for by version",
			oathkeeperModule, refusal(string(out), err), oathkeeperKnown)
	}
	pb.Note += "; built with `go build` in a module of the bench's own that requires it (`go install …@version` reads the version list too)"
	src := filepath.Join(dir, "oathkeeper-src-"+pb.Version)
	pb.build(ctx, log, filepath.Join(dir, "oathkeeper-"+pb.Version), func(bin string) ([]byte, error) {
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, err
		}
		gomod := fmt.Sprintf("module jotguard.bench/peers\n\ngo 1.26\n\nrequire %s %s\n", oathkeeperModule, pb.Version)
		tools := fmt.Sprintf("//go:build tools\n\npackage peers\n\nimport _ %q\n", oathkeeperModule)
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(src, "tools.go"), []byte(tools), 0o644); err != nil {
			return nil, err
		}
		if out, err := goCmd(ctx, src, nil, "mod", "tidy"); err != nil {
			return out, err
		}
		return goCmd(ctx, src, nil, "build", "-o", bin, oathkeeperModule)
	}, "")
	return pb
}

// build runs make unless bin exists already; built is where make leaves
// the binary when not at bin ("": at bin).
func (pb *PeerBuild) build(ctx context.Context, log *logger, bin string, make func(bin string) ([]byte, error), built string) {
	if _, err := os.Stat(bin); err == nil {
		pb.Bin = bin
		log.Printf("peer %s %s: %s (cached)", pb.Name, pb.Version, bin)
		return
	}
	log.Printf("peer %s %s: building into %s", pb.Name, pb.Version, bin)
	t0 := time.Now()
	out, err := make(bin)
	if err == nil && built != "" {
		err = os.Rename(built, bin)
	}
	if err != nil {
		pb.Err = firstLine(string(out), err)
		log.Printf("peer %s: %s", pb.Name, pb.Err)
		return
	}
	pb.Bin, pb.Took = bin, time.Since(t0)
	log.Printf("peer %s built in %s", pb.Name, pb.Took.Round(time.Second))
}

// goCmd runs `go args…` in dir with env added, and answers its combined
// output.
func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	// The cache directory may lie inside the repository, under its go.work:
	// the peers' modules are not in that workspace.
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	return cmd.CombinedOutput()
}

// urls are the addresses a go command's message may hold: the report
// names the module proxy, not its host.
var urls = regexp.MustCompile(`https?://\S+`)

// refusal is why the module proxy refused a request, from the go command's
// output: its status and its server's answer.
func refusal(out string, err error) string {
	var parts []string
	if m := regexp.MustCompile(`\b(\d{3} [A-Z][A-Za-z ]+)`).FindStringSubmatch(out); m != nil {
		parts = append(parts, strings.TrimSpace(m[1]))
	}
	if _, r, ok := strings.Cut(out, "server response:"); ok {
		parts = append(parts, fmt.Sprintf("%q", strings.TrimSpace(strings.SplitN(r, "\n", 2)[0])))
	}
	if len(parts) == 0 {
		return firstLine(out, err)
	}
	return strings.Join(parts, ": ")
}

// firstLine is the last meaningful line of a command's output, or err,
// without addresses.
func firstLine(out string, err error) string {
	var last string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "go: downloading") {
			last = urls.ReplaceAllString(l, "(the module proxy)")
		}
	}
	switch {
	case last != "":
		return last
	case err != nil:
		return err.Error()
	}
	return "no output"
}

// startPeers starts each peer that was built, pinned to the server CPUs,
// verifying the tokens of issuer by its JWKS, and answers them as targets
// sent the verifier's request (fwd).
func (b *bench) startPeers(ctx context.Context, issuer string, fwd []string) []Target {
	var out []Target
	for _, pb := range b.rep.Peers {
		if pb.Bin == "" {
			continue
		}
		var t Target
		var err error
		switch pb.Name {
		case "oauth2-proxy":
			t, err = b.startOAuth2Proxy(ctx, pb.Bin, issuer)
		case "Ory Oathkeeper":
			t, err = b.startOathkeeper(ctx, pb.Bin, issuer)
		}
		if err != nil {
			b.note("peer %s did not start: %v", pb.Name, err)
			continue
		}
		t.Hdrs = fwd
		out = append(out, t)
	}
	return out
}

// startOAuth2Proxy runs oauth2-proxy as an nginx auth_request endpoint
// (/oauth2/auth: 202 or 401): the issuer is its OIDC provider (discovery,
// JWKS), and a Bearer token the issuer signed for the audience "jotguard" is
// a session (--skip-jwt-bearer-tokens, --extra-jwt-issuers).
func (b *bench) startOAuth2Proxy(ctx context.Context, bin, issuer string) (Target, error) {
	addr := freeAddr()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	p, err := b.procs.Start("oauth2-proxy", b.cfg.ServerCPUs, nil, bin,
		"--http-address="+addr, "--provider=oidc", "--oidc-issuer-url="+issuer,
		"--client-id=jotguard", "--client-secret=unused", "--cookie-secret="+base64.URLEncoding.EncodeToString(secret),
		"--cookie-secure=false", "--email-domain=*", "--upstream=static://200",
		"--skip-jwt-bearer-tokens=true", "--extra-jwt-issuers="+issuer+"=jotguard",
		"--insecure-oidc-allow-unverified-email=true", // the bench's users have not verified their email
		"--request-logging=false", "--auth-logging=false", "--standard-logging=false")
	if err != nil {
		return Target{}, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/ping", 30*time.Second); err != nil {
		return Target{}, err
	}
	p.Addr = addr
	return Target{Name: tOAuth2Proxy, URL: "http://" + addr + "/oauth2/auth"}, nil
}

// startOathkeeper runs Oathkeeper's decision API (what Traefik's
// forwardAuth or nginx's auth_request ask): one access rule for every GET
// of app.example, its jwt authenticator reading the issuer's JWKS
// (trusted_issuers, target_audience "jotguard", ES256), the allow
// authorizer and the noop mutator.
func (b *bench) startOathkeeper(ctx context.Context, bin, issuer string) (Target, error) {
	api, proxy := freeAddr(), freeAddr()
	dir := filepath.Join(b.logDir, "oathkeeper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Target{}, err
	}
	rules := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rules, []byte(`[{"id":"bench","match":{"url":"http://app.example/<**>","methods":["GET"]},`+
		`"authenticators":[{"handler":"jwt"}],"authorizer":{"handler":"allow"},"mutators":[{"handler":"noop"}]}]`), 0o644); err != nil {
		return Target{}, err
	}
	host := func(a string) string { h, _, _ := strings.Cut(a, ":"); return h }
	port := func(a string) string { _, p, _ := strings.Cut(a, ":"); return p }
	cfg := fmt.Sprintf(`serve:
  proxy: {host: %s, port: %s}
  api: {host: %s, port: %s}
access_rules:
  matching_strategy: glob
  repositories: ["file://%s"]
authenticators:
  jwt:
    enabled: true
    config:
      jwks_urls: ["%s/.well-known/jwks.json"]
      trusted_issuers: ["%s"]
      target_audience: [jotguard]
      allowed_algorithms: [ES256]
authorizers:
  allow: {enabled: true}
mutators:
  noop: {enabled: true}
log: {level: error}
`, host(proxy), port(proxy), host(api), port(api), rules, issuer, issuer)
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		return Target{}, err
	}
	p, err := b.procs.Start("oathkeeper", b.cfg.ServerCPUs, nil, bin, "serve", "--config", file)
	if err != nil {
		return Target{}, err
	}
	if err := waitHTTP(ctx, p, "http://"+api+"/health/ready", 30*time.Second); err != nil {
		return Target{}, err
	}
	p.Addr = api
	return Target{Name: tOathkeeper, URL: "http://" + api + "/decisions/app"}, nil
}

// LogoutCheck is the "logout → rejected?" column: per target, the status
// it answered a token whose session was logged out at the issuer, after
// the verifier had rejected it (or 5 s).
type LogoutCheck struct {
	Before, After map[string]int // status before the logout, and after
	Err           string
}

// isVerifier: a target that is bin/verifier, which reads the revocation
// feed.
func isVerifier(name string) bool { return name == tForward || name == tNoCache || name == tProxy }

// logoutCheck logs a session in, sends its token to every target (each
// should allow it), logs it out at the issuer, waits until the verifier
// rejects it, and sends it to every target again.
func (b *bench) logoutCheck(ctx context.Context, st *stack, targets []Target) *LogoutCheck {
	lc := &LogoutCheck{Before: map[string]int{}, After: map[string]int{}}
	e := st.ic.Email(997, 0)
	_ = st.ic.Register(ctx, e)
	sess, err := st.ic.Login(ctx, e)
	if err != nil {
		lc.Err = err.Error()
		return lc
	}
	hc := NewClient(4)
	ask := func(t Target) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
		for _, h := range t.Hdrs {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		req.Header.Set("Authorization", "Bearer "+sess.Access)
		resp, err := hc.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, t := range targets {
		lc.Before[t.Name] = ask(t)
	}
	if err := st.ic.Logout(ctx, sess.Access); err != nil {
		lc.Err = err.Error()
		return lc
	}
	for _, t := range targets {
		if !isVerifier(t.Name) {
			continue
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && ask(t) != http.StatusUnauthorized; {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, t := range targets {
		lc.After[t.Name] = ask(t)
	}
	return lc
}
