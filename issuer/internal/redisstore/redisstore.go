// Package redisstore keeps sessions and refresh tokens in Redis, on a
// redis.UniversalClient so that a single server, Sentinel or Cluster all work.
//
// Keys (P is the configured prefix, U a user id; {P:U} is a hash tag, so all
// of a user's keys share one Cluster slot and one Lua script can touch them):
//
//	P:rc:C          → len(SID):SID U  route of the session whose chain is C (own slot)
//	{P:U}:s:SID     → hash cid, created, used (last rotation, Unix ms), ua, ip,
//	                  user, uat, ch (C), cur (H of the current token), gen (a
//	                  rotation counter)
//	{P:U}:gr:SID    → hash H → "end gen sealed" per rotated token H whose grace
//	                  window ends at end (Unix ms); at most auth.GraceRecords
//	                  fields, the latest gens; the key's TTL is the latest window
//	{P:U}:ss        → set of the user's sids
//
// H is the hex SHA-256 of a refresh token, C the hex SHA-256 of its chain id
// (auth.RefreshChain: the part every token of one session shares); neither
// token nor chain id is stored. A token whose chain is a live session's but
// that is neither its current token nor within a grace record is a reuse,
// however many rotations old: the session is deleted. So a session holds
// the same few keys whether it rotated twice or a million times, and a
// token that does not carry a live session's chain id can touch nothing.
//
// A grace record holds the successor token, for the grace window only,
// encrypted with AES-256-GCM under a key derived from the rotated token
// (SHA-256 of a label and that token), so only whoever presents the rotated
// token can read it, and Redis alone cannot. Its end is read against the
// Redis server's clock (TIME), the same for every issuer replica.
//
// Sessions stored before chains existed have per-token keys instead of ch
// and cur (legacy layout, kept until they expire):
//
//	P:rt:H          → U          route of token H (own slot)
//	{P:U}:t:H       → hash sid, st (live|rot)
//	{P:U}:g:H       → the successor of rotated token H, sealed (TTL = grace)
//	{P:U}:st:SID    → set of the session's token hashes
//	{P:U}:sl:SID    → the same hashes as a list, newest first
//
// Their current token still refreshes: that rotation gives the session a
// chain (the successor's), and from then on it is a chain session; its
// earlier tokens stay recognised as reuses while their keys live.
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
	Now        func() time.Time
}

// Sessions implements auth.SessionStore.
type Sessions struct {
	rdb redis.UniversalClient
	cfg Config
}

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
func (s *Sessions) route(c string) string  { return s.cfg.Prefix + ":rc:" + c }

func hashToken(t string) string { return hexSHA256([]byte(t)) }

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// routeValue is what a chain's route holds: the sid, length-prefixed, and
// the user id.
func routeValue(sid, uid string) string { return strconv.Itoa(len(sid)) + ":" + sid + uid }

func parseRoute(v string) (sid, uid string, ok bool) {
	i := strings.IndexByte(v, ':')
	n, err := strconv.Atoi(v[:max(i, 0)])
	if i < 0 || err != nil || n <= 0 || len(v) <= i+1+n {
		return "", "", false
	}
	return v[i+1 : i+1+n], v[i+1+n:], true
}

// chainOf returns C, the hex SHA-256 of the chain id of a refresh token.
func chainOf(refresh string) (string, bool) {
	chain, ok := auth.RefreshChain(refresh)
	if !ok {
		return "", false
	}
	return hexSHA256(chain), true
}

// luaDelSession deletes a session and its keys; the routes of the deleted
// session (its chain's, and those of any legacy tokens) collect in the
// global "gone" as "rc:C" and "rt:H", so Go can drop them.
const luaDelSession = `
local gone = {}
local function delsession(up, sid, ss)
  local sk = up..':s:'..sid
  local ch = redis.call('HGET', sk, 'ch')
  if ch then table.insert(gone, 'rc:'..ch) end
  for _, h in ipairs(redis.call('SMEMBERS', up..':st:'..sid)) do
    redis.call('DEL', up..':t:'..h, up..':g:'..h)
    table.insert(gone, 'rt:'..h)
  end
  local n = redis.call('DEL', sk)
  redis.call('DEL', up..':gr:'..sid, up..':st:'..sid, up..':sl:'..sid)
  redis.call('SREM', ss, sid)
  return n
end
`

