package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/argon2"

	"github.com/jotguard/jotguard/sdk"
)

// The refresh ceiling repeats, in-process, what one /access_token costs the
// issuer beyond HTTP: an ES256 sign of the access token and the Redis work
// of issuer/internal/redisstore.Sessions.Rotate: GET of the token's route,
// then one pipeline of the DEL of the route an earlier rotation's session
// forgot (its history of 16 tokens is full on every rotation of a long
// chain), the successor's route SET and the rotate Lua script. The scripts are
// copied from redisstore (an internal package), trimmed only of the
// reuse/grace branches a live rotation does not take; keep them in step.

const luaCreate = `
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
`

const luaRotate = `
local up, old, new, enc, grace, ttl, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local tk = up..':t:'..old
local t = redis.call('HMGET', tk, 'sid', 'st')
local sid, st = t[1], t[2]
if not sid then return {'invalid'} end
local sk = up..':s:'..sid
local s = redis.call('HMGET', sk, 'cid', 'created', 'user', 'uat')
if not s[2] then return {'invalid'} end
local cid, user, uat = s[1] or '', s[3] or '', s[4] or ''
if st == 'rot' then return {'reuse', sid} end
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
`

var (
	createScript = redis.NewScript(luaCreate)
	rotateScript = redis.NewScript(luaRotate)
)

func hashHex(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

func sealGrace(rotated, successor string) string {
	key := sha256.Sum256([]byte("jotguard/refresh-grace/v1\x00" + rotated))
	b, _ := aes.NewCipher(key[:])
	a, _ := cipher.NewGCM(b)
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return hex.EncodeToString(a.Seal(nonce, nonce, []byte(successor), nil))
}

// signRotateCeiling runs conc workers, each rotating its own session chain
// (route GET; forgotten routes DEL + route SET + rotate script pipelined) and signing an ES256 access token,
// for d. It talks to the same Redis as the issuer, under its own prefix.
func signRotateCeiling(ctx context.Context, name, redisURL string, conc int, d time.Duration) (Result, error) {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return Result{}, err
	}
	o.PoolSize = conc
	rdb := redis.NewClient(o)
	defer rdb.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const ttl = 672 * time.Hour
	prefix := "benchceil" + runTag + rand.Text()[:4]
	tokens := make([]string, conc)
	users := make([]string, conc)
	forgotten := make([][]string, conc)
	for w := range conc {
		users[w] = fmt.Sprintf("u%d", w)
		tokens[w] = rand.Text()
		up := "{" + prefix + ":" + users[w] + "}"
		h := hashHex(tokens[w])
		if err := rdb.Set(ctx, prefix+":rt:"+h, users[w], ttl).Err(); err != nil {
			return Result{}, err
		}
		snap := fmt.Sprintf(`{"id":%q,"email":"%s@bench.example","roles":["user"],"created_at":"2026-01-02T03:04:05Z"}`, users[w], users[w])
		if err := createScript.Run(ctx, rdb, []string{up + ":ss"}, up, "sid"+users[w], h, "jotguard",
			time.Now().UnixMilli(), ttl.Milliseconds(), snap, time.Now().UnixMilli()).Err(); err != nil {
			return Result{}, err
		}
	}
	op := func(ctx context.Context, w, i int) error {
		old, next := tokens[w], rand.Text()
		oh, nh := hashHex(old), hashHex(next)
		uid, err := rdb.Get(ctx, prefix+":rt:"+oh).Result()
		if err != nil {
			return err
		}
		up := "{" + prefix + ":" + uid + "}"
		keys := []string{up + ":ss"}
		args := []any{up, oh, nh, sealGrace(old, next), (10 * time.Second).Milliseconds(), ttl.Milliseconds(), 16}
		p := rdb.Pipeline()
		for _, k := range forgotten[w] {
			p.Del(ctx, k)
		}
		forgotten[w] = forgotten[w][:0]
		route := p.Set(ctx, prefix+":rt:"+nh, uid, ttl)
		run := rotateScript.EvalSha(ctx, p, keys, args...)
		_, _ = p.Exec(ctx)
		if redis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
			run = rotateScript.Eval(ctx, rdb, keys, args...)
		}
		res, err := run.StringSlice()
		if err != nil {
			return err
		}
		if err := route.Err(); err != nil {
			return err
		}
		if res[0] != "ok" {
			return fmt.Errorf("rotate: %v", res)
		}
		for _, h := range res[6:] { // forgotten tokens: the next pipeline drops their routes
			forgotten[w] = append(forgotten[w], prefix+":rt:"+h)
		}
		tokens[w] = next
		now := time.Now()
		c := sdk.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "http://bench", Subject: uid,
			Audience: jwt.ClaimStrings{"jotguard"}, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: rand.Text()},
			ClientID: "jotguard", SessionID: "sid" + uid, Email: uid + "@bench.example"}
		t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		t.Header["kid"], t.Header["typ"] = "bench", "at+jwt"
		_, err = t.SignedString(key)
		return err
	}
	r := Load(ctx, name, conc, 0, d, 2, op)
	// leave Redis as found
	iter := rdb.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	return r, nil
}

