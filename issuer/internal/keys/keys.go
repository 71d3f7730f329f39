// Package keys manages the issuer's signing keys: rotation policy,
// publish-ahead and retention, the JWKS, signing (auth.Signer) and the
// encryption of private keys at rest. The keys live in an auth.KeyStore
// shared by every replica (mongostore in production), under their kid, the
// RFC 7638 thumbprint of the public key. The store inserts a generation as a
// compare-and-swap, which makes bootstrap and rotation atomic across
// replicas: two replicas that race to create generation n end with one key,
// and the loser reloads.
//
// Lifecycle of a key: pending (in the JWKS, not signing yet: not_before =
// created + PublishAhead), active (the newest key whose not_before has
// passed signs), retired (superseded at retire_at = its successor's
// not_before, still in the JWKS until expires_at = retire_at + Retain, so
// every token it signed can still be verified), then deleted.
package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Errors. Each returned error wraps one of these with the operation, or an
// error of the KeyStore (auth.ErrUnavailable, auth.ErrConflict).
var (
	ErrUnsupportedAlg = errors.New("keys: unsupported signing algorithm")
	ErrEncryptionKey  = errors.New("keys: bad key encryption key")
	ErrNoKey          = errors.New("keys: no signing key")
)

// Key states, as KeyInfo.State reports them.
const (
	StatePending = "pending"
	StateActive  = "active"
	StateRetired = "retired"
)

