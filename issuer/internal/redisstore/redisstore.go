// Package redisstore keeps sessions and refresh tokens in Redis, on a
// redis.UniversalClient so that a single server, Sentinel or Cluster all work.
//
// Keys (P is the configured prefix, U a user id; {P:U} is a hash tag, so all
// of a user's keys share one Cluster slot and one Lua script can touch them):
//
//	P:rt:H          → U          routing index of refresh token hash H (own slot)
//	{P:U}:t:H       → hash sid, st (live|rot), succ
//	{P:U}:g:H       → the successor of rotated token H, encrypted (TTL = grace)
//	{P:U}:s:SID     → hash cid, created, user, uat
//	{P:U}:st:SID    → set of the session's token hashes
//	{P:U}:sl:SID    → the same hashes as a list, newest first, capped at Keep
//	{P:U}:ss        → set of the user's sids
//
// H is the hex SHA-256 of the refresh token; the token itself is never
// stored. The one exception is the grace record: for the grace window only,
// it holds the successor token encrypted with AES-256-GCM under a key
// derived from the rotated token (SHA-256 of a label and that token), so only
// whoever presents the rotated token can read it, and Redis alone cannot.
// A session remembers its last Keep tokens (the current one and the ones it
// replaced): reusing one of those after the grace window revokes the
// session. Older tokens are forgotten, so a session refreshed every few
// minutes for weeks holds a bounded amount of memory; presenting a forgotten
// token is just an invalid token.
// The session hash also holds the user snapshot (auth.UserSnapshot): user is
// the user's public fields as JSON, uat the Unix milliseconds they were read
// at. Both are absent in sessions stored before snapshots existed.
// Scripts build key names from the hash-tagged prefix passed in ARGV; they
// declare the user's session-set key, so Cluster routes them to that slot.
package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/redis/go-redis/v9"
)

