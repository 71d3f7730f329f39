package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

const benchPassword = "bench-password-0123456789"

// IssuerClient calls bin/issuer's browser API.
type IssuerClient struct {
	Base string
	HTTP *http.Client
	Tag  string // makes its emails unique across bench runs against one database
}

func (c *IssuerClient) post(ctx context.Context, path string, body any, hdr http.Header) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func want(resp *http.Response, body []byte, status int, what string) error {
	if resp.StatusCode != status {
		return fmt.Errorf("%s: status %d: %.200s", what, resp.StatusCode, body)
	}
	return nil
}

func (c *IssuerClient) Register(ctx context.Context, email string) error {
	resp, b, err := c.post(ctx, "/register", map[string]string{"email": email, "password": benchPassword}, nil)
	if err != nil {
		return err
	}
	return want(resp, b, http.StatusCreated, "register")
}

// Session is what a login or refresh returns.
type Session struct {
	Access  string
	Refresh string // the refresh_token cookie value
}

func session(resp *http.Response, b []byte) (Session, error) {
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.AccessToken == "" {
		return Session{}, fmt.Errorf("no access_token in %.200s", b)
	}
	s := Session{Access: body.AccessToken}
	for _, ck := range resp.Cookies() {
		if ck.Name == "refresh_token" {
			s.Refresh = ck.Value
		}
	}
	if s.Refresh == "" {
		return Session{}, fmt.Errorf("no refresh_token cookie")
	}
	return s, nil
}

func (c *IssuerClient) Login(ctx context.Context, email string) (Session, error) {
	resp, b, err := c.post(ctx, "/login", map[string]string{"email": email, "password": benchPassword}, nil)
	if err != nil {
		return Session{}, err
	}
	if err := want(resp, b, http.StatusOK, "login"); err != nil {
		return Session{}, err
	}
	return session(resp, b)
}

// Refresh presents the refresh cookie, as a browser does, and returns the
// rotated session.
func (c *IssuerClient) Refresh(ctx context.Context, refresh string) (Session, error) {
	resp, b, err := c.post(ctx, "/access_token", nil, http.Header{"Cookie": {"refresh_token=" + refresh}})
	if err != nil {
		return Session{}, err
	}
	if err := want(resp, b, http.StatusOK, "access_token"); err != nil {
		return Session{}, err
	}
	return session(resp, b)
}

func (c *IssuerClient) Logout(ctx context.Context, access string) error {
	resp, b, err := c.post(ctx, "/logout", nil, http.Header{"Authorization": {"Bearer " + access}})
	if err != nil {
		return err
	}
	return want(resp, b, http.StatusNoContent, "logout")
}

// Email is the email of user i of run.
func (c *IssuerClient) Email(run, i int) string {
	return fmt.Sprintf("u%d-%d-%s@bench.example", run, i, c.Tag)
}
