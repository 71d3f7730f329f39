package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/jotguard/jotguard/issuer/internal/federation"
)

// oidcProvider is one entry of JOTGUARD_OIDC_PROVIDERS.
type oidcProvider struct {
	Name             string   `json:"name"`
	DisplayName      string   `json:"display_name"`
	Issuer           string   `json:"issuer"`
	ClientID         string   `json:"client_id"`
	ClientSecret     string   `json:"client_secret"`
	ClientSecretFile string   `json:"client_secret_file"`
	Scopes           []string `json:"scopes"`
}

// parseOIDCProviders reads JOTGUARD_OIDC_PROVIDERS: a JSON list of
// providers, or the path of a file that holds one.
func parseOIDCProviders(s string) ([]federation.ProviderConfig, error) {
	b := []byte(s)
	if !strings.HasPrefix(s, "[") {
		var err error
		if b, err = readSmallFile(s, 64<<10); err != nil {
			return nil, fmt.Errorf("want a JSON list or the path of a file holding one: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var list []oidcProvider
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("want a JSON list of {name, issuer, client_id, client_secret or client_secret_file, display_name, scopes}: %w", err)
	}
	out := make([]federation.ProviderConfig, 0, len(list))
	for i, p := range list {
		if err := federation.CheckName(p.Name); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		u, err := url.Parse(p.Issuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, fmt.Errorf("provider %s: issuer %q: want an https URL (http only on loopback)", p.Name, p.Issuer)
		}
		if p.ClientID == "" {
			return nil, fmt.Errorf("provider %s: client_id is required", p.Name)
		}
		secret := p.ClientSecret
		switch {
		case secret != "" && p.ClientSecretFile != "":
			return nil, fmt.Errorf("provider %s: client_secret and client_secret_file: want one", p.Name)
		case p.ClientSecretFile != "":
			f, err := readSmallFile(p.ClientSecretFile, 4<<10)
			if err != nil {
				return nil, fmt.Errorf("provider %s: client_secret_file: %w", p.Name, err)
			}
			if secret = strings.TrimSpace(string(f)); secret == "" {
				return nil, fmt.Errorf("provider %s: client_secret_file %s is empty", p.Name, p.ClientSecretFile)
			}
		}
		if len(p.DisplayName) > 64 || strings.ContainsFunc(p.DisplayName, unicode.IsControl) {
			return nil, fmt.Errorf("provider %s: display_name: want at most 64 characters, without control characters", p.Name)
		}
		out = append(out, federation.ProviderConfig{Name: p.Name, DisplayName: p.DisplayName, Issuer: p.Issuer,
			ClientID: p.ClientID, ClientSecret: secret, Scopes: p.Scopes})
	}
	if len(out) == 0 {
		return nil, errors.New("the list is empty: leave the variable unset for no provider")
	}
	return out, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
