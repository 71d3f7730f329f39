// Package conformance holds tests that keep what the repository says in
// line with what the binaries do: the README's configuration table is
// generated from `issuer --help`, `verifier --help` and `demo --help`
// (go test -run TestREADME -update rewrites it); every JOTGUARD_* variable
// and port under deploy/ must be one the binaries know; docs/openapi.yaml
// is the issuer's embedded document; the Kubernetes manifests render with
// kustomize, decode strictly into the API's types with every required
// field, follow the platform rules (resources, security contexts, probes,
// grace periods, disruption budgets, network policies) and route the
// issuer's API; the alert rules pass promtool and use the metrics the
// binaries export.
package conformance
