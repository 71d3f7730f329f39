// Package conformance holds tests that keep what the repository says in
// line with what the binaries do: the README's configuration table is
// generated from `issuer --help`, `verifier --help` and `demo --help`
// (go test -run TestREADME -update rewrites it); every JOTGUARD_* variable
// and port under deploy/ must be one the binaries know; docs/openapi.yaml
// is the issuer's embedded document.
package conformance