// Argon2Ceiling is the password-hash ceiling at the issuer's parameters.
type Argon2Ceiling struct {
	HashTime time.Duration // one hash, one goroutine (median)
	Cores    int
	PerSec   float64 // Cores / HashTime
	Parallel float64 // measured: Cores goroutines hashing at once, hashes/s
}

// argon2Ceiling measures the hash ceiling in a fresh `bench argon2`
// process, whose Go heap holds little but the hashes, as the issuer's does.
// Measured in the bench process instead, whose heap holds the workloads'
// samples, each 19 MiB hash landed on fresh pages (the GC's goal is twice a
// large live heap, so freed hash memory waits long before reuse) and the
// "ceiling" came out below what the issuer itself did.
func argon2Ceiling(m, t uint32, p uint8, n int) (Argon2Ceiling, error) {
	self, _ := os.Executable()
	cmd := exec.Command(self, "argon2", "--m", fmt.Sprint(m), "--t", fmt.Sprint(t), "--p", fmt.Sprint(p), "--n", fmt.Sprint(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Argon2Ceiling{}, fmt.Errorf("bench argon2: %w", err)
	}
	var c Argon2Ceiling
	if err := json.Unmarshal(out, &c); err != nil {
		return Argon2Ceiling{}, fmt.Errorf("bench argon2: %w", err)
	}
	return c, nil
}

// argon2Main is `bench argon2`: after two warm-up hashes, n hashes on one
// goroutine (median time), then, after a warm-up on every core, n hashes on
// each of GOMAXPROCS goroutines at once; prints an Argon2Ceiling as JSON.
func argon2Main(args []string) error {
	fs := flag.NewFlagSet("argon2", flag.ExitOnError)
	m := fs.Uint("m", 19456, "memory, KiB")
	t := fs.Uint("t", 2, "passes")
	p := fs.Uint("p", 1, "lanes")
	n := fs.Int("n", 10, "hashes per measurement")
	_ = fs.Parse(args)
	pw, salt := []byte(benchPassword), make([]byte, 16)
	_, _ = rand.Read(salt)
	hash := func() { argon2.IDKey(pw, salt, uint32(*t), uint32(*m), uint8(*p), 32) }
	hash()
	hash()
	one := make([]time.Duration, *n)
	for i := range one {
		t0 := time.Now()
		hash()
		one[i] = time.Since(t0)
	}
	cores := runtime.GOMAXPROCS(0)
	parallel := func(k int) time.Duration {
		var wg sync.WaitGroup
		t0 := time.Now()
		for range cores {
			wg.Go(func() {
				for range k {
					hash()
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	// Warm up on every core too: until the heap has room for one hash per
	// core, parallel hashes fault in fresh pages (25–40% slower here).
	parallel(4)
	par := float64(cores**n) / parallel(*n).Seconds()
	ht := median(one)
	return json.NewEncoder(os.Stdout).Encode(Argon2Ceiling{HashTime: ht, Cores: cores,
		PerSec: float64(cores) / ht.Seconds(), Parallel: par})
}
