package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/jotguard/jotguard/sdk"
)

// Service accounts: their token source (the client credentials grant) and
// token introspection.

// ClientCredentials returns the golang.org/x/oauth2/clientcredentials
// configuration of a service account at this issuer: the token endpoint,
// with the id and secret sent by HTTP Basic. Its Token, TokenSource and
// Client work as with any OAuth 2.0 server; ServiceTokenSource wires this
// Client's http.Client in.
func (c *Client) ClientCredentials(clientID, clientSecret string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret,
		TokenURL: c.url("/oauth/token"), AuthStyle: oauth2.AuthStyleInHeader}
}

// ServiceTokenSource returns an oauth2.TokenSource of a service account's
// access tokens: it keeps the last token and asks for a new one (the client
// credentials grant) shortly before it expires. Requests go through this
// Client's http.Client; ctx bounds them and must outlive the source.
// oauth2.NewClient(ctx, src) is an *http.Client that sends them.
func (c *Client) ServiceTokenSource(ctx context.Context, clientID, clientSecret string) oauth2.TokenSource {
	return c.ClientCredentials(clientID, clientSecret).TokenSource(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
}

// Introspect asks the issuer about token (RFC 7662), authenticated as the
// service account clientID. An inactive token (invalid, expired, revoked,
// its session or service account gone) is Active false and no error. A
// verifier answers the same at /authz/introspect from its local state,
// without calling the issuer.
func (c *Client) Introspect(ctx context.Context, clientID, clientSecret, token string) (*sdk.Introspection, error) {
	body := strings.NewReader(url.Values{"token": {token}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/oauth/introspect"), body)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret)) // RFC 6749 §2.3.1
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspect: %w", problemFrom(res, data))
	}
	var in sdk.Introspection
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("introspect: decode the answer: %w", err)
	}
	return &in, nil
}

// url is the absolute URL of path on the issuer.
func (c *Client) url(path string) string {
	if c.base.Scheme == "invalid" {
		return "invalid:" + path
	}
	u := c.base.JoinPath()
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+path, ""
	return u.String()
}