// luaNow sets now to the Redis server's clock in Unix milliseconds.
const luaNow = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
`

var createScript = redis.NewScript(`
local up, sid, ttl = ARGV[1], ARGV[2], ARGV[6]
local sk = up..':s:'..sid
redis.call('HSET', sk, 'cid', ARGV[3], 'created', ARGV[4], 'ch', ARGV[5], 'cur', ARGV[7], 'used', ARGV[4])
if ARGV[8] ~= '' then redis.call('HSET', sk, 'user', ARGV[8], 'uat', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', sk, 'ua', ARGV[10]) end
if ARGV[11] ~= '' then redis.call('HSET', sk, 'ip', ARGV[11]) end
redis.call('SADD', KEYS[1], sid)
redis.call('PEXPIRE', sk, ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// Create implements auth.SessionStore.
func (s *Sessions) Create(ctx context.Context, sess auth.Session, refresh string) error {
	c, ok := chainOf(refresh)
	if !ok {
		return errors.New("redisstore: create session: the refresh token has no chain id (use auth.NewRefreshToken)")
	}
	up := s.user(sess.UserID)
	user, uat, err := encodeSnapshot(sess.Snapshot)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.route(c), routeValue(sess.ID, sess.UserID), s.cfg.RefreshTTL).Err(); err != nil {
		return unavailable("create session", err)
	}
	err = createScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, sess.ID, sess.ClientID,
		sess.CreatedAt.UnixMilli(), c, s.cfg.RefreshTTL.Milliseconds(), hashToken(refresh), user, uat,
		auth.CleanUserAgent(sess.UserAgent), sess.IP).Err()
	if err != nil {
		return unavailable("create session", err)
	}
	return nil
}

// rotateScript rotates the current token old of session sid to new, keeping
// a grace record for old and dropping expired ones and, past keep, the
// oldest. A token of the session that is neither current nor within a grace
// record is a reuse.
var rotateScript = redis.NewScript(luaDelSession + luaNow + `
local up, sid, c, old, new, enc = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local grace, ttl, keep = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local sk, gk = up..':s:'..sid, up..':gr:'..sid
local s = redis.call('HMGET', sk, 'cid', 'created', 'user', 'uat', 'ch', 'cur')
if not s[2] or s[5] ~= c then return {'invalid'} end
local cid, user, uat = s[1] or '', s[3] or '', s[4] or ''
if s[6] ~= old then
  local e, sealed = string.match(redis.call('HGET', gk, old) or '', '^(%d+) %d+ (.*)$')
  if e and tonumber(e) > now then return {'grace', sid, cid, s[2], user, uat, sealed} end
  delsession(up, sid, KEYS[1])
  return {'reuse', sid, unpack(gone)}
end
local g, n, oldest, oldestGen = redis.call('HGETALL', gk), 0, nil, nil
for i = 1, #g, 2 do
  local e, gen = string.match(g[i+1], '^(%d+) (%d+) ')
  if not gen or tonumber(e) <= now then
    redis.call('HDEL', gk, g[i])
  else
    n = n + 1
    if not oldestGen or tonumber(gen) < oldestGen then oldest, oldestGen = g[i], tonumber(gen) end
  end
end
if n >= keep then redis.call('HDEL', gk, oldest) end
local gen = redis.call('HINCRBY', sk, 'gen', 1)
redis.call('HSET', gk, old, string.format('%.0f', now + grace)..' '..gen..' '..enc)
redis.call('PEXPIRE', gk, grace)
redis.call('HSET', sk, 'cur', new, 'used', string.format('%.0f', now))
redis.call('PEXPIRE', sk, ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return {'ok', sid, cid, s[2], user, uat, string.format('%.0f', now)}
`)

