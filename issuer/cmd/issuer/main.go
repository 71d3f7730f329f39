// Command issuer is jotguard's issuer (SPEC §1, §4). It is being built; see the issues.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "issuer: not implemented yet")
	os.Exit(2)
}
