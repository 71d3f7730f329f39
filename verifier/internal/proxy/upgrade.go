package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jotguard/jotguard/verifier/internal/authz"
)

// RecheckEvery is how often the token of an upgraded connection (a
// websocket) is verified again while the connection is open.
const RecheckEvery = time.Second

// errShuttingDown ends upgraded connections when the server shuts down.
var errShuttingDown = errors.New("proxy: shutting down")

// watchUpgrade returns the context to proxy an upgrade request r with: it
// is cancelled, which makes ReverseProxy close both sides of the tunnel,
// as soon as r's token is no longer accepted (expired, revoked, or the
// revocation state unknown under the closed policy) or the proxy shuts
// down. The caller calls stop when the request is over.
func (p *Proxy) watchUpgrade(r *http.Request) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	go func() {
		t := time.NewTicker(RecheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.closing:
				cancel(errShuttingDown)
				return
			case <-t.C:
				if err := p.check.Recheck(ctx, r.Header); err != nil {
					p.log.InfoContext(ctx, "closing an upgraded connection: its token is no longer accepted",
						"reason", authz.Reason(err), "upgrade", r.Header.Get("Upgrade"))
					cancel(err)
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// CloseUpgraded ends every upgraded connection, now and from now on; the
// server calls it when it starts to shut down (http.Server does not track
// hijacked connections).
func (p *Proxy) CloseUpgraded() { p.closeOnce.Do(func() { close(p.closing) }) }

// isUpgrade reports whether r asks to switch protocols (Connection:
// upgrade and an Upgrade header), as ReverseProxy decides it.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