// NewClient connects to url: redis:// or rediss:// for one server, or a
// comma list of host:port for a Cluster. Timeouts are short so that a dead
// Redis gives an error (503) within about a second, and the pool reconnects
// by itself when Redis comes back.
func NewClient(url string) (redis.UniversalClient, error) {
	const (
		dial = 500 * time.Millisecond
		rw   = 500 * time.Millisecond
	)
	if strings.Contains(url, "://") {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dial, rw, rw
		o.PoolTimeout = 600 * time.Millisecond
		o.MaxRetries = 1
		o.DialerRetries, o.DialerRetryTimeout = 1, 50*time.Millisecond
		o.MinRetryBackoff, o.MaxRetryBackoff = 8*time.Millisecond, 64*time.Millisecond
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
	var addrs []string
	for _, a := range strings.Split(url, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	o := &redis.ClusterOptions{Addrs: addrs, DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
		PoolTimeout: 600 * time.Millisecond, MaxRetries: 1, ContextTimeoutEnabled: true,
		DialerRetries: 1, DialerRetryTimeout: 50 * time.Millisecond}
	return redis.NewClusterClient(o), nil
}

// Config configures Sessions.
type Config struct {
	Prefix     string        // default "jg"
	RefreshTTL time.Duration // session and refresh token lifetime (sliding)
	Grace      time.Duration // grace window: a just-rotated token presented again gets its successor (grace retry)
	Keep       int           // tokens remembered per session for reuse detection; default 16
	Now        func() time.Time
}

// Sessions implements auth.SessionStore.
type Sessions struct {
	rdb redis.UniversalClient
	cfg Config

	// forgotten holds the routing keys of tokens a session stopped
	// remembering (one per rotation once its history is full). They point
	// nowhere already, so they need not go at once: the next rotation's
	// pipeline deletes them, which saves a round trip per refresh. At most
	// maxForgotten wait; a process that stops leaves them to their TTL.
	mu        sync.Mutex
	forgotten []string
}

const maxForgotten = 1024

var _ auth.SessionStore = (*Sessions)(nil)

// New returns a session store on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Sessions, error) {
	if cfg.RefreshTTL <= 0 || cfg.Grace <= 0 {
		return nil, errors.New("redisstore: RefreshTTL and Grace are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "jg"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keep < 2 {
		cfg.Keep = 16
	}
	return &Sessions{rdb: rdb, cfg: cfg}, nil
}

// Ping reports whether Redis answers.
func (s *Sessions) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

func (s *Sessions) user(uid string) string { return "{" + s.cfg.Prefix + ":" + uid + "}" }
func (s *Sessions) index(h string) string  { return s.cfg.Prefix + ":rt:" + h }

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// luaDelSession deletes a session and its tokens; the hashes of the deleted
// tokens collect in the global "gone", so Go can drop their routes.
const luaDelSession = `
local gone = {}
local function delsession(up, sid, ss)
  local hs = redis.call('SMEMBERS', up..':st:'..sid)
  for _, h in ipairs(hs) do
    redis.call('DEL', up..':t:'..h, up..':g:'..h)
    table.insert(gone, h)
  end
  local n = redis.call('DEL', up..':s:'..sid)
  redis.call('DEL', up..':st:'..sid, up..':sl:'..sid)
  redis.call('SREM', ss, sid)
  return n
end
`

var createScript = redis.NewScript(`
local up, sid, h, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local sk, tk, stk, slk = up..':s:'..sid, up..':t:'..h, up..':st:'..sid, up..':sl:'..sid
redis.call('HSET', sk, 'cid', ARGV[4], 'created', ARGV[5])
if ARGV[7] ~= '' then redis.call('HSET', sk, 'user', ARGV[7], 'uat', ARGV[8]) end
redis.call('HSET', tk, 'sid', sid, 'st', 'live')
redis.call('SADD', stk, h)
redis.call('LPUSH', slk, h)
redis.call('SADD', KEYS[1], sid)
for _, k in ipairs({sk, tk, stk, slk, KEYS[1]}) do redis.call('PEXPIRE', k, ttl) end
return 1
`)

// Create implements auth.SessionStore.
func (s *Sessions) Create(ctx context.Context, sess auth.Session, refresh string) error {
	h, up := hashToken(refresh), s.user(sess.UserID)
	ttl := s.cfg.RefreshTTL.Milliseconds()
	user, uat, err := encodeSnapshot(sess.Snapshot)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.index(h), sess.UserID, s.cfg.RefreshTTL).Err(); err != nil {
		return unavailable("create session", err)
	}
	err = createScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, sess.ID, h, sess.ClientID,
		sess.CreatedAt.UnixMilli(), ttl, user, uat).Err()
	if err != nil {
		return unavailable("create session", err)
	}
	return nil
}

var rotateScript = redis.NewScript(luaDelSession + `
local up, old, new, enc, grace, ttl, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local tk = up..':t:'..old
local t = redis.call('HMGET', tk, 'sid', 'st')
local sid, st = t[1], t[2]
if not sid then return {'invalid'} end
local sk = up..':s:'..sid
local s = redis.call('HMGET', sk, 'cid', 'created', 'user', 'uat')
if not s[2] then return {'invalid'} end
local cid, user, uat = s[1] or '', s[3] or '', s[4] or ''
if st == 'rot' then
  local e = redis.call('GET', up..':g:'..old)
  if e then return {'grace', sid, cid, s[2], user, uat, e} end
  delsession(up, sid, KEYS[1])
  return {'reuse', sid, unpack(gone)}
end
redis.call('HSET', tk, 'st', 'rot', 'succ', new)
redis.call('SET', up..':g:'..old, enc, 'PX', grace)
local nk, stk, slk = up..':t:'..new, up..':st:'..sid, up..':sl:'..sid
redis.call('HSET', nk, 'sid', sid, 'st', 'live')
redis.call('SADD', stk, new)
redis.call('LPUSH', slk, new)
local out = {'ok', sid, cid, s[2], user, uat}
while redis.call('LLEN', slk) > keep do
  local h = redis.call('RPOP', slk)
  redis.call('DEL', up..':t:'..h, up..':g:'..h)
  redis.call('SREM', stk, h)
  table.insert(out, h)
end
for _, k in ipairs({tk, nk, stk, slk, sk, KEYS[1]}) do redis.call('PEXPIRE', k, ttl) end
return out
`)

