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
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/argon2"

	"github.com/jotguard/jotguard/sdk"
)

// The refresh ceiling repeats, in-process, what one /access_token costs the
// issuer beyond HTTP: an ES256 sign of the access token and the Redis work
// of issuer/internal/redisstore.Sessions.Rotate (GET of the token's route,
// SET of the successor's route, the rotate Lua script). The scripts are
// copied from redisstore (an internal package), trimmed of the branches a
// live rotation does not take; keep them in step with it.

const luaCreate = `
local up, sid, h, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local sk, tk, stk = up..':s:'..sid, up..':t:'..h, up..':st:'..sid
redis.call('HSET', sk, 'cid', ARGV[4], 'created', ARGV[5])
redis.call('HSET', tk, 'sid', sid, 'st', 'live')
redis.call('SADD', stk, h)
redis.call('SADD', KEYS[1], sid)
for _, k in ipairs({sk, tk, stk, KEYS[1]}) do redis.call('PEXPIRE', k, ttl) end
return 1
`

const luaRotate = `
local up, old, new, enc, grace, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tk = up..':t:'..old
local t = redis.call('HMGET', tk, 'sid', 'st')
local sid, st = t[1], t[2]
if not sid then return {'invalid'} end
local sk = up..':s:'..sid
local s = redis.call('HMGET', sk, 'cid', 'created')
if not s[2] then return {'invalid'} end
if st == 'rot' then return {'reuse', sid} end
redis.call('HSET', tk, 'st', 'rot', 'succ', new)
redis.call('SET', up..':g:'..old, enc, 'PX', grace)
local nk, stk = up..':t:'..new, up..':st:'..sid
redis.call('HSET', nk, 'sid', sid, 'st', 'live')
redis.call('SADD', stk, new)
for _, k in ipairs({tk, nk, stk, sk, KEYS[1]}) do redis.call('PEXPIRE', k, ttl) end
return {'ok', sid, s[1], s[2]}
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
// (route GET, route SET, rotate script) and signing an ES256 access token,
// for d. It talks to the same Redis as the issuer, under its own prefix.
// extra, when set, runs after each rotation (the user lookup).
func signRotateCeiling(ctx context.Context, name, redisURL string, conc int, d time.Duration, extra Op) (Result, error) {
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
	for w := range conc {
		users[w] = fmt.Sprintf("u%d", w)
		tokens[w] = rand.Text()
		up := "{" + prefix + ":" + users[w] + "}"
		h := hashHex(tokens[w])
		if err := rdb.Set(ctx, prefix+":rt:"+h, users[w], ttl).Err(); err != nil {
			return Result{}, err
		}
		if err := createScript.Run(ctx, rdb, []string{up + ":ss"}, up, "sid"+users[w], h, "jotguard",
			time.Now().UnixMilli(), ttl.Milliseconds()).Err(); err != nil {
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
		if err := rdb.Set(ctx, prefix+":rt:"+nh, uid, ttl).Err(); err != nil {
			return err
		}
		up := "{" + prefix + ":" + uid + "}"
		res, err := rotateScript.Run(ctx, rdb, []string{up + ":ss"}, up, oh, nh, sealGrace(old, next),
			(10 * time.Second).Milliseconds(), ttl.Milliseconds()).StringSlice()
		if err != nil {
			return err
		}
		if res[0] != "ok" {
			return fmt.Errorf("rotate: %v", res)
		}
		tokens[w] = next
		now := time.Now()
		c := sdk.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "http://bench", Subject: uid,
			Audience: jwt.ClaimStrings{"jotguard"}, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: rand.Text()},
			ClientID: "jotguard", SessionID: "sid" + uid, Email: uid + "@bench.example"}
		t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		t.Header["kid"], t.Header["typ"] = "bench", "at+jwt"
		if _, err = t.SignedString(key); err != nil || extra == nil {
			return err
		}
		return extra(ctx, w, i)
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

// argon2Ceiling hashes at m KiB, t passes, p lanes: n hashes alone, then
// n hashes on every core at once.
func argon2Ceiling(m, t uint32, p uint8, n int) Argon2Ceiling {
	pw, salt := []byte(benchPassword), make([]byte, 16)
	_, _ = rand.Read(salt)
	one := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		argon2.IDKey(pw, salt, t, m, p, 32)
		one[i] = time.Since(t0)
	}
	cores := runtime.NumCPU()
	var wg sync.WaitGroup
	t0 := time.Now()
	for range cores {
		wg.Go(func() {
			for range n {
				argon2.IDKey(pw, salt, t, m, p, 32)
			}
		})
	}
	wg.Wait()
	par := float64(cores*n) / time.Since(t0).Seconds()
	ht := median(one)
	return Argon2Ceiling{HashTime: ht, Cores: cores, PerSec: float64(cores) / ht.Seconds(), Parallel: par}
}

// mongoLookup returns an Op that finds one of the given users by _id, as
// issuer/internal/mongostore.Users.ByID does on every /access_token; the
// users are the /access_token workload's own, since on FerretDB the time of
// a lookup by _id depends on where the user sits in the collection.
func mongoLookup(ctx context.Context, uri, db string, emails []string) (Op, func(), error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMaxPoolSize(128))
	if err != nil {
		return nil, nil, err
	}
	coll := client.Database(db).Collection("users")
	cur, err := coll.Find(ctx, bson.D{{Key: "email", Value: bson.D{{Key: "$in", Value: emails}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, nil, err
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil || len(docs) == 0 {
		return nil, nil, fmt.Errorf("the /access_token users are not in %s.users: %v", db, err)
	}
	op := func(ctx context.Context, w, i int) error {
		var doc bson.M
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: docs[w%len(docs)].ID}}).Decode(&doc)
	}
	return op, func() { _ = client.Disconnect(context.Background()) }, nil
}
