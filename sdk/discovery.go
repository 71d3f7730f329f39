package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// discoverJWKS reads the issuer's OpenID Provider metadata
// (Issuer + "/.well-known/openid-configuration") and returns its jwks_uri.
// Per OpenID Connect Discovery §4.3 the document's issuer must equal the
// configured one exactly, or a different party could name the keys.
func discoverJWKS(ctx context.Context, client *http.Client, issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	switch {
	case meta.Issuer != issuer:
		return "", fmt.Errorf("%w: %s names issuer %q, want %q", errDiscoveryMismatch, u, meta.Issuer, issuer)
	case !strings.HasPrefix(meta.JWKSURI, "https://") && !strings.HasPrefix(meta.JWKSURI, "http://"):
		return "", fmt.Errorf("%w: %s has no usable jwks_uri (%q)", errDiscoveryMismatch, u, meta.JWKSURI)
	}
	return meta.JWKSURI, nil
}

var errDiscoveryMismatch = errors.New("sdk: issuer discovery")