// Rotate implements auth.SessionStore in two round trips: GET the old
// token's route, then one pipeline that deletes the routes of tokens
// sessions have forgotten since the last rotation (see forgotten), routes
// the successor and runs the rotate script.
func (s *Sessions) Rotate(ctx context.Context, refresh, successor string) (auth.Rotation, error) {
	old, next := hashToken(refresh), hashToken(successor)
	uid, err := s.rdb.Get(ctx, s.index(old)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	case err != nil:
		return auth.Rotation{}, unavailable("rotate", err)
	}
	enc, err := seal(refresh, successor)
	if err != nil {
		return auth.Rotation{}, err
	}
	up := s.user(uid)
	keys := []string{up + ":ss"}
	args := []any{up, old, next, enc, s.cfg.Grace.Milliseconds(), s.cfg.RefreshTTL.Milliseconds(), s.cfg.Keep}
	// The successor's route and the script go in one pipeline. On a Cluster
	// they are in different slots and may run in either order; an unused
	// route points nowhere, and a successor whose route failed is re-routed
	// by the grace-retry path below when the client retries.
	p := s.rdb.Pipeline()
	drop := s.takeForgotten()
	for _, k := range drop {
		p.Del(ctx, k)
	}
	route := p.Set(ctx, s.index(next), uid, s.cfg.RefreshTTL)
	run := rotateScript.EvalSha(ctx, p, keys, args...)
	if _, err := p.Exec(ctx); err != nil && route.Err() != nil {
		s.forget(drop) // Redis unreachable: keep them for the next rotation
	}
	if redis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
		run = rotateScript.Eval(ctx, s.rdb, keys, args...) // loads it for the next time
	}
	res, err := run.StringSlice()
	if err != nil {
		return auth.Rotation{}, unavailable("rotate", err)
	}
	if err := route.Err(); err != nil && res[0] == "ok" {
		return auth.Rotation{}, unavailable("rotate", err)
	}
	switch res[0] {
	case "ok":
		s.forget(s.indexes(res[6:])) // tokens the session no longer remembers
		return auth.Rotation{Session: session(uid, res), Token: successor}, nil
	case "grace":
		tok, err := open(refresh, res[6])
		if err != nil {
			s.dropRoutes(ctx, []string{next})
			return auth.Rotation{}, fmt.Errorf("redisstore: grace record: %w", err)
		}
		// Drop the unused route and route the earlier successor again, in
		// case its route failed; one round trip.
		p := s.rdb.Pipeline()
		p.Del(context.WithoutCancel(ctx), s.index(next))
		p.Set(context.WithoutCancel(ctx), s.index(hashToken(tok)), uid, s.cfg.RefreshTTL)
		_, _ = p.Exec(context.WithoutCancel(ctx))
		return auth.Rotation{Session: session(uid, res), Token: tok, GraceRetry: true}, nil
	case "reuse":
		s.dropRoutes(ctx, append(res[2:], next))
		return auth.Rotation{Session: auth.Session{ID: res[1], UserID: uid}}, auth.ErrRefreshReuse
	default:
		s.dropRoutes(ctx, []string{next})
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
}

// session reads {status, sid, cid, created[, user, uat]} of a script reply.
func session(uid string, res []string) auth.Session {
	ms, _ := strconv.ParseInt(res[3], 10, 64)
	sess := auth.Session{ID: res[1], UserID: uid, ClientID: res[2], CreatedAt: time.UnixMilli(ms).UTC()}
	if len(res) >= 6 {
		sess.Snapshot = decodeSnapshot(res[4], res[5])
	}
	return sess
}

