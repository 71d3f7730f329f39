// Command verifier is jotguard's verifier (SPEC §1, §4). It is being built; see the issues.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "verifier: not implemented yet")
	os.Exit(2)
}