// Config configures a Manager. Zero values get the defaults documented here.
type Config struct {
	Alg string // ES256 (default), EdDSA, RS256: for new keys; existing keys keep theirs
	// EncryptionKey is nil or 32 bytes: AES-256-GCM of the private keys at
	// rest. Nil stores them in plain PKCS8 (the issuer warns at start).
	EncryptionKey []byte
	// RotateEvery is the automatic rotation interval: a new key is added
	// when the newest one has signed this long. 0 (or negative) disables
	// automatic rotation; the issuer's configuration defaults it to 720h.
	RotateEvery time.Duration
	// PublishAhead is how long a new key is in the JWKS before it signs: at
	// least the verifiers' JWKS refresh interval plus ReloadEvery. Default 6m.
	PublishAhead time.Duration
	// Retain is how long a retired key stays in the JWKS after it stopped
	// signing: the maximum access-token TTL plus leeway. Default 6m.
	Retain      time.Duration
	ReloadEvery time.Duration // how often Run re-reads the keys, default 30s
	// ReloadTimeout bounds one round of Run (reload, and rotation when
	// due). Default 10s.
	ReloadTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// DefaultRotateEvery is the default rotation interval (30 days).
const DefaultRotateEvery = 720 * time.Hour

// KeyInfo describes one key for `issuer keys list`.
type KeyInfo struct {
	KID, Alg, State      string // State: pending, active, retired
	CreatedAt, NotBefore time.Time
	RetireAt, ExpiresAt  *time.Time
}

// key is a loaded key, ready to sign.
type key struct {
	kid       string
	gen       int64
	alg       string
	method    jwt.SigningMethod
	priv      crypto.Signer
	pubDER    []byte
	pubPEM    []byte
	jwk       jwk
	createdAt time.Time
	notBefore time.Time
	retireAt  *time.Time // effective: the stored one, or the successor's not_before
	expiresAt *time.Time
}

// keySet is an immutable snapshot; Sign reads it with one atomic load.
type keySet struct {
	keys     []*key // by gen, ascending; none past expiresAt when loaded
	maxGen   int64  // the newest generation stored
	jwks     []byte // pre-rendered for the keys not expired before jwksTill
	jwksTill time.Time
	algs     []string
}

// Manager signs with the current key and serves the public keys.
type Manager struct {
	store auth.KeyStore
	cfg   Config
	log   *slog.Logger

	set      atomic.Pointer[keySet]
	readyErr atomic.Pointer[error]
	reloadMu sync.Mutex // one reload at a time in this process
	refused  sync.Map   // kid → true: refused keys already logged
}

var _ auth.Signer = (*Manager)(nil)

// NewManager loads the keys from store, creating the first one if there is
// no usable key. It fails if the stored keys can't be decrypted with
// cfg.EncryptionKey.
func NewManager(ctx context.Context, store auth.KeyStore, cfg Config) (*Manager, error) {
	if cfg.Alg == "" {
		cfg.Alg = AlgES256
	}
	if _, err := signingMethod(cfg.Alg); err != nil {
		return nil, err
	}
	if cfg.EncryptionKey != nil && len(cfg.EncryptionKey) != 32 {
		return nil, fmt.Errorf("%w: want 32 bytes, got %d", ErrEncryptionKey, len(cfg.EncryptionKey))
	}
	if cfg.PublishAhead <= 0 {
		cfg.PublishAhead = 6 * time.Minute
	}
	if cfg.Retain <= 0 {
		cfg.Retain = 6 * time.Minute
	}
	if cfg.ReloadTimeout <= 0 {
		cfg.ReloadTimeout = 10 * time.Second
	}
	if cfg.ReloadEvery <= 0 {
		cfg.ReloadEvery = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{store: store, cfg: cfg, log: cfg.Logger}
	for attempt := 0; ; attempt++ {
		if err := m.reload(ctx); err != nil {
			return nil, err
		}
		if m.activeOrAny() != nil {
			m.switchAlg(ctx)
			return m, nil
		}
		if attempt == 3 {
			return nil, fmt.Errorf("%w: could not create the first key", ErrNoKey)
		}
		// No usable key: create one, active at once (no token exists yet).
		// A replica starting at the same time may win the race; then we
		// reload and use its key.
		now := m.now()
		if _, err := m.insertGen(ctx, m.set.Load().maxGen+1, now, now); err != nil && !errors.Is(err, auth.ErrConflict) {
			return nil, err
		}
	}
}

// switchAlg starts a rotation when the configured algorithm differs from
// the newest key's: the new key is published ahead like any other, so
// changing JOTGUARD_SIGNING_ALG breaks no token.
func (m *Manager) switchAlg(ctx context.Context) {
	s := m.set.Load()
	newest := s.keys[len(s.keys)-1]
	if newest.alg == m.cfg.Alg {
		return
	}
	info, err := m.rotateOnce(ctx, s.maxGen)
	switch {
	case errors.Is(err, auth.ErrConflict): // a replica rotated at the same time
		_ = m.reload(ctx)
	case err != nil:
		m.log.WarnContext(ctx, "signing keys: could not add a key for the configured algorithm; keeping the current keys",
			"alg", m.cfg.Alg, "current", newest.alg, "err", err)
	default:
		m.log.InfoContext(ctx, "signing keys: algorithm changed; the new key signs once published",
			"kid", info.KID, "alg", info.Alg, "signs_from", info.NotBefore)
	}
}

func (m *Manager) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Millisecond) }

// Sign signs claims with the active key: header {alg, kid, typ}. It does no
// I/O and takes no lock.
func (m *Manager) Sign(_ context.Context, typ string, claims jwt.Claims) (string, error) {
	k := m.activeOrAny()
	if k == nil {
		return "", fmt.Errorf("%w: %w", ErrNoKey, auth.ErrUnavailable)
	}
	t := jwt.NewWithClaims(k.method, claims)
	t.Header["kid"] = k.kid
	if typ != "" {
		t.Header["typ"] = typ
	}
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return s, nil
}

// BatchKey is the active key as a signer of revocation batches: its alg,
// kid and a function that signs with it. It does no I/O and takes no lock.
func (m *Manager) BatchKey() (revocation.BatchKey, error) {
	k := m.activeOrAny()
	if k == nil {
		return revocation.BatchKey{}, fmt.Errorf("%w: %w", ErrNoKey, auth.ErrUnavailable)
	}
	return revocation.BatchKey{Alg: k.alg, KID: k.kid, Sign: func(signed []byte) ([]byte, error) {
		sig, err := k.method.Sign(string(signed), k.priv)
		if err != nil {
			return nil, fmt.Errorf("keys: sign: %w", err)
		}
		return sig, nil
	}}, nil
}

