// Package proxy is the verifier's reverse-proxy mode (JOTGUARD_UPSTREAM):
// every request is checked, then proxied with the identity headers set and
// every client-sent X-Auth-Request-* header removed. Requests under a public
// path prefix pass without a token (their spoofed headers are removed too).
// The Authorization header is forwarded: the upstream may verify again.
package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/verifier/internal/authz"
)

// Options configures a Proxy.
type Options struct {
	Upstream    *url.URL       // required
	Checker     *authz.Checker // required
	PublicPaths []string       // prefixes, each starting with "/"
	Transport   http.RoundTripper
	Logger      *slog.Logger
}

// Proxy is the checking reverse proxy.
type Proxy struct {
	check  *authz.Checker
	public []string
	rp     *httputil.ReverseProxy
	log    *slog.Logger
}

// New returns a Proxy.
func New(o Options) (*Proxy, error) {
	switch {
	case o.Upstream == nil:
		return nil, errors.New("proxy: Options.Upstream is required")
	case o.Checker == nil:
		return nil, errors.New("proxy: Options.Checker is required")
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
	p := &Proxy{check: o.Checker, log: o.Logger}
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
			p.log.WarnContext(r.Context(), "upstream unavailable", "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return p, nil
}

// ServeHTTP checks r (unless its path is public) and proxies it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.isPublic(r.URL) {
		p.check.Observe("public")
		p.rp.ServeHTTP(w, r)
		return
	}
	c, err := p.check.Check(r.Context(), r.Header, nil)
	if err != nil {
		sdk.WriteError(w, r, err)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(sdk.ContextWithClaims(r.Context(), c)))
}

// isPublic matches whole path segments ("/static" covers "/static" and
// "/static/x", not "/staticky") on a path that is already clean: a path
// with dot segments, doubled slashes or escaped characters the upstream
// could normalise differently is never public.
func (p *Proxy) isPublic(u *url.URL) bool {
	if len(p.public) == 0 || u.RawPath != "" {
		return false
	}
	pth := u.Path
	if c := path.Clean(pth); c != pth && c+"/" != pth {
		return false
	}
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