// Rotate implements auth.SessionStore in two round trips: GETEX of the
// chain's route (which slides its TTL), with a Rider's command when ctx
// carries one (WithRider), then the rotate script.
func (s *Sessions) Rotate(ctx context.Context, refresh, successor string) (auth.Rotation, error) {
	next, ok := chainOf(successor)
	if !ok {
		return auth.Rotation{}, errors.New("redisstore: rotate: the successor has no chain id (use auth.NextRefreshToken)")
	}
	c, ok := chainOf(refresh)
	switch {
	case !ok && auth.LegacyRefreshToken(refresh):
		return s.rotateLegacy(ctx, refresh, successor, next)
	case !ok:
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	case c != next:
		return auth.Rotation{}, errors.New("redisstore: rotate: the successor is of another chain (use auth.NextRefreshToken)")
	}
	v, err := s.route1(ctx, c)
	var ride rideError
	switch {
	case errors.As(err, &ride):
		return auth.Rotation{}, ride.err
	case errors.Is(err, redis.Nil):
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	case err != nil:
		return auth.Rotation{}, unavailable("rotate", err)
	}
	sid, uid, ok := parseRoute(v)
	if !ok {
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
	enc, err := seal(refresh, successor)
	if err != nil {
		return auth.Rotation{}, err
	}
	up := s.user(uid)
	res, err := rotateScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, sid, c, hashToken(refresh), hashToken(successor),
		enc, s.cfg.Grace.Milliseconds(), s.cfg.RefreshTTL.Milliseconds(), auth.GraceRecords).StringSlice()
	if err != nil {
		return auth.Rotation{}, unavailable("rotate", err)
	}
	switch res[0] {
	case "ok":
		return auth.Rotation{Session: session(uid, res), Token: successor}, nil
	case "grace":
		tok, err := open(refresh, res[6])
		if err != nil {
			return auth.Rotation{}, fmt.Errorf("redisstore: grace record: %w", err)
		}
		return auth.Rotation{Session: session(uid, res), Token: tok, GraceRetry: true}, nil
	case "reuse":
		s.dropRoutes(ctx, res[2:])
		return auth.Rotation{Session: auth.Session{ID: res[1], UserID: uid}}, auth.ErrRefreshReuse
	default:
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
}

// A Rider is another adapter's command sent in Rotate's first round trip
// (the rate limit of refreshes): given the pipeline that holds the GETEX of
// the chain's route, it queues its own command, executes the pipeline and
// reads its result. An error it returns stops the rotation before the
// session is touched, and Rotate returns that error as it is.
type Rider func(ctx context.Context, p redis.Pipeliner) error

type riderKey struct{}

// WithRider returns ctx carrying r: the first Rotate under it sends r's
// command along with its own first one.
func WithRider(ctx context.Context, r Rider) context.Context {
	return context.WithValue(ctx, riderKey{}, r)
}

// rideError carries a Rider's error through route1 unchanged.
type rideError struct{ err error }

func (e rideError) Error() string { return e.err.Error() }

// route1 is Rotate's first round trip: GETEX of chain c's route (which
// slides its TTL), with the command of a Rider in ctx in the same pipeline.
func (s *Sessions) route1(ctx context.Context, c string) (string, error) {
	ride, ok := ctx.Value(riderKey{}).(Rider)
	if !ok {
		return s.rdb.GetEx(ctx, s.route(c), s.cfg.RefreshTTL).Result()
	}
	p := s.rdb.Pipeline()
	get := p.GetEx(ctx, s.route(c), s.cfg.RefreshTTL)
	if err := ride(ctx, p); err != nil {
		return "", rideError{err}
	}
	if p.Len() > 0 { // the rider queued nothing, or did not execute
		_, _ = p.Exec(ctx) // the error is get's
	}
	return get.Result()
}

// legacyRotateScript rotates a token of a session stored before chains
// existed. Its current token moves the session to the successor's chain;
// a rotated one within its grace window gets its successor; any other of
// its tokens is a reuse.
var legacyRotateScript = redis.NewScript(luaDelSession + luaNow + `
local up, old, c, new, enc, grace, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
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
redis.call('HSET', tk, 'st', 'rot')
redis.call('SET', up..':g:'..old, enc, 'PX', grace)
redis.call('HSET', sk, 'ch', c, 'cur', new, 'used', string.format('%.0f', now))
for _, k in ipairs({tk, sk, up..':st:'..sid, up..':sl:'..sid, KEYS[1]}) do redis.call('PEXPIRE', k, ttl) end
return {'ok', sid, cid, s[2], user, uat, string.format('%.0f', now)}
`)

// rotateLegacy rotates a token issued before chains existed: GET of its
// route, the script, then the route of the session's new chain (a third
// round trip, once per such session). Should that last step fail, the
// client's retry is a grace retry, which routes the chain again.
func (s *Sessions) rotateLegacy(ctx context.Context, refresh, successor, next string) (auth.Rotation, error) {
	old := hashToken(refresh)
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
	res, err := legacyRotateScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, old, next, hashToken(successor), enc,
		s.cfg.Grace.Milliseconds(), s.cfg.RefreshTTL.Milliseconds()).StringSlice()
	if err != nil {
		return auth.Rotation{}, unavailable("rotate", err)
	}
	switch res[0] {
	case "ok", "grace":
		rot := auth.Rotation{Session: session(uid, res), Token: successor}
		if res[0] == "grace" {
			if rot.Token, err = open(refresh, res[6]); err != nil {
				return auth.Rotation{}, fmt.Errorf("redisstore: grace record: %w", err)
			}
			rot.GraceRetry = true
		}
		route, val := s.index(hashToken(rot.Token)), uid // a successor rotated before chains existed
		if c, ok := chainOf(rot.Token); ok {
			route, val = s.route(c), routeValue(rot.Session.ID, uid)
		}
		if err := s.rdb.Set(ctx, route, val, s.cfg.RefreshTTL).Err(); err != nil {
			return auth.Rotation{}, unavailable("rotate", err)
		}
		return rot, nil
	case "reuse":
		s.dropRoutes(ctx, res[2:])
		return auth.Rotation{Session: auth.Session{ID: res[1], UserID: uid}}, auth.ErrRefreshReuse
	default:
		return auth.Rotation{}, auth.ErrInvalidRefreshToken
	}
}

