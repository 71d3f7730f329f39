package keys

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseEncryptionKey reads JOTGUARD_KEY_ENCRYPTION_KEY: 32 bytes written
// as 64 hex digits or as base64 (standard or URL alphabet, padded or not),
// e.g. from `openssl rand -base64 32`. An empty string gives nil: keys are
// stored unencrypted (NewManager warns).
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("%w: decodes to %d bytes, want 32 (openssl rand -base64 32)", ErrEncryptionKey, len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: want 32 bytes as base64 or 64 hex digits (openssl rand -base64 32)", ErrEncryptionKey)
}
