package ratelimit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

func TestParseLimits(t *testing.T) {
	def := ratelimit.Defaults()
	if got := def[ratelimit.Credentials]; got != (ratelimit.Limit{N: 60, Period: time.Minute}) {
		t.Fatalf("default credentials limit %v, want 60/1m", got)
	}
	if got := def[ratelimit.Account]; got != (ratelimit.Limit{N: 30, Period: 15 * time.Minute}) {
		t.Fatalf("default account limit %v, want 30/15m", got)
	}
	if def.String() != ratelimit.DefaultSpec {
		t.Fatalf("Defaults().String() = %q, want DefaultSpec %q", def.String(), ratelimit.DefaultSpec)
	}
	l, err := ratelimit.ParseLimits(" credentials = 5/10s , refresh=off,mail=2/h")
	if err != nil {
		t.Fatal(err)
	}
	if l[ratelimit.Credentials] != (ratelimit.Limit{N: 5, Period: 10 * time.Second}) || l[ratelimit.Refresh].N != 0 ||
		l[ratelimit.Mail] != (ratelimit.Limit{N: 2, Period: time.Hour}) || l[ratelimit.Account] != def[ratelimit.Account] {
		t.Fatalf("parsed %v", l)
	}
	if off, err := ratelimit.ParseLimits("off"); err != nil || len(off) != 0 || off.String() != "off" {
		t.Fatalf("off: %v, %v", off, err)
	}
	for _, bad := range []string{"credential=5/1m", "credentials", "credentials=5", "credentials=0/1m", "credentials=-1/1m",
		"credentials=5/0s", "credentials=5/48h", "credentials=x/1m", "account=5/1ms"} {
		if _, err := ratelimit.ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) accepted", bad)
		} else if name, _, _ := strings.Cut(bad, "="); !strings.Contains(err.Error(), strings.TrimSuffix(name, "s")) {
			t.Errorf("ParseLimits(%q): %v does not name the class", bad, err)
		}
	}
}

func TestNetworkOf(t *testing.T) {
	for ip, want := range map[string]string{
		"198.51.100.7":                      "198.51.100.7",
		"::ffff:198.51.100.7":               "198.51.100.7",
		"2001:db8:1:2:3:4:5:6":              "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ffff:ffff":  "2001:db8:1:2::/64",
		"fe80::1%eth0":                      "fe80::/64",
		"::1":                               "::/64",
		"":                                  "invalid",
		"not an address":                    "invalid",
		strings.Repeat("1", 60<<10):         "invalid",
		"2001:db8:1:3::1":                   "2001:db8:1:3::/64",
		"2001:0db8:0001:0002:0000:0000:0:1": "2001:db8:1:2::/64",
	} {
		if got := ratelimit.NetworkOf(ip); got != want {
			t.Errorf("NetworkOf(%.40q) = %q, want %q", ip, got, want)
		}
	}
}

// A key holds a hash of a name, however long, never the name.
func TestKeysAreBounded(t *testing.T) {
	long := strings.Repeat("x", 60<<10) + "@example.com"
	for _, k := range []ratelimit.Key{ratelimit.ByName(ratelimit.Account, long), ratelimit.ByName(ratelimit.Mail, "a@example.com"),
		ratelimit.ByNetwork(ratelimit.Credentials, long), ratelimit.ByNetwork(ratelimit.Credentials, "2001:db8:1:2:3:4:5:6")} {
		if s := k.String(); len(s) > 64 || strings.Contains(s, "xxx") || strings.Contains(s, "example") {
			t.Errorf("key %.80q", s)
		}
	}
}