// snapshotJSON is the stored form of a user snapshot: User.Public, no hash.
type snapshotJSON struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Username      string    `json:"username,omitempty"`
	FirstName     string    `json:"first_name,omitempty"`
	LastName      string    `json:"last_name,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	Roles         []string  `json:"roles"`
	Disabled      bool      `json:"disabled,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// encodeSnapshot returns the user and uat fields of snap; "" for none.
func encodeSnapshot(snap *auth.UserSnapshot) (user, uat string, err error) {
	if snap == nil {
		return "", "", nil
	}
	u := snap.User
	b, err := json.Marshal(snapshotJSON{ID: u.ID, Email: u.Email, Username: u.Username, FirstName: u.FirstName,
		LastName: u.LastName, EmailVerified: u.EmailVerified, Roles: u.Roles, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
	if err != nil {
		return "", "", fmt.Errorf("redisstore: user snapshot: %w", err)
	}
	return string(b), strconv.FormatInt(snap.CheckedAt.UnixMilli(), 10), nil
}

// decodeSnapshot reads the user and uat fields; nil when absent or
// unreadable, which only costs the next refresh a read of the user.
func decodeSnapshot(user, uat string) *auth.UserSnapshot {
	ms, err := strconv.ParseInt(uat, 10, 64)
	if user == "" || err != nil {
		return nil
	}
	var j snapshotJSON
	if err := json.Unmarshal([]byte(user), &j); err != nil || j.ID == "" {
		return nil
	}
	return &auth.UserSnapshot{CheckedAt: time.UnixMilli(ms).UTC(), User: auth.User{ID: j.ID, Email: j.Email,
		Username: j.Username, FirstName: j.FirstName, LastName: j.LastName, EmailVerified: j.EmailVerified,
		Roles: j.Roles, Disabled: j.Disabled, CreatedAt: j.CreatedAt}}
}

// setSnapshotScript writes the snapshot only into an existing session hash
// (a deleted session stays deleted) and only over an older one.
var setSnapshotScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local at = redis.call('HGET', KEYS[1], 'uat')
if at and tonumber(at) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'uat', ARGV[2])
return 1
`)

// SetSnapshot implements auth.SessionStore.
func (s *Sessions) SetSnapshot(ctx context.Context, userID, sid string, snap auth.UserSnapshot) error {
	user, uat, err := encodeSnapshot(&snap)
	if err != nil {
		return err
	}
	if err := setSnapshotScript.Run(ctx, s.rdb, []string{s.user(userID) + ":s:" + sid}, user, uat).Err(); err != nil {
		return unavailable("set user snapshot", err)
	}
	return nil
}

var lookupScript = redis.NewScript(`
local up, h = ARGV[1], ARGV[2]
local t = redis.call('HMGET', up..':t:'..h, 'sid', 'st')
if not t[1] then return {'invalid'} end
if t[2] ~= 'live' and redis.call('EXISTS', up..':g:'..h) == 0 then return {'invalid'} end
local s = redis.call('HMGET', up..':s:'..t[1], 'cid', 'created')
if not s[2] then return {'invalid'} end
return {'ok', t[1], s[1], s[2]}
`)

// Lookup implements auth.SessionStore: a live token, or one rotated within
// the grace window.
func (s *Sessions) Lookup(ctx context.Context, refresh string) (auth.Session, error) {
	h := hashToken(refresh)
	uid, err := s.rdb.Get(ctx, s.index(h)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return auth.Session{}, auth.ErrInvalidRefreshToken
	case err != nil:
		return auth.Session{}, unavailable("lookup", err)
	}
	up := s.user(uid)
	res, err := lookupScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, h).StringSlice()
	if err != nil {
		return auth.Session{}, unavailable("lookup", err)
	}
	if res[0] != "ok" {
		return auth.Session{}, auth.ErrInvalidRefreshToken
	}
	return session(uid, res), nil
}

// Get implements auth.SessionStore.
func (s *Sessions) Get(ctx context.Context, userID, sid string) (auth.Session, error) {
	v, err := s.rdb.HMGet(ctx, s.user(userID)+":s:"+sid, "cid", "created").Result()
	if err != nil {
		return auth.Session{}, unavailable("get session", err)
	}
	cid, _ := v[0].(string)
	created, ok := v[1].(string)
	if !ok {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return session(userID, []string{"ok", sid, cid, created}), nil
}

var listScript = redis.NewScript(`
local up, out = ARGV[1], {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', up..':s:'..sid) == 1 then table.insert(out, sid)
  else redis.call('SREM', KEYS[1], sid) end
end
return out
`)

// List implements auth.SessionStore.
func (s *Sessions) List(ctx context.Context, userID string) ([]string, error) {
	up := s.user(userID)
	sids, err := listScript.Run(ctx, s.rdb, []string{up + ":ss"}, up).StringSlice()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	return sids, nil
}

var deleteScript = redis.NewScript(luaDelSession + `
local n = 0
for i = 2, #ARGV do n = n + delsession(ARGV[1], ARGV[i], KEYS[1]) end
return {tostring(n), unpack(gone)}
`)

// Delete implements auth.SessionStore.
func (s *Sessions) Delete(ctx context.Context, userID string, sids ...string) (int, error) {
	if len(sids) == 0 {
		return 0, nil
	}
	up := s.user(userID)
	args := make([]any, 0, len(sids)+1)
	args = append(args, up)
	for _, sid := range sids {
		args = append(args, sid)
	}
	res, err := deleteScript.Run(ctx, s.rdb, []string{up + ":ss"}, args...).StringSlice()
	if err != nil {
		return 0, unavailable("delete sessions", err)
	}
	n, _ := strconv.Atoi(res[0])
	s.dropRoutes(ctx, res[1:])
	return n, nil
}

// forget queues routing keys for the next rotation's pipeline; past
// maxForgotten the queue is deleted at once, in its own round trip.
func (s *Sessions) forget(keys []string) {
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	s.forgotten = append(s.forgotten, keys...)
	var flush []string
	if len(s.forgotten) > maxForgotten {
		flush, s.forgotten = s.forgotten, nil
	}
	s.mu.Unlock()
	if flush != nil {
		p := s.rdb.Pipeline()
		for _, k := range flush {
			p.Del(context.Background(), k)
		}
		_, _ = p.Exec(context.Background())
	}
}

func (s *Sessions) takeForgotten() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.forgotten
	s.forgotten = nil
	return keys
}

func (s *Sessions) indexes(hashes []string) []string {
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = s.index(h)
	}
	return keys
}

// dropRoutes deletes the routing keys of deleted tokens. They point nowhere
// already; this only frees memory, so failures are ignored. The keys live in
// different slots, so they go one DEL each, pipelined.
func (s *Sessions) dropRoutes(ctx context.Context, hashes []string) {
	if len(hashes) == 0 {
		return
	}
	p := s.rdb.Pipeline()
	for _, h := range hashes {
		p.Del(context.WithoutCancel(ctx), s.index(h))
	}
	_, _ = p.Exec(context.WithoutCancel(ctx))
}

const graceLabel = "jotguard/refresh-grace/v1\x00"

func graceAEAD(rotated string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(graceLabel + rotated))
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func seal(rotated, successor string) (string, error) {
	a, err := graceAEAD(rotated)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return hex.EncodeToString(a.Seal(nonce, nonce, []byte(successor), nil)), nil
}

func open(rotated, sealed string) (string, error) {
	a, err := graceAEAD(rotated)
	if err != nil {
		return "", err
	}
	b, err := hex.DecodeString(sealed)
	if err != nil || len(b) < a.NonceSize() {
		return "", errors.New("corrupt")
	}
	pt, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], nil)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, auth.ErrUnavailable, err)
}
