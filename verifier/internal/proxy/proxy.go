// Package proxy is the verifier's reverse-proxy mode (JOTGUARD_UPSTREAM):
// every request is checked, then proxied with the identity headers set and
// every client-sent X-Auth-Request-* header removed. Requests under a public
// path prefix pass without a token (their spoofed headers are removed too).
// The Authorization header is forwarded: the upstream may verify again.
//
// The upstream receives the path as the client sent it, so a path that
// servers may read differently (reqpath) is refused with 400 before
// anything else is decided about it.
//
// An upgraded connection (a websocket) lives only as long as its token is
// accepted: the token is verified again every RecheckEvery, and the tunnel
// is closed on the first refusal (expiry, revocation).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/verifier/internal/authz"
	"github.com/jotguard/jotguard/verifier/internal/reqpath"
)

// Options configures a Proxy.
type Options struct {
	Upstream    *url.URL       // required
	Checker     *authz.Checker // required
	PublicPaths []string       // prefixes, each starting with "/"
	// BodyTimeout is the longest wait for the next bytes of a request
	// body; a body that stalls longer is cut (408). 0: no bound.
	BodyTimeout time.Duration
	Transport   http.RoundTripper
	Logger      *slog.Logger
}

// Proxy is the checking reverse proxy.
type Proxy struct {
	check       *authz.Checker
	public      []string
	bodyTimeout time.Duration
	rp          *httputil.ReverseProxy
	log         *slog.Logger
	closing     chan struct{} // closed by CloseUpgraded
	closeOnce   sync.Once
}

// New returns a Proxy.
func New(o Options) (*Proxy, error) {
	switch {
	case o.Upstream == nil:
		return nil, errors.New("proxy: Options.Upstream is required")
	case o.Checker == nil:
		return nil, errors.New("proxy: Options.Checker is required")
	}
	for _, pp := range o.PublicPaths {
		if err := reqpath.Check(pp); err != nil || !strings.HasPrefix(pp, "/") {
			return nil, fmt.Errorf("proxy: public path %q: must start with / and be unambiguous (%v)", pp, err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64 // a sidecar talks to one upstream
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = 0 // the upstream decides how long it thinks
		o.Transport = t
	}
	p := &Proxy{check: o.Checker, bodyTimeout: o.BodyTimeout, log: o.Logger, closing: make(chan struct{})}
	for _, pp := range o.PublicPaths {
		p.public = append(p.public, strings.TrimSuffix(pp, "/"))
	}
	up := o.Upstream
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
			for k := range pr.Out.Header {
				if authz.IsIdentityHeader(k) {
					delete(pr.Out.Header, k)
				}
			}
			if c, ok := sdk.ClaimsFromContext(pr.In.Context()); ok {
				authz.SetIdentity(pr.Out.Header, c)
			}
		},
		Transport:  o.Transport,
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if stalled(r) { // the client's fault, not the upstream's
				p.log.InfoContext(r.Context(), "request body stalled", "timeout", p.bodyTimeout.String())
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusRequestTimeout)
				return
			}
			p.log.WarnContext(r.Context(), "upstream unavailable", "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return p, nil
}

// ServeHTTP bounds how long r's body may stall, refuses an ambiguous path,
// then checks r (unless its path is public) and proxies it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.bodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		b := newIdleBody(w, r.Body, p.bodyTimeout)
		defer b.finish()
		// the ErrorHandler sees the body through ReverseProxy's wrapper: it finds b in the context
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
		r.Body = b
	}
	pth := r.URL.EscapedPath() // what the upstream will receive; no allocation for a plain path
	if err := reqpath.Check(pth); err != nil {
		p.check.RefusePath(w, r, err, pth, http.StatusBadRequest)
		return
	}
	if p.isPublic(pth) {
		p.check.Observe("public")
		p.rp.ServeHTTP(w, r)
		return
	}
	c, err := p.check.Check(r.Context(), r.Header, nil)
	if err != nil {
		sdk.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if isUpgrade(r) {
		var stop func()
		ctx, stop = p.watchUpgrade(r)
		defer stop()
	}
	p.rp.ServeHTTP(w, r.WithContext(sdk.ContextWithClaims(ctx, c)))
}

// isPublic matches whole path segments ("/static" covers "/static" and
// "/static/x", not "/staticky") of pth, the path as sent (percent-encoded)
// and already found unambiguous by reqpath: no dot segment or encoded
// separator can take it out of the prefix at the upstream. It compares the
// encoded form, so "/%73tatic/x" is not public: an upstream that does not
// decode before routing would not see /static either.
func (p *Proxy) isPublic(pth string) bool {
	for _, pub := range p.public {
		if pub == "" { // "/" was configured: everything
			return true
		}
		if strings.HasPrefix(pth, pub) && (len(pth) == len(pub) || pth[len(pub)] == '/') {
			return true
		}
	}
	return false
}

// bufferPool recycles the 32 KiB buffers ReverseProxy copies bodies with;
// without one it allocates a fresh buffer per response, which under load
// is most of the proxy's garbage.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
