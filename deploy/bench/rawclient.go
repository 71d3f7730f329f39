package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// refresher is the /access_token workload's client: one keep-alive
// connection per worker, a request written as bytes, the response read by
// http.ReadResponse. net/http's Client (a transport, a connection pool and
// two goroutines per connection) cost about a quarter of the machine's
// CPU at this workload's rate, CPU the issuer could not use; this leaves the
// cores to the server, as wrk does for the verifier. The session comes from
// the response's headers (the access token in Authorization, the refresh
// token in Set-Cookie); the body is read and dropped.
type refresher struct {
	host  string
	conns []*rawConn
}

type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newRefresher(base string, workers int) (*refresher, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return &refresher{host: u.Host, conns: make([]*rawConn, workers)}, nil
}

// Refresh presents refresh as the cookie on worker w's connection.
func (r *refresher) Refresh(ctx context.Context, w int, refresh string) (Session, error) {
	rc := r.conns[w]
	if rc == nil {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", r.host)
		if err != nil {
			return Session{}, err
		}
		rc = &rawConn{c: c, br: bufio.NewReaderSize(c, 4096)}
		r.conns[w] = rc
	}
	s, err := rc.refresh(r.host, refresh)
	if err != nil {
		rc.c.Close()
		r.conns[w] = nil
	}
	return s, err
}

func (rc *rawConn) refresh(host, refresh string) (Session, error) {
	_ = rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "POST /access_token HTTP/1.1\r\nHost: " + host + "\r\nCookie: refresh_token=" + refresh + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(rc.c, req); err != nil {
		return Session{}, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return Session{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Session{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Session{}, fmt.Errorf("access_token: status %d: %.200s", resp.StatusCode, body)
	}
	var s Session
	if a, ok := strings.CutPrefix(resp.Header.Get("Authorization"), "Bearer "); ok {
		s.Access = a
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, "refresh_token="); ok {
			s.Refresh, _, _ = strings.Cut(v, ";")
		}
	}
	if s.Access == "" || s.Refresh == "" {
		return Session{}, fmt.Errorf("access_token: no Authorization header or refresh_token cookie in the answer")
	}
	if resp.Close {
		return s, fmt.Errorf("access_token: the issuer closed the connection")
	}
	return s, nil
}

func (r *refresher) Close() {
	for _, rc := range r.conns {
		if rc != nil {
			rc.c.Close()
		}
	}
}
