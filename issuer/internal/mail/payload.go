package mail

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// queued is a rendered message as it waits in the outbox: everything the
// relay needs to send it, so that what was rendered is what goes out, even
// across a deploy that changes the templates.
type queued struct {
	Template  string    `json:"template"`
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	HTML      string    `json:"html"`
	MessageID string    `json:"message_id"` // the same on every attempt
	Date      time.Time `json:"date"`       // when Send was called
}

// A payload is the JSON of a queued message, or, when an encryption key is
// set, sealedPrefix followed by a 12-byte nonce and the AES-256-GCM
// ciphertext of that JSON. The key is derived with HKDF-SHA256 from
// JOTGUARD_KEY_ENCRYPTION_KEY, so mail and signing keys never share an AES
// key; the prefix is the additional data.
var sealedPrefix = []byte("jotguard-mail-aes256gcm-v1:")

// ErrSealed: a payload is encrypted and this process has no key that
// opens it (JOTGUARD_KEY_ENCRYPTION_KEY unset or different).
var ErrSealed = errors.New("mail: queued message is encrypted with another key (JOTGUARD_KEY_ENCRYPTION_KEY)")

// newAEAD derives the mail outbox key from the key encryption key.
func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("mail: the encryption key must be 32 bytes, got %d", len(kek))
	}
	key, err := hkdf.Key(sha256.New, kek, nil, "jotguard mail outbox", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// encode returns the payload of q, sealed when aead is set.
func encode(q queued, aead cipher.AEAD) ([]byte, error) {
	plain, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	if aead == nil {
		return plain, nil
	}
	out := make([]byte, 0, len(sealedPrefix)+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(out, sealedPrefix...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, sealedPrefix), nil
}

// decode reads a payload. Plain JSON is read whether or not a key is set,
// so that messages queued before the key was set still go out.
func decode(p []byte, aead cipher.AEAD) (queued, error) {
	var q queued
	if rest, ok := bytes.CutPrefix(p, sealedPrefix); ok {
		if aead == nil || len(rest) < aead.NonceSize() {
			return q, ErrSealed
		}
		plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], sealedPrefix)
		if err != nil {
			return q, ErrSealed
		}
		p = plain
	}
	if err := json.Unmarshal(p, &q); err != nil {
		return q, fmt.Errorf("mail: queued message unreadable: %w", err)
	}
	if q.To == "" || q.Subject == "" {
		return q, errors.New("mail: queued message has no recipient or subject")
	}
	return q, nil
}
