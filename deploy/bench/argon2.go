package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

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