// session reads {status, sid, cid, created[, user, uat[, used]]} of a
// script reply; a rotation's reply carries used, the rotation's instant.
func session(uid string, res []string) auth.Session {
	sess := auth.Session{ID: res[1], UserID: uid, ClientID: res[2], CreatedAt: unixMilli(res[3])}
	if len(res) >= 6 {
		sess.Snapshot = decodeSnapshot(res[4], res[5])
	}
	if res[0] == "ok" && len(res) >= 7 {
		sess.LastUsedAt = unixMilli(res[6])
	}
	return sess
}

// sessionInfo reads the fields sessionFields names: a session without its
// snapshot, with its metadata. A session stored before it had them was
// last used, as far as can be told, when it was created.
func sessionInfo(uid, sid string, v []string) auth.Session {
	sess := auth.Session{ID: sid, UserID: uid, ClientID: v[0], CreatedAt: unixMilli(v[1]), LastUsedAt: unixMilli(v[2]),
		UserAgent: v[3], IP: v[4]}
	if v[2] == "" {
		sess.LastUsedAt = sess.CreatedAt
	}
	return sess
}

// sessionFields are the session hash's fields sessionInfo reads.
var sessionFields = []string{"cid", "created", "used", "ua", "ip"}

func unixMilli(s string) time.Time {
	ms, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(ms).UTC()
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

// lookupScript finds the session of token h: the current token of chain c
// in session sid or one within a grace record, or, with no sid, a live or
// just-rotated token of a session stored before chains existed.
var lookupScript = redis.NewScript(luaNow + `
local up, h, sid, c = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if sid == '' then
  local t = redis.call('HMGET', up..':t:'..h, 'sid', 'st')
  if not t[1] then return {'invalid'} end
  if t[2] ~= 'live' and redis.call('EXISTS', up..':g:'..h) == 0 then return {'invalid'} end
  sid = t[1]
else
  local s = redis.call('HMGET', up..':s:'..sid, 'ch', 'cur')
  if s[1] ~= c then return {'invalid'} end
  if s[2] ~= h then
    local e = string.match(redis.call('HGET', up..':gr:'..sid, h) or '', '^(%d+) ')
    if not e or tonumber(e) <= now then return {'invalid'} end
  end
end
local s = redis.call('HMGET', up..':s:'..sid, 'cid', 'created')
if not s[2] then return {'invalid'} end
return {'ok', sid, s[1], s[2]}
`)

// Lookup implements auth.SessionStore: a live token, or one rotated within
// the grace window.
func (s *Sessions) Lookup(ctx context.Context, refresh string) (auth.Session, error) {
	h := hashToken(refresh)
	var sid, uid, c string
	var err error
	if chain, ok := chainOf(refresh); ok {
		c = chain
		var v string
		if v, err = s.rdb.Get(ctx, s.route(c)).Result(); err == nil {
			if sid, uid, ok = parseRoute(v); !ok {
				return auth.Session{}, auth.ErrInvalidRefreshToken
			}
		}
	} else {
		uid, err = s.rdb.Get(ctx, s.index(h)).Result()
	}
	switch {
	case errors.Is(err, redis.Nil):
		return auth.Session{}, auth.ErrInvalidRefreshToken
	case err != nil:
		return auth.Session{}, unavailable("lookup", err)
	}
	up := s.user(uid)
	res, err := lookupScript.Run(ctx, s.rdb, []string{up + ":ss"}, up, h, sid, c).StringSlice()
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
	v, err := s.rdb.HMGet(ctx, s.user(userID)+":s:"+sid, sessionFields...).Result()
	if err != nil {
		return auth.Session{}, unavailable("get session", err)
	}
	fields := make([]string, len(v))
	for i, x := range v {
		fields[i], _ = x.(string)
	}
	if fields[1] == "" { // no created: no session
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return sessionInfo(userID, sid, fields), nil
}

// listScript answers, for each live session of the user, its sid and the
// fields named in ARGV[2…] (empty for an absent one), and drops the sids of
// sessions that expired from the user's set.
var listScript = redis.NewScript(`
local up, out = ARGV[1], {}
local fields = {unpack(ARGV, 2)}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('HMGET', up..':s:'..sid, unpack(fields))
  if v[2] then
    table.insert(out, sid)
    for i = 1, #fields do table.insert(out, v[i] or '') end
  else redis.call('SREM', KEYS[1], sid) end
end
return out
`)

// List implements auth.SessionStore, in one script call.
func (s *Sessions) List(ctx context.Context, userID string) ([]auth.Session, error) {
	up := s.user(userID)
	args := []any{up}
	for _, f := range sessionFields {
		args = append(args, f)
	}
	res, err := listScript.Run(ctx, s.rdb, []string{up + ":ss"}, args...).StringSlice()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	n := 1 + len(sessionFields)
	out := make([]auth.Session, 0, len(res)/n)
	for i := 0; i+n <= len(res); i += n {
		out = append(out, sessionInfo(userID, res[i], res[i+1:i+n]))
	}
	return out, nil
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

// dropRoutes deletes the routes of deleted sessions, given as "rc:C" (a
// chain's) or "rt:H" (a legacy token's). They point nowhere already; this
// only frees memory, so failures are ignored. The keys live in different
// slots, so they go one DEL each, pipelined.
func (s *Sessions) dropRoutes(ctx context.Context, routes []string) {
	if len(routes) == 0 {
		return
	}
	p := s.rdb.Pipeline()
	for _, r := range routes {
		p.Del(context.WithoutCancel(ctx), s.cfg.Prefix+":"+r)
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