// active returns the newest key whose not_before has passed.
func (s *keySet) active(now time.Time) *key {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].notBefore.After(now) {
			return s.keys[i]
		}
	}
	return nil
}

// activeOrAny is the signing key; if clocks disagree so that no key has
// started yet, the oldest known key.
func (m *Manager) activeOrAny() *key {
	s := m.set.Load()
	if s == nil || len(s.keys) == 0 {
		return nil
	}
	if k := s.active(m.cfg.Now()); k != nil {
		return k
	}
	return s.keys[0]
}

// JWKS returns {"keys":[...]}: every key that signs or may still verify
// (pending, active, retired but not expired).
func (m *Manager) JWKS() []byte {
	s := m.set.Load()
	if s == nil {
		return []byte(`{"keys":[]}`)
	}
	now := m.cfg.Now()
	if now.Before(s.jwksTill) {
		return s.jwks
	}
	// A retired key expired since the last render: render again.
	next := *s
	next.jwks, next.jwksTill = render(s.keys, now)
	m.set.CompareAndSwap(s, &next)
	return next.jwks
}

// PublicKeyPEM returns the PKIX PEM of the signing key.
func (m *Manager) PublicKeyPEM() []byte {
	k := m.activeOrAny()
	if k == nil {
		return nil
	}
	return k.pubPEM
}

// Algorithms lists the algorithms of the published keys.
func (m *Manager) Algorithms() []string {
	s := m.set.Load()
	if s == nil {
		return nil
	}
	return slices.Clone(s.algs)
}

// Ready reports whether the Manager can sign. A failed reload with keys
// still in memory is not an error: they keep signing.
func (m *Manager) Ready() error {
	if m.activeOrAny() == nil {
		if p := m.readyErr.Load(); p != nil {
			return fmt.Errorf("%w: %w", ErrNoKey, *p)
		}
		return ErrNoKey
	}
	return nil
}

// render builds the JWKS of the keys not yet expired at now, and says until
// when it holds.
func render(keys []*key, now time.Time) ([]byte, time.Time) {
	till := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	out := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range keys {
		if k.expiresAt != nil {
			if !now.Before(*k.expiresAt) {
				continue
			}
			if k.expiresAt.Before(till) {
				till = *k.expiresAt
			}
		}
		out.Keys = append(out.Keys, k.jwk)
	}
	b, _ := json.Marshal(out) // plain strings: can't fail
	return b, till
}

// Run reloads the keys every ReloadEvery, so a replica sees the others'
// rotations, and rotates when the newest key has signed for RotateEvery.
// It returns when ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := m.tick(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "signing keys: reload failed; keeping the keys in memory", "err", err)
		}
	}
}

// tick is one round of Run, bounded by ReloadTimeout so that a store that
// stops answering can't hold the loop (and the next rotation) forever.
func (m *Manager) tick(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ReloadTimeout)
	defer cancel()
	if err := m.reload(ctx); err != nil {
		return err
	}
	if m.cfg.RotateEvery <= 0 {
		return nil
	}
	s := m.set.Load()
	if len(s.keys) > 0 && m.cfg.Now().Before(s.keys[len(s.keys)-1].notBefore.Add(m.cfg.RotateEvery)) {
		return nil
	}
	info, err := m.rotateOnce(ctx, s.maxGen)
	switch {
	case errors.Is(err, auth.ErrConflict): // another replica rotated first
		return m.reload(ctx)
	case err != nil:
		return err
	}
	m.log.InfoContext(ctx, "signing keys: rotated", "kid", info.KID, "alg", info.Alg, "signs_from", info.NotBefore)
	return nil
}

// Rotate adds a new key that signs from now + PublishAhead and schedules
// the retirement of the key before it.
func (m *Manager) Rotate(ctx context.Context) (KeyInfo, error) {
	for range 5 {
		if err := m.reload(ctx); err != nil {
			return KeyInfo{}, err
		}
		info, err := m.rotateOnce(ctx, m.set.Load().maxGen)
		if errors.Is(err, auth.ErrConflict) {
			continue // a replica rotated at the same time: go after its key
		}
		return info, err
	}
	return KeyInfo{}, fmt.Errorf("keys: rotate: too many concurrent rotations: %w", auth.ErrConflict)
}

