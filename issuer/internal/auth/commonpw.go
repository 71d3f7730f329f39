package auth

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// commonPasswordList is the breached-password list shipped with the binary:
// the common passwords of zxcvbn's list that are long enough to pass the
// length rule (its header names the source and licence).
//
//go:embed common_passwords.txt
var commonPasswordList string

// commonPasswords is the list as a set, built on first use (about 16 000
// entries, under 1 MiB of heap).
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 16_000)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordList))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

// CommonPassword reports whether pw is on the breached-password list,
// compared after NFKC and case-insensitively: "Password1234" and
// "ＰＡＳＳＷＯＲＤ1234" are "password1234".
func CommonPassword(pw string) bool {
	_, ok := commonPasswords()[strings.ToLower(norm.NFKC.String(pw))]
	return ok
}
