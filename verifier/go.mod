module github.com/jotguard/jotguard/verifier

go 1.26.0

replace github.com/jotguard/jotguard/sdk => ../sdk
