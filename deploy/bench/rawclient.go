package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// refresher is the /access_token workload's client: one keep-alive
// connection per worker, the request written from a reused buffer, the
// answer read by a minimal HTTP/1.1 parser (status line, the headers it
// needs, a Content-Length body skipped). net/http's Client (a transport, a
// connection pool and two goroutines per connection) cost about a quarter
// of the machine's CPU at this workload's rate, and http.ReadResponse still
// about 35 µs a refresh: CPU the issuer could not use. This leaves the cores
// to the server, as wrk does for the verifier. The session comes from the
// response's headers (the access token in Authorization, the
// refresh token in Set-Cookie); the body is dropped.
type refresher struct {
	host  string
	conns []*rawConn
}

type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
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
		rc = &rawConn{c: c, br: bufio.NewReaderSize(c, 8192)}
		r.conns[w] = rc
	}
	s, err := rc.refresh(r.host, refresh)
	if err != nil {
		rc.c.Close()
		r.conns[w] = nil
	}
	return s, err
}

var (
	hdrAuthorization = []byte("authorization: bearer ")
	hdrSetCookie     = []byte("set-cookie: refresh_token=")
	hdrLength        = []byte("content-length: ")
	hdrClose         = []byte("connection: close")
)

func (rc *rawConn) refresh(host, refresh string) (Session, error) {
	_ = rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	rc.req = append(append(append(append(rc.req[:0], "POST /access_token HTTP/1.1\r\nHost: "...), host...),
		"\r\nCookie: refresh_token="...), refresh...)
	rc.req = append(rc.req, "\r\nContent-Length: 0\r\n\r\n"...)
	if _, err := rc.c.Write(rc.req); err != nil {
		return Session{}, err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return Session{}, err
	}
	status := 0
	if len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) {
		status, _ = strconv.Atoi(string(line[9:12]))
	}
	var s Session
	length, closing := -1, false
	for {
		line, err = rc.br.ReadSlice('\n')
		if err != nil {
			return Session{}, fmt.Errorf("access_token: headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		switch {
		case hasPrefixFold(line, hdrAuthorization):
			s.Access = string(line[len(hdrAuthorization):])
		case hasPrefixFold(line, hdrSetCookie):
			v, _, _ := bytes.Cut(line[len(hdrSetCookie):], []byte(";"))
			s.Refresh = string(v)
		case hasPrefixFold(line, hdrLength):
			length, _ = strconv.Atoi(string(line[len(hdrLength):]))
		case hasPrefixFold(line, hdrClose):
			closing = true
		}
	}
	if length < 0 {
		return Session{}, fmt.Errorf("access_token: status %d without Content-Length", status)
	}
	var body []byte
	if status != http.StatusOK {
		body = make([]byte, length)
		if _, err := io.ReadFull(rc.br, body); err != nil {
			return Session{}, err
		}
		return Session{}, fmt.Errorf("access_token: status %d: %.200s", status, body)
	}
	if _, err := rc.br.Discard(length); err != nil {
		return Session{}, err
	}
	if s.Access == "" || s.Refresh == "" {
		return Session{}, fmt.Errorf("access_token: no Authorization header or refresh_token cookie in the answer")
	}
	if closing {
		return s, fmt.Errorf("access_token: the issuer closed the connection")
	}
	return s, nil
}

// hasPrefixFold reports whether line starts with prefix, given in lower
// case, ignoring the case of line.
func hasPrefixFold(line, prefix []byte) bool {
	return len(line) >= len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix)
}

func (r *refresher) Close() {
	for _, rc := range r.conns {
		if rc != nil {
			rc.c.Close()
		}
	}
}
