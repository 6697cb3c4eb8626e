# jxg — the justice exchange gateway. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= gateway.toml
CERTS ?= certs/dev
JXG := target/debug/jxg
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS := target/tools/venv/bin/schemathesis
SSLYZE_VERSION := 6.3.1
SSLYZE := target/tools/sslyze/bin/sslyze
# the console's browser tests: playwright-core and axe-core, from tests/console/package-lock.json
CONSOLE_TOOLS := target/tools/console
CARGO_FUZZ_VERSION := 0.13.2
CARGO_NEXTEST_VERSION := 0.9.143
# the fuzz targets (fuzz/fuzz_targets/), and how long `make fuzz` runs each
FUZZ_TARGETS := police_json court_xml prosecution_flat canonical
FUZZ_SECONDS ?= 60
# the build of the fuzz targets: release by default; make test's 5-second runs use --dev, which
# builds in a third of the time
FUZZ_PROFILE ?=
# AddressSanitizer by default, for the unsafe code of the crates the decoders use (ours has none);
# make test's 5-second runs use none, which builds in three quarters of the time
FUZZ_SANITIZER ?= address
# cargo fuzz with the flags its build and its runs share, so that a run reuses the build
FUZZ = RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
FUZZ_FLAGS = $(FUZZ_PROFILE) --sanitizer $(FUZZ_SANITIZER) --fuzz-dir fuzz --target-dir target/fuzz/build
# extra arguments of `jxg-tools bench` in `make bench`, e.g. BENCH_ARGS="--backlog 1000000 --report bench.json"
BENCH_ARGS ?= --report target/bench.json

.PHONY: help run test build certs lint fmt broker tools clean bench demo fuzz fuzz-build audit-tls

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build every crate (debug)
	$(CARGO) build --workspace --all-targets

$(CERTS)/ca.pem:
	$(CARGO) run -q -p jxg-gateway --bin jxg -- certs init --config $(CONFIG) --dir $(CERTS)

certs: $(CERTS)/ca.pem ## make the development certificates and keys (once; never overwrites)

run: certs ## start the gateway on gateway.toml (authority API :8443, admin :9443, store ./data)
	$(CARGO) run -q -p jxg-gateway --bin jxg -- serve --config $(CONFIG)

demo: ## play the sample story through a gateway of its own and show what happened (target/demo)
	@scripts/demo.sh

broker: ## make sure RabbitMQ answers on 127.0.0.1:5672 (starts it where installed)
	@scripts/ensure-broker.sh

tools: ## install what the tests call besides cargo: xmllint (libxml2-utils), chromium and (npm) playwright-core and axe-core for the console's browser tests, schemathesis and sslyze (PyPI, in target/tools/), cargo-nextest and cargo-fuzz (crates.io)
	@command -v xmllint >/dev/null || { echo "installing libxml2-utils for xmllint"; \
	  (apt-get update -qq && apt-get install -y -qq libxml2-utils) >/dev/null || \
	  { echo "xmllint is missing and could not be installed: apt-get install libxml2-utils" >&2; exit 1; }; }
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the console's browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	  { echo "chromium is missing and could not be installed: apt-get install chromium" >&2; exit 1; }; }
	@{ cmp -s tests/console/package-lock.json $(CONSOLE_TOOLS)/package-lock.json && \
	  test -d $(CONSOLE_TOOLS)/node_modules/playwright-core; } || { \
	  echo "installing playwright-core and axe-core (npm, tests/console/package-lock.json) into $(CONSOLE_TOOLS)"; \
	  mkdir -p $(CONSOLE_TOOLS) && cp tests/console/package.json tests/console/package-lock.json $(CONSOLE_TOOLS)/ && \
	  (cd $(CONSOLE_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || \
	  { echo "playwright-core and axe-core could not be installed: Node.js 20 or later with npm is needed" >&2; exit 1; }; }
	@$(CARGO) nextest --version >/dev/null 2>&1 || { echo "installing cargo-nextest $(CARGO_NEXTEST_VERSION)"; \
	  $(CARGO) install -q --locked cargo-nextest --version $(CARGO_NEXTEST_VERSION) || \
	  { echo "cargo-nextest could not be installed from crates.io" >&2; exit 1; }; }
	@command -v cargo-fuzz >/dev/null || { echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION)"; \
	  $(CARGO) install -q --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION) || \
	  { echo "cargo-fuzz could not be installed from crates.io" >&2; exit 1; }; }
	@test -x $(SCHEMATHESIS) || { echo "installing schemathesis $(SCHEMATHESIS_VERSION) into target/tools/venv"; \
	  python3 -m venv target/tools/venv && \
	  target/tools/venv/bin/pip install -q schemathesis==$(SCHEMATHESIS_VERSION) || \
	  { echo "schemathesis could not be installed: python3 with venv and pip is needed" >&2; exit 1; }; }
	@test -x $(SSLYZE) || { echo "installing sslyze $(SSLYZE_VERSION) into target/tools/sslyze"; \
	  python3 -m venv target/tools/sslyze && \
	  target/tools/sslyze/bin/pip install -q sslyze==$(SSLYZE_VERSION) || \
	  { echo "sslyze could not be installed: python3 with venv and pip is needed" >&2; exit 1; }; }

test: ## run every test in phases (tool installs, fmt check, one build, the tests with cargo nextest, fuzzing, the TLS audit, a clean clone running the README's commands), then a table of how long each took
	@scripts/test.sh

bench: certs ## the criterion benchmarks, then jxg-tools bench against the machine's limit (release build); BENCHMARKS.md explains the figures
	$(CARGO) bench -p jxg-gateway --bench policy
	$(CARGO) bench -p jxg-gateway --bench adapters
	$(CARGO) bench -p jxg-gateway --bench core
	$(CARGO) build --release -p jxg-gateway --bin jxg -p jxg-tools --bin jxg-tools
	target/release/jxg-tools bench --config $(CONFIG) $(BENCH_ARGS)

fuzz-build: tools ## build the fuzz targets (FUZZ_PROFILE, FUZZ_SANITIZER) without running them
	@mkdir -p target/fuzz && $(FUZZ) build $(FUZZ_FLAGS) >target/fuzz/build.log 2>&1 || { tail -40 target/fuzz/build.log; exit 1; }

fuzz: fuzz-build ## run each fuzz target for FUZZ_SECONDS (default 60) from the committed corpus; a crash stops with its input in target/fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz/corpus/$$t target/fuzz/artifacts/$$t && \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
	  $(FUZZ) run $(FUZZ_FLAGS) $$t target/fuzz/corpus/$$t fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=target/fuzz/artifacts/$$t/ -print_final_stats=1 \
	    > target/fuzz/$$t.log 2>&1 || { tail -40 target/fuzz/$$t.log; \
	    echo "fuzz: $$t failed; the input is in target/fuzz/artifacts/$$t (make it a regression in fuzz/regressions/$$t)" >&2; exit 1; }; \
	  grep -E "^Done|stat::number_of_executed_units" target/fuzz/$$t.log | head -2; \
	done

audit-tls: tools ## scan both listeners of a gateway of its own with sslyze (with and without a client certificate); fails on any protocol below TLS 1.2, non-AEAD suite, client renegotiation or optional client certificate
	$(CARGO) build -q -p jxg-gateway --bin jxg
	python3 scripts/audit-tls.py $(SSLYZE) $(JXG)

lint: ## formatting and clippy, as before every commit
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output, the development store and certificates
	$(CARGO) clean
	rm -rf data $(CERTS)