// rotateOnce inserts generation prevGen+1 and retires prevGen.
// auth.ErrConflict means another replica created that generation first.
func (m *Manager) rotateOnce(ctx context.Context, prevGen int64) (KeyInfo, error) {
	now := m.now()
	nb := now.Add(m.cfg.PublishAhead)
	k, err := m.insertGen(ctx, prevGen+1, now, nb)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := m.store.Retire(ctx, prevGen, nb, nb.Add(m.cfg.Retain)); err != nil {
		// The new key exists; the reload derives the old key's retirement
		// from it, so this is not fatal.
		m.log.WarnContext(ctx, "signing keys: could not record the retirement of the previous key", "err", err)
	}
	if err := m.reload(ctx); err != nil {
		m.log.WarnContext(ctx, "signing keys: reload after rotation failed", "err", err)
	}
	return info(k, now), nil
}

// insertGen generates a key and stores it as generation gen;
// auth.ErrConflict when that generation exists.
func (m *Manager) insertGen(ctx context.Context, gen int64, now, notBefore time.Time) (auth.SigningKey, error) {
	priv, err := generate(m.cfg.Alg)
	if err != nil {
		return auth.SigningKey{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return auth.SigningKey{}, fmt.Errorf("keys: marshal public key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return auth.SigningKey{}, fmt.Errorf("keys: marshal private key: %w", err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return auth.SigningKey{}, err
	}
	k := auth.SigningKey{KID: kid, Gen: gen, Alg: m.cfg.Alg, PublicKey: pubDER, PrivateKey: privDER,
		CreatedAt: now, NotBefore: notBefore}
	if m.cfg.EncryptionKey != nil {
		if k.PrivateKey, err = seal(m.cfg.EncryptionKey, kid, privDER); err != nil {
			return auth.SigningKey{}, fmt.Errorf("keys: encrypt: %w", err)
		}
		k.Encrypted = true
	}
	if err := m.store.Insert(ctx, k); err != nil {
		return auth.SigningKey{}, fmt.Errorf("keys: insert generation %d: %w", gen, err)
	}
	return k, nil
}

// errRefused: a stored key that must not be used, whatever else is stored.
var errRefused = errors.New("keys: refusing a stored key")

// refuse logs a refused key once per process.
func (m *Manager) refuse(kid string, err error) {
	if _, seen := m.refused.LoadOrStore(kid, true); !seen {
		m.log.Error("signing keys: refusing a stored key; it neither signs nor enters the JWKS", "kid", kid, "err", err)
	}
}

// reload reads every key, drops the expired ones, and publishes a new
// snapshot. Keys already loaded are not decrypted and parsed again.
func (m *Manager) reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	err := m.load(ctx)
	if err != nil {
		m.readyErr.Store(&err)
	} else {
		m.readyErr.Store(nil)
	}
	return err
}

func (m *Manager) load(ctx context.Context) error {
	now := m.now()
	if err := m.store.DeleteExpired(ctx, now); err != nil {
		return fmt.Errorf("keys: delete expired keys: %w", err)
	}
	docs, err := m.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	old := map[string]*key{}
	if s := m.set.Load(); s != nil {
		for _, k := range s.keys {
			old[k.kid] = k
		}
	}
	var keys []*key
	for i, d := range docs {
		retire, expires := d.RetireAt, d.ExpiresAt
		if retire == nil && i+1 < len(docs) { // the successor's not_before, if recording it failed
			r := docs[i+1].NotBefore
			e := r.Add(m.cfg.Retain)
			retire, expires = &r, &e
		}
		if expires != nil && !now.Before(*expires) {
			continue
		}
		var k key
		if o, ok := old[d.KID]; ok && o.gen == d.Gen {
			k = *o
		} else if k, err = m.parse(d); errors.Is(err, errRefused) {
			m.refuse(d.KID, err)
			continue // neither signs nor enters the JWKS
		} else if err != nil {
			return err
		}
		k.retireAt, k.expiresAt = retire, expires
		keys = append(keys, &k)
	}
	s := &keySet{keys: keys}
	if len(docs) > 0 {
		s.maxGen = docs[len(docs)-1].Gen
	}
	s.jwks, s.jwksTill = render(keys, now)
	for _, k := range keys {
		if !slices.Contains(s.algs, k.alg) {
			s.algs = append(s.algs, k.alg)
		}
	}
	m.set.Store(s)
	return nil
}

func (m *Manager) parse(d auth.SigningKey) (key, error) {
	method, err := signingMethod(d.Alg)
	if err != nil {
		return key{}, fmt.Errorf("keys: key %s: %w", d.KID, err)
	}
	der := d.PrivateKey
	if d.Encrypted {
		if m.cfg.EncryptionKey == nil {
			return key{}, fmt.Errorf("%w: signing key %s is encrypted and JOTGUARD_KEY_ENCRYPTION_KEY is not set", ErrEncryptionKey, d.KID)
		}
		if der, err = open(m.cfg.EncryptionKey, d.KID, d.PrivateKey); err != nil {
			return key{}, fmt.Errorf("%w: JOTGUARD_KEY_ENCRYPTION_KEY does not decrypt signing key %s (wrong key?)", ErrEncryptionKey, d.KID)
		}
	} else if m.cfg.EncryptionKey != nil {
		// Every key this issuer writes is encrypted: a plaintext key was
		// written by someone else (or before encryption was turned on), and
		// whoever could write it may hold its private half.
		return key{}, fmt.Errorf("%w: signing key %s is stored unencrypted although JOTGUARD_KEY_ENCRYPTION_KEY is set", errRefused, d.KID)
	}
	priv, err := parsePrivate(d.Alg, der)
	if err != nil {
		return key{}, fmt.Errorf("keys: key %s: private key: %w", d.KID, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return key{}, fmt.Errorf("keys: key %s: %w", d.KID, err)
	}
	j, err := publicJWK(priv.Public())
	if err != nil {
		return key{}, fmt.Errorf("keys: key %s: %w", d.KID, err)
	}
	j.Kid, j.Use, j.Alg = d.KID, "sig", d.Alg
	return key{kid: d.KID, gen: d.Gen, alg: d.Alg, method: method, priv: priv, pubDER: pubDER, pubPEM: pemOf(pubDER), jwk: j,
		createdAt: d.CreatedAt, notBefore: d.NotBefore}, nil
}

// List returns the stored keys, oldest first, with their state now.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	docs, err := m.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	now := m.now()
	infos := make([]KeyInfo, 0, len(docs))
	for i, d := range docs {
		if d.RetireAt == nil && i+1 < len(docs) {
			r := docs[i+1].NotBefore
			e := r.Add(m.cfg.Retain)
			d.RetireAt, d.ExpiresAt = &r, &e
		}
		if d.ExpiresAt != nil && !now.Before(*d.ExpiresAt) {
			continue // expired: deleted at the next reload
		}
		infos = append(infos, info(d, now))
	}
	// Only the newest started key is active; older started keys are retired.
	active := -1
	for i := range infos {
		if infos[i].State == StateActive {
			active = i
		}
	}
	for i := range infos {
		if infos[i].State == StateActive && i != active {
			infos[i].State = StateRetired
		}
	}
	return infos, nil
}

func info(d auth.SigningKey, now time.Time) KeyInfo {
	st := StateActive
	switch {
	case d.NotBefore.After(now):
		st = StatePending
	case d.RetireAt != nil && !d.RetireAt.After(now):
		st = StateRetired
	}
	return KeyInfo{KID: d.KID, Alg: d.Alg, State: st, CreatedAt: d.CreatedAt, NotBefore: d.NotBefore,
		RetireAt: d.RetireAt, ExpiresAt: d.ExpiresAt}
}
