# jotguard: see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
MODULES := sdk issuer verifier deploy/devstack deploy/demo deploy/bench
BIN := bin
DATA ?= .data
DEVSTACK_FLAGS ?=
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME ?= 10m
# package:target pairs of the Go fuzz targets. `make test` runs their seed
# corpora (testdata/fuzz and f.Add) as ordinary tests; `make fuzz` fuzzes.
FUZZ_TARGETS := sdk:FuzzVerify sdk/revocation:FuzzSETVerify sdk/revocation:FuzzBatchVerify sdk/internal/strictjson:FuzzCheck sdk/kafkafeed:FuzzDecodeRecords \
	issuer/internal/auth:FuzzCanonicalEmail issuer/internal/auth:FuzzRefreshToken issuer/internal/httpapi:FuzzRefreshInputs \
	verifier/internal/reqpath:FuzzCheck

.PHONY: help build test run lint fmt vet tidy ci clean fuzz screenshots

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# What --version and the jotguard_build_info metric report.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

build: ## bin/issuer, bin/verifier, bin/devstack, bin/hydra, bin/demo, bin/jotguard-run
	@mkdir -p $(BIN)
	@echo "== building bin/issuer, bin/verifier, bin/devstack, bin/hydra, bin/demo, bin/jotguard-run"
	@echo "   (the first build compiles the dev stack's FerretDB, SQLite, kfake, Mailpit and Hydra: a few"
	@echo "   minutes on 2 cores; later builds reuse Go's build cache and take seconds)"
	cd issuer && $(GO) build -ldflags "$(LDFLAGS)" -o ../$(BIN)/issuer ./cmd/issuer
	cd verifier && $(GO) build -ldflags "$(LDFLAGS)" -o ../$(BIN)/verifier ./cmd/verifier
	cd deploy/devstack && $(GO) build -o ../../$(BIN)/devstack ./cmd/devstack
	cd deploy/hydra && GOWORK=off $(GO) build -tags sqlite,sqlite_omit_load_extension -o ../../$(BIN)/hydra github.com/ory/hydra/v2
	cd deploy/demo && $(GO) build -o ../../$(BIN)/demo ./cmd/demo && $(GO) build -o ../../$(BIN)/jotguard-run ./cmd/jotguard-run

# WITH_DEVSTACK starts a dev stack on free ports and exports its settings
# for the shell commands after it. The dev stack prints its export lines in
# one write once every server is up; the trap stops it whatever the
# commands do. Its log is $$log.
WITH_DEVSTACK = env=$$(mktemp); log=$$(mktemp); data=$$(mktemp -d); \
	$(BIN)/devstack --data $$data $(DEVSTACK_FLAGS) >$$env 2>$$log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf $$env $$log $$data' EXIT; \
	until [ -s $$env ]; do kill -0 $$pid 2>/dev/null || { echo "devstack failed to start:" >&2; cat $$log >&2; exit 1; }; sleep 0.2; done; \
	set -a; . $$env; set +a; export JOTGUARD_DEVSTACK_BIN=$(CURDIR)/$(BIN)/devstack JOTGUARD_ISSUER_BIN=$(CURDIR)/$(BIN)/issuer;

test: build ## all tests (-race), against a dev stack started here on free ports
	@$(WITH_DEVSTACK) \
	grep -h 'msg=' $$log | cut -c1-200; \
	status=0; for m in $(MODULES); do echo "== go test $$m"; (cd $$m && $(GO) test -race -count=1 ./...) || status=1; done; \
	if [ $$status -ne 0 ]; then echo "== devstack log (last 50 lines)"; tail -n 50 $$log; fi; \
	exit $$status

# jotguard-run starts the dev stack (data in $(DATA)/devstack), the issuer,
# the demo upstream and a verifier proxying to it, then prints a curl
# walk-through; Ctrl-C stops them all (they die with it even if it is killed).
run: build ## everything on loopback, with a curl walk-through (data kept in $(DATA)); Ctrl-C stops it; ARGS='--issuer-addr …' etc.
	@exec $(BIN)/jotguard-run --bin $(BIN) --data $(DATA) $(ARGS)

# The account pages' browser test (Chromium, through what make run starts)
# saves its screenshots for the README.
screenshots: build ## docs/img/account-*.png, taken by the account pages' browser test in Chromium
	@$(WITH_DEVSTACK) \
	cd deploy/demo && JOTGUARD_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -v -run '^TestAccountPagesInChromium$$' ./internal/run/ | grep -E '^(---|ok|FAIL|\s+browser_test)'; \
	exit $${PIPESTATUS[0]}

lint: ## gofmt check, go vet per module (also without go.work), staticcheck when it installs
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "== vet $$m"; (cd $$m && $(GO) vet ./... && GOWORK=off $(GO) vet ./...) || exit 1; done
	@if $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) 2>/dev/null; then \
	  for m in $(MODULES); do echo "== staticcheck $$m"; (cd $$m && $$($(GO) env GOPATH)/bin/staticcheck ./...) || exit 1; done; \
	else echo "staticcheck did not install from the module proxy: skipped"; fi

fuzz: ## fuzz every target for FUZZTIME (default 10m) each; a failing target does not stop the others
	@status=0; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; mod=$${pkg%%/*}; sub=$${pkg#$$mod}; \
	  echo "== fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  (cd $$mod && $(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) ./$${sub#/}) || status=1; done; exit $$status

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

ci: lint test ## what .ci/run runs after installing packages

clean: ## remove binaries and make-run data
	rm -rf $(BIN) .data

# Benchmarks: deploy/bench starts its own dev stack, issuer and
# verifiers, pins the servers under HTTP load to BENCH_SERVER_CPUS and its
# load generator to BENCH_LOAD_CPUS (empty: no pinning), and writes the
# report with its charts in img/ beside it.
BENCH_SERVER_CPUS ?= 0
BENCH_LOAD_CPUS ?= 1
BENCH_ARGS ?= # more bench flags, e.g. BENCH_ARGS=--mongo-uri=mongodb://host:27017/
BENCH_FLAGS = --root $(CURDIR) --server-cpus "$(BENCH_SERVER_CPUS)" --load-cpus "$(BENCH_LOAD_CPUS)" $(BENCH_ARGS)
.PHONY: bench bench-quick
bench: build ## the benchmark report: docs/benchmarks.md and docs/img/ (≤ 10 min)
	cd deploy/bench && $(GO) build -o ../../$(BIN)/bench .
	$(BIN)/bench $(BENCH_FLAGS) --profile --full-memory --out docs/benchmarks.md

bench-quick: build ## every benchmark scenario with small counts, once (≤ 60 s; report in .data/bench-quick/)
	cd deploy/bench && $(GO) build -o ../../$(BIN)/bench .
	$(BIN)/bench --quick $(BENCH_FLAGS) --out .data/bench-quick/benchmarks.md
