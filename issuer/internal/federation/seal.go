package federation

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// The flow cookie and the pending-link cookie are sealed: AES-256-GCM under
// a key derived with HKDF-SHA256 from JOTGUARD_KEY_ENCRYPTION_KEY, the
// cookie's name as additional data. The browser can neither read them
// (the state, the PKCE verifier, who is being linked) nor make one up,
// and every replica opens what another sealed.

var errSealed = errors.New("federation: cookie does not open: sealed with another key, altered, or not ours")

// sealer seals and opens cookie values.
type sealer struct{ aead cipher.AEAD }

func newSealer(kek []byte) (*sealer, error) {
	if len(kek) != 32 {
		return nil, errors.New("federation: JOTGUARD_KEY_ENCRYPTION_KEY (32 bytes) is required: it seals the sign-in cookies that every replica must read")
	}
	key, err := hkdf.Key(sha256.New, kek, nil, "jotguard federation cookies", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns v as the sealed value of cookie name.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("federation: seal %s: %w", name, err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open reads the sealed value of cookie name into v.
func (s *sealer) open(name, value string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < s.aead.NonceSize() {
		return errSealed
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errSealed
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errSealed
	}
	return nil
}

// The pending-link cookie holds, between the provider's callback and the
// form that confirms the account's password, the identity the provider
// vouched for and the account it is to be linked to. It is sent only to
// the account pages, and lives as long as a flow.
const (
	pendingCookie = "account_link"
	pendingPath   = "/account/"
)

type pending struct {
	Link    auth.PendingLink `json:"l"`
	Expires int64            `json:"e"`
}

// SetPendingLink remembers l in the browser for the link page.
func (f *Federation) SetPendingLink(w http.ResponseWriter, l auth.PendingLink) error {
	v, err := f.seal.seal(pendingCookie, pending{Link: l, Expires: f.cfg.Now().Add(FlowTTL).Unix()})
	if err != nil {
		return err
	}
	http.SetCookie(w, f.pendingCookie(v, int(FlowTTL/time.Second)))
	return nil
}

// PendingLink returns the browser's pending link; auth.ErrLinkExpired
// when it has none, it expired, or it does not open.
func (f *Federation) PendingLink(r *http.Request) (auth.PendingLink, error) {
	c, err := r.Cookie(pendingCookie)
	if err != nil || c.Value == "" {
		return auth.PendingLink{}, auth.ErrLinkExpired
	}
	var p pending
	if err := f.seal.open(pendingCookie, c.Value, &p); err != nil || f.cfg.Now().Unix() > p.Expires {
		return auth.PendingLink{}, auth.ErrLinkExpired
	}
	return p.Link, nil
}

// ClearPendingLink forgets the browser's pending link.
func (f *Federation) ClearPendingLink(w http.ResponseWriter) {
	http.SetCookie(w, f.pendingCookie("", -1))
}

// pendingCookie is HttpOnly and SameSite=Lax: it is set on the
// provider's redirect back (a cross-site navigation) and read by the link
// page the browser is sent on to.
func (f *Federation) pendingCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: pendingCookie, Value: value, Path: pendingPath, MaxAge: maxAge,
		HttpOnly: true, Secure: f.cfg.CookieSecure, SameSite: http.SameSiteLaxMode}
}
