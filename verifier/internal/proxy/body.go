package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// idleBody bounds how long a request body may stall: the connection's read
// deadline is set when the request arrives and pushed back before every
// read, so a body that keeps arriving, however slowly, is never cut, and a
// body that stops for longer than the timeout is. The first deadline also
// bounds a body that nobody reads (a 401, a 400): the server discards what
// is left of it before answering. At the end of the body the deadline is
// cleared, because the server's background read that follows (it notices a
// client that goes away) would cancel the request, a long response
// included, when it expires.
//
// http.Server.ReadTimeout would bound the whole body instead, and so cut
// long uploads.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration

	mu       sync.Mutex
	done     bool // the handler returned: the connection may serve another request
	timedOut bool
}

func newIdleBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration) *idleBody {
	b := &idleBody{ReadCloser: body, rc: http.NewResponseController(w), timeout: timeout}
	_ = b.rc.SetReadDeadline(time.Now().Add(timeout))
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.deadline(time.Now().Add(b.timeout)) {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.deadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.mu.Lock()
		b.timedOut = true
		b.mu.Unlock()
	}
	return n, err
}

// deadline sets the read deadline unless the handler has returned.
func (b *idleBody) deadline(t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	_ = b.rc.SetReadDeadline(t)
	return true
}

// finish is called when the handler returns: the transport may still be
// reading the body, but the connection is no longer this request's.
func (b *idleBody) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

type bodyKey struct{}

// stalled reports whether the body of the request r stems from (its
// context holds it) was cut for stalling.
func stalled(r *http.Request) bool {
	b, ok := r.Context().Value(bodyKey{}).(*idleBody)
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}
