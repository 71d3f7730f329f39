// Package password hashes passwords with argon2id into PHC strings, with
// bounded concurrency: at most Concurrency hashes run at once, and a request
// waits at most QueueWait for a slot before auth.ErrBusy.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// OWASP is the default: m=19456 KiB, t=2, p=1.
var OWASP = Params{Memory: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// Config configures a Hasher.
type Config struct {
	Params      Params
	Concurrency int           // default 1
	QueueWait   time.Duration // default 2s
}

// Hasher implements auth.PasswordHasher.
type Hasher struct {
	p     Params
	sem   chan struct{}
	wait  time.Duration
	dummy string
	queue atomic.Int64
}

var _ auth.PasswordHasher = (*Hasher)(nil)

// New returns a Hasher.
func New(cfg Config) (*Hasher, error) {
	if cfg.Params == (Params{}) {
		cfg.Params = OWASP
	}
	if cfg.Params.Memory < 8 || cfg.Params.Time < 1 || cfg.Params.Threads < 1 {
		return nil, errors.New("password: bad argon2id parameters")
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 2 * time.Second
	}
	h := &Hasher{p: cfg.Params, sem: make(chan struct{}, cfg.Concurrency), wait: cfg.QueueWait}
	h.dummy = h.encode(randomSalt(), "an unguessable dummy password")
	return h, nil
}

// Memory a hash needs beyond argon2id's own buffer, and what the rest of
// the issuer needs, for AutoConcurrency. Measured on bin/issuer at the
// OWASP parameters (m = 19 MiB): without a memory limit each concurrent
// hash added 40 to 53 MiB of peak RSS (the garbage collector lets finished
// hashes' buffers pile up to about twice the live heap); under a Go memory
// limit the collector returns them as the limit nears, and what each
// running hash holds live is its m KiB plus a little. An idle issuer's RSS
// is 62 to 64 MiB.
const (
	hashOverhead = 4        // per hash: m KiB × (1 + 1/hashOverhead)
	reserve      = 80 << 20 // the rest of the issuer, with a margin
)

// AutoConcurrency is how many hashes may run at once: one per core, but no
// more than the memory the process may use (memLimit, the Go memory limit;
// math.MaxInt64 when there is none) can hold besides the rest of the
// issuer, and at least one. A burst past it waits for a slot (QueueWait),
// then gets 503 with Retry-After, instead of the process being killed for
// its memory.
func AutoConcurrency(p Params, memLimit int64, cores int) int {
	if p == (Params{}) {
		p = OWASP
	}
	perHash := int64(p.Memory) << 10
	perHash += perHash / hashOverhead
	n := cores
	if memLimit > 0 && memLimit < math.MaxInt64 {
		n = min(n, int((memLimit-reserve)/perHash))
	}
	return max(n, 1)
}

// Waiting is the number of requests waiting for or holding a hashing slot.
func (h *Hasher) Waiting() int64 { return h.queue.Load() }

// Hash returns the PHC string of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.encode(randomSalt(), password), nil
}

// Verify checks password against phc in constant time. rehash is true when
// phc's parameters differ from the Hasher's.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, rehash bool, err error) {
	p, salt, want, err := decode(phc)
	if err != nil {
		// a corrupt stored hash: spend the time, fail closed
		_ = h.Dummy(ctx, password)
		return false, false, nil
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.p, nil
}

// Dummy spends the time of a Verify against a hash of the current parameters.
func (h *Hasher) Dummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	h.queue.Add(1)
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem; h.queue.Add(-1) }, nil
	default:
	}
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem; h.queue.Add(-1) }, nil
	case <-t.C:
		h.queue.Add(-1)
		return nil, fmt.Errorf("%w: password hashing saturated", auth.ErrBusy)
	case <-ctx.Done(): // the caller gave up waiting in the queue: busy too
		h.queue.Add(-1)
		return nil, fmt.Errorf("%w: gave up waiting for a hashing slot: %w", auth.ErrBusy, ctx.Err())
	}
}

func (h *Hasher) encode(salt []byte, password string) string {
	key := argon2.IDKey([]byte(password), salt, h.p.Time, h.p.Memory, h.p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.p.Memory, h.p.Time, h.p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errFormat = errors.New("password: not an argon2id PHC string")

func decode(phc string) (Params, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, errFormat
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return Params{}, nil, nil, errFormat
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, errFormat
			}
			p.Threads = uint8(n)
		}
	}
	if p.Memory < 8 || p.Memory > 4<<20 || p.Time < 1 || p.Time > 100 || p.Threads < 1 {
		return Params{}, nil, nil, errFormat
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, errFormat
	}
	return p, salt, key, nil
}

func randomSalt() []byte {
	b := make([]byte, saltLen)
	_, _ = rand.Read(b)
	return b
}
