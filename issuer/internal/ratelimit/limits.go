// Package ratelimit keeps the issuer's rate limits in Redis, so that every
// replica shares them: per client network (an IPv4 address, an
// IPv6 /64), per account and per subject. Each limit is a GCRA (generic cell
// rate algorithm) from github.com/go-redis/redis_rate: one key per limited
// thing, one Lua script per decision, timed by the Redis server's clock so
// replicas agree, and each key expires by itself once its budget is full
// again.
//
// Keys (P is the configured prefix; redis_rate puts "rate:" in front of its
// own):
//
//	rate:P:rl:C:N        class C of client network N (198.51.100.7, 2001:db8:1:2::/64)
//	rate:P:rl:C:h:H      class C of a name (an account, a subject, a mail address);
//	                     H is 32 hex digits of its SHA-256, never the name itself
//	P:rl:trust:H         an account's password matched from a network (H of both), 30 days
//
// Keys are built only from bounded values: a parsed IP address or prefix, or
// a hash. The process keeps no state per client at all.
package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Class names a limit: what it counts, and per what. The names are those of
// JOTGUARD_RATE_LIMITS.
type Class string

// The limit classes.
const (
	// Credentials counts requests that check a password or a secret, or
	// that send mail, per client network: login, register, /oauth/token
	// (other than the refresh grant), and forgot, resend and introspect.
	Credentials Class = "credentials"
	// Refresh counts refresh-token uses per client network: /access_token
	// and the refresh_token grant.
	Refresh Class = "refresh"
	// Account counts failed password checks per account, from every
	// network and replica (the Throttle's hard cap).
	Account Class = "account"
	// AccountNetwork counts failed password checks per account and client
	// network (the Throttle's first slow-down).
	AccountNetwork Class = "account-network"
	// Revoke counts requests that revoke sessions or tokens per subject
	// (the user, or a service account's client id): logout, /oauth/revoke.
	Revoke Class = "revoke"
	// Mail counts mails per recipient address (forgot, resend).
	Mail Class = "mail"
)

// classes lists the classes in the order of DefaultSpec.
var classes = []Class{Credentials, Refresh, Account, AccountNetwork, Revoke, Mail}

// failOpen says which classes let a request through when Redis cannot be
// asked. Credential requests and revocations do: a login needs Redis anyway
// (its session lives there, and the Throttle's account limits fail closed),
// registration must keep working on MongoDB alone, and a revocation must
// never wait for the limiter. Refreshes fail closed (the rotation needs
// Redis: answering 503 at once spares a second timeout), and so do the
// account limits and mail to third parties.
var failOpen = map[Class]bool{Credentials: true, Revoke: true}

// Limit is a rate: at most N events per Period, of which up to N at once.
// N == 0 turns the limit off.
type Limit struct {
	N      int
	Period time.Duration
}

// Interval is the time the budget takes to regain one event.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(max(l.N, 1)) }

func (l Limit) String() string {
	if l.N == 0 {
		return "off"
	}
	return strconv.Itoa(l.N) + "/" + shortDuration(l.Period)
}

// Limits holds a Limit per class; a class it lacks is off.
type Limits map[Class]Limit

// DefaultSpec is the JOTGUARD_RATE_LIMITS default.
const DefaultSpec = "credentials=60/1m,refresh=600/1m,account=30/15m,account-network=5/15m,revoke=30/1m,mail=5/1h"

// Defaults returns the default limits (DefaultSpec).
func Defaults() Limits {
	l, err := ParseLimits(DefaultSpec)
	if err != nil {
		panic(err)
	}
	return l
}

// ParseLimits reads JOTGUARD_RATE_LIMITS: "off" (no limits at all), or a
// comma list of class=N/period (period a Go duration, 1s to 24h) or
// class=off. Classes it does not name keep their defaults.
func ParseLimits(s string) (Limits, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Limits{}, nil
	}
	out := Limits{}
	if s != DefaultSpec {
		out = Defaults()
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		c := Class(strings.TrimSpace(name))
		if !ok || !slices.Contains(classes, c) {
			return nil, fmt.Errorf("%q: want class=N/period or class=off, class one of %s", item, classList())
		}
		val = strings.TrimSpace(val)
		if val == "off" {
			out[c] = Limit{}
			continue
		}
		n, per, ok := strings.Cut(val, "/")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 1 || count > 1_000_000_000 {
			return nil, fmt.Errorf("%s: want N/period with N from 1 to 10⁹, like 60/1m, got %q", c, val)
		}
		if per != "" && (per[0] < '0' || per[0] > '9') {
			per = "1" + per // 60/m
		}
		d, err := time.ParseDuration(per)
		if err != nil || d < time.Second || d > 24*time.Hour {
			return nil, fmt.Errorf("%s: want a period from 1s to 24h, like 1m or 15m, got %q", c, per)
		}
		out[c] = Limit{N: count, Period: d}
	}
	return out, nil
}

// String is the limits in the JOTGUARD_RATE_LIMITS format.
func (ls Limits) String() string {
	if len(ls) == 0 {
		return "off"
	}
	parts := make([]string, 0, len(classes))
	for _, c := range classes {
		parts = append(parts, string(c)+"="+ls[c].String())
	}
	return strings.Join(parts, ",")
}

func classList() string {
	names := make([]string, len(classes))
	for i, c := range classes {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

func shortDuration(d time.Duration) string {
	s := d.String() // 1m0s → 1m, 1h0m0s → 1h
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Key is what one limit counts: a class and a bounded identity. Build it
// with ByNetwork or ByName, never from raw input.
type Key struct {
	class Class
	id    string
}

// ByNetwork is the key of class c for the client at ip (as Echo's IP
// extractor gives it, which honours JOTGUARD_TRUSTED_PROXIES).
func ByNetwork(c Class, ip string) Key { return Key{c, NetworkOf(ip)} }

// ByName is the key of class c for a name the caller has validated and
// normalized: an account, a subject, a mail address. Only a hash of it
// reaches Redis, however long it is.
func ByName(c Class, name string) Key { return Key{c, "h:" + hashOf(name)} }

// Class is the key's class.
func (k Key) Class() Class { return k.class }

func (k Key) String() string { return string(k.class) + ":" + k.id }

// NetworkOf is the client network of ip: the address itself for IPv4 (an
// IPv4-mapped IPv6 address counts as IPv4), the /64 for IPv6. Anything that
// does not parse is one network, "invalid".
func NetworkOf(ip string) string {
	if len(ip) > 64 {
		return "invalid"
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return "invalid"
	}
	return p.String()
}

// hashOf is 128 bits of the SHA-256 of s, in hex.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// errNoClass: a key built without ByNetwork or ByName.
var errNoClass = errors.New("ratelimit: a Key must come from ByNetwork or ByName")
