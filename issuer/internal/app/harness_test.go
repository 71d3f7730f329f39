package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/app"
	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// issuer is one app.Run on 127.0.0.1:0 against the dev stack, with its own
// MongoDB database and Redis key prefix.
type issuer struct {
	t    *testing.T
	base string
	cfg  config.Config
	http *http.Client
	stop func() // ends an in-process issuer and drops its data (unless keepData); idempotent
	// keepData, set before stop, leaves the MongoDB database and the Redis
	// keys for an issuer started next on the same ones.
	keepData bool
}

const testIssuer = "http://issuer.test"

func randName() string { return "test_" + strings.ToLower(rand.Text()) }

// startIssuer runs the issuer and waits until it is ready; settings
// override the test defaults, then edit changes what no setting can. It
// stops at the end of t, or at s.stop.
func startIssuer(t *testing.T, settings map[string]string, edit ...func(*config.Config)) *issuer {
	t.Helper()
	s := runIssuer(t, settings, nil, edit...)
	s.waitReady()
	return s
}

// runIssuer is startIssuer without the wait for readiness: it returns once
// the issuer listens. Its log (warnings and up) also goes to logs, if set.
func runIssuer(t *testing.T, settings map[string]string, logs io.Writer, edit ...func(*config.Config)) *issuer {
	t.Helper()
	env := issuerEnv(t, settings)
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- app.Run(ctx, cfg, log, func(a string) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("app.Run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("app.Run did not start listening")
	}
	s := newClient(t, base, cfg)
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			// A connection the client dialed but never used stays "new", not
			// idle, to Shutdown for 5 s: close ours first.
			s.http.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app.Run returned %v", err)
			}
			if !s.keepData {
				dropData(cfg)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// issuerEnv is the test defaults (the dev stack's servers, a fresh MongoDB
// database and Redis prefix), overridden by settings.
func issuerEnv(t *testing.T, settings map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"JOTGUARD_MONGO_URI":        sdktest.RequireEnv(t, "JOTGUARD_MONGO_URI"),
		"JOTGUARD_REDIS_URL":        sdktest.RequireEnv(t, "JOTGUARD_REDIS_URL"),
		"JOTGUARD_KAFKA_BROKERS":    sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"),
		"JOTGUARD_REVOCATION_TOPIC": os.Getenv("JOTGUARD_REVOCATION_TOPIC"),
		"JOTGUARD_MONGO_DB":         randName(),
		"JOTGUARD_REDIS_PREFIX":     randName(),
		"JOTGUARD_ISSUER":           testIssuer,
		"JOTGUARD_ISSUER_ADDR":      "127.0.0.1:0",
		"JOTGUARD_ARGON2_MEMORY":    "64",
		"JOTGUARD_ARGON2_TIME":      "1",
		"JOTGUARD_LOG_LEVEL":        "error",
		"JOTGUARD_ALLOWED_ORIGINS":  "https://app.example.com",
		"JOTGUARD_SHUTDOWN_GRACE":   "5s",
		"JOTGUARD_DRAIN_DELAY":      "0s",

		// Generous per-network limits: every test client is on loopback.
		// The account limits keep their defaults.
		"JOTGUARD_RATE_LIMITS": "credentials=100000/1m,refresh=100000/1m,revoke=100000/1m",
	}
	for k, v := range settings {
		env[k] = v
	}
	return env
}

// newClient returns the test's client of the issuer at base, started with cfg.
func newClient(t *testing.T, base string, cfg config.Config) *issuer {
	return &issuer{t: t, base: base, cfg: cfg, stop: func() {}, http: &http.Client{Timeout: 15 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// waitReady waits until /readyz answers 200: backends reachable, keys
// loaded, the revocation replay done.
func (s *issuer) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r := s.do("GET", "/readyz", ""); r.StatusCode != http.StatusOK; r = s.do("GET", "/readyz", "") {
		if time.Now().After(deadline) {
			s.t.Fatalf("issuer not ready after 30 s: %d %s", r.StatusCode, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issuerDB is the MongoDB database of an issuer started with cfg, for the
// test to look into; its client is closed when t ends.
func issuerDB(t *testing.T, cfg config.Config) *mongo.Database {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	return mc.Database(cfg.MongoDB)
}

// dropData deletes the MongoDB database and the Redis keys of cfg.
func dropData(cfg config.Config) {
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI))
	if err == nil {
		_ = mc.Database(cfg.MongoDB).Drop(context.Background())
		_ = mc.Disconnect(context.Background())
	}
	if o, err := redis.ParseURL(cfg.RedisURL); err == nil {
		rdb := redis.NewClient(o)
		keys, _ := rdb.Keys(context.Background(), "*"+cfg.RedisPrefix+"*").Result()
		for _, k := range keys {
			rdb.Del(context.Background(), k)
		}
		_ = rdb.Close()
	}
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", r.Request.URL.Path, r.body, err)
	}
	return m
}

// code is the problem+json code of an error response.
func (r resp) code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.body, &p)
	return p.Code
}

func (r resp) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a request; hdr holds extra headers ("Cookie", "Authorization", …).
func (s *issuer) do(method, path, body string, hdr ...string) resp {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	checkOpenAPI(s.t, req, res, b)
	return resp{res, b}
}

func (s *issuer) form(path string, v url.Values, hdr ...string) resp {
	s.t.Helper()
	return s.do(http.MethodPost, path, v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
}

// register creates a user with a fresh email and returns the email.
func (s *issuer) register(password string) string {
	s.t.Helper()
	email := strings.ToLower(rand.Text()) + "@example.com"
	r := s.do("POST", "/register", `{"email":"`+email+`","password":"`+password+`"}`)
	if r.StatusCode != http.StatusCreated {
		s.t.Fatalf("register: %d %s", r.StatusCode, r.body)
	}
	return email
}

// login logs in and returns the access token and the refresh cookie value.
func (s *issuer) login(email, password string) (string, string) {
	s.t.Helper()
	r := s.do("POST", "/login", `{"email":"`+email+`","password":"`+password+`"}`)
	if r.StatusCode != http.StatusOK {
		s.t.Fatalf("login: %d %s", r.StatusCode, r.body)
	}
	at, _ := r.json(s.t)["access_token"].(string)
	c := r.cookie("refresh_token")
	if at == "" || c == nil {
		s.t.Fatalf("login answered no tokens: %s", r.body)
	}
	return at, c.Value
}

func (s *issuer) refresh(rt string) resp {
	s.t.Helper()
	return s.do("POST", "/access_token", "", "Cookie", "refresh_token="+rt)
}

// verify checks an access token against the served JWKS, as a verifier would.
func (s *issuer) verify(token string) (*sdk.Claims, *jwt.Token) {
	s.t.Helper()
	kf := s.keyfunc()
	var c sdk.Claims
	tok, err := jwt.ParseWithClaims(token, &c, kf.Keyfunc,
		jwt.WithValidMethods([]string{"ES256", "EdDSA", "RS256"}), jwt.WithIssuer(testIssuer),
		jwt.WithAudience("jotguard"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		s.t.Fatalf("access token does not verify against the served JWKS: %v", err)
	}
	return &c, tok
}

func (s *issuer) keyfunc() keyfunc.Keyfunc {
	s.t.Helper()
	kf, err := keyfunc.NewJWKSetJSON(s.jwks())
	if err != nil {
		s.t.Fatalf("jwks: %v", err)
	}
	return kf
}

// keys is the served JWKS, as of now, as an sdk key source.
func (s *issuer) keys() sdk.KeySource {
	s.t.Helper()
	doc := s.jwks()
	return sdk.NewLocalKeys(func() []byte { return doc })
}

func (s *issuer) jwks() []byte {
	s.t.Helper()
	r := s.do("GET", "/.well-known/jwks.json", "")
	if r.StatusCode != 200 {
		s.t.Fatalf("jwks: %d", r.StatusCode)
	}
	return r.body
}

// parallel runs f n times at once.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() { <-start; f(i) })
	}
	close(start)
	wg.Wait()
}
