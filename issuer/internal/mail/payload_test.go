package mail

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"testing"
	"time"
)

func TestPayloadSealed(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	q := queued{Template: "reset_password", To: "ada@example.com", Subject: "Reset your password",
		Text: "open " + testLink, HTML: `<a href="` + testLink + `">`, MessageID: "m1@localhost",
		Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

	sealed, err := encode(q, aead)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"tok_AbC-123", "ada@example.com", "Reset your password"} {
		if bytes.Contains(sealed, []byte(clear)) {
			t.Errorf("the sealed payload shows %q", clear)
		}
	}
	if got, err := decode(sealed, aead); err != nil || got != q {
		t.Fatalf("decode(sealed) = %+v, %v; want %+v", got, err, q)
	}
	// Two seals of one message differ (a fresh nonce each).
	if again, _ := encode(q, aead); bytes.Equal(again, sealed) {
		t.Error("two seals of one message are equal")
	}

	other, _ := newAEAD(bytes.Repeat([]byte{8}, 32))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string]struct {
		p    []byte
		aead cipher.AEAD
	}{
		"no key":    {sealed, nil},
		"other key": {sealed, other},
		"tampered":  {tampered, aead},
		"truncated": {sealed[:len(sealedPrefix)+3], aead},
	} {
		if _, err := decode(c.p, c.aead); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: decode error %v, want ErrSealed", name, err)
		}
	}

	// A message queued in the clear (before a key was set) is still read.
	plain, err := encode(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decode(plain, aead); err != nil || got != q {
		t.Fatalf("decode(plain) with a key = %+v, %v", got, err)
	}
	if _, err := newAEAD(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}
