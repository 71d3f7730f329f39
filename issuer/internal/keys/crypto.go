package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Supported algorithms. HS* is never supported: verifiers hold only public keys.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case AlgES256:
		return jwt.SigningMethodES256, nil
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA, nil
	case AlgRS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("%w: %q (want ES256, EdDSA or RS256)", ErrUnsupportedAlg, alg)
}

// generate makes a fresh private key for alg.
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
}

// jwk is the public JSON Web Key of one signing key (RFC 7517/7518/8037).
type jwk struct {
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

var b64 = base64.RawURLEncoding

// publicJWK renders pub without kid, use and alg.
func publicJWK(pub crypto.PublicKey) (jwk, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return jwk{}, fmt.Errorf("%w: EC curve %s", ErrUnsupportedAlg, k.Curve.Params().Name)
		}
		e, err := k.ECDH()
		if err != nil {
			return jwk{}, err
		}
		b := e.Bytes() // 0x04 || X || Y, fixed width
		return jwk{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(b[1:33]), Y: b64.EncodeToString(b[33:65])}, nil
	case ed25519.PublicKey:
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k)}, nil
	case *rsa.PublicKey:
		return jwk{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()),
			E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return jwk{}, fmt.Errorf("%w: public key %T", ErrUnsupportedAlg, pub)
}

// thumbprint is the RFC 7638 JWK thumbprint of pub, base64url: the kid.
func thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	// The required members only, in lexicographic order, no whitespace.
	var members []byte
	switch j.Kty {
	case "EC":
		members, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y})
	case "OKP":
		members, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X})
	case "RSA":
		members, err = json.Marshal(struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N})
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(members)
	return b64.EncodeToString(sum[:]), nil
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// seal encrypts a PKCS8 private key with AES-256-GCM; the kid is the
// additional data, so a ciphertext can't be moved to another key's document.
func seal(encKey []byte, kid string, plain []byte) ([]byte, error) {
	gcm, err := newGCM(encKey)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, []byte(kid)), nil
}

func open(encKey []byte, kid string, sealed []byte) ([]byte, error) {
	gcm, err := newGCM(encKey)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	n := gcm.NonceSize()
	return gcm.Open(nil, sealed[:n], sealed[n:], []byte(kid))
}

func newGCM(encKey []byte) (cipher.AEAD, error) {
	if len(encKey) != 32 {
		return nil, fmt.Errorf("%w: want 32 bytes, got %d", ErrEncryptionKey, len(encKey))
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// parsePrivate reads a PKCS8 key and checks that it fits alg.
func parsePrivate(alg string, der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key %T", ErrUnsupportedAlg, k)
	}
	switch s.(type) {
	case *ecdsa.PrivateKey:
		if alg == AlgES256 {
			return s, nil
		}
	case ed25519.PrivateKey:
		if alg == AlgEdDSA {
			return s, nil
		}
	case *rsa.PrivateKey:
		if alg == AlgRS256 {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: a %T key does not fit %s", ErrUnsupportedAlg, s, alg)
}
