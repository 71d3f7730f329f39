// Package nompenv removes Mailpit's MP_* variables from the process's
// environment as the program starts. Mailpit's cmd package reads them in
// its init function, before main, and may print a warning on stdout there
// (for a deprecated or an invalid variable); the dev stack's stdout carries
// only its export lines, and its Mailpit takes its settings from flags.
//
// Package stack imports it. Go initializes first the package earliest in
// import-path order whose imports are all initialized (the spec's "Package
// initialization"); this package imports only os and strings, as
// github.com/spf13/cobra does, and sorts before it, so it runs before
// cobra and therefore before Mailpit's cmd, which imports cobra. The
// devstack's TestMailpitEnvKeepsStdoutClean checks that it does.
package nompenv

import (
	"os"
	"strings"
)

func init() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "MP_") {
			_ = os.Unsetenv(k)
		}
	}
}
