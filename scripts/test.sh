#!/usr/bin/env bash
# make test: every test, in phases, and at the end a table of how long each phase took (also on a
# failure, which names the phase). One build serves every phase after it: the gateway binary that
# the end-to-end tests, the TLS audit and the README's commands run is the one the workspace build
# made.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
mkdir -p target
phases=target/phases.tsv
: > "$phases"
started=$(date +%s%N)

table() { python3 scripts/phases.py table "$phases" "$started"; }

# run NAME CMD...: runs CMD and records its time and exit code
run() {
  local name=$1
  shift
  echo "== $name"
  local t0 rc
  t0=$(date +%s%N)
  "$@"
  rc=$?
  printf '%s\t%s\t%s\n' "$name" $(( ($(date +%s%N) - t0) / 1000000 )) "$rc" >> "$phases"
  return "$rc"
}

# stop NAME RC: on a failure, the table and the phase that failed
stop() {
  [ "$2" -eq 0 ] && return 0
  table
  echo "make test: phase '$1' failed (exit $2)" >&2
  exit "$2"
}

# phase NAME CMD...: runs CMD, and stops the run on its failure
phase() {
  local rc=0
  run "$@" || rc=$?
  stop "$1" "$rc"
}

# tests NAME FILTER [nextest options]: one nextest run, with a row per test binary from its JUnit
tests() {
  local name=$1 filter=$2 rc=0
  shift 2
  rm -f target/nextest/ci/junit.xml
  run "$name" $CARGO nextest run --workspace --profile ci --no-tests fail -E "$filter" "$@" || rc=$?
  [ -f target/nextest/ci/junit.xml ] && python3 scripts/phases.py junit target/nextest/ci/junit.xml >> "$phases"
  stop "$name" "$rc"
}

# the binary alone must come out of the workspace build as it is: nothing compiled a second time
one_build() {
  local out
  out=$($CARGO build -p jxg-gateway --bin jxg 2>&1) || { echo "$out"; return 1; }
  if grep -q Compiling <<< "$out"; then
    echo "$out"
    echo "the gateway binary built alone has another feature set than the workspace build;" \
      "pin the features that differ in gateway/Cargo.toml (see its feature pins)" >&2
    return 1
  fi
}

# beside PHASE CMD...: starts CMD in the background, its output kept in target/phase-*.log;
# `joined PHASE` waits for it, shows its output and records it as a phase with the time it took
# itself. What runs beside a phase waits on something other than the cores (the network, the
# broker) or does not share what the phase uses.
declare -A beside_pid beside_t0
log_of() { echo "target/phase-$(tr -c 'a-z0-9\n' - <<< "$1").log"; }
# a run that stops early ends what runs beside it
trap 'for p in "${beside_pid[@]}"; do kill -- "-$p" 2>/dev/null; done' EXIT
beside() {
  local name=$1
  shift
  local log
  log=$(log_of "$name")
  beside_t0[$name]=$(date +%s%N)
  rm -f "$log.end"
  # a session of its own, so that ending it ends its children too; it notes when it ended
  setsid bash -c '"$@"; rc=$?; date +%s%N > "$0.end"; exit $rc' "$log" "$@" > "$log" 2>&1 &
  beside_pid[$name]=$!
}
joined() {
  local name=$1 rc=0 log end
  log=$(log_of "$name")
  wait "${beside_pid[$name]}" || rc=$?
  unset "beside_pid[$name]"
  end=$(cat "$log.end" 2>/dev/null || date +%s%N)
  echo "== $name (beside the phases before)"
  cat "$log"
  printf '%s\t%s\t%s\n' "$name (beside)" $(( (end - ${beside_t0[$name]}) / 1000000 )) "$rc" >> "$phases"
  stop "$name" "$rc"
}

# every test an override of the ci profile names (the longest tests first; its filters are
# alternatives joined by " | ") exists: a renamed test would otherwise lose its place without a word
overrides_match() {
  local f n
  while IFS= read -r f; do
    n=$($CARGO nextest list --workspace --profile ci -E "$f" 2>/dev/null | grep -c ' ') || true
    [ "$n" -gt 0 ] || { echo "no test matches the nextest override filter: $f" >&2; return 1; }
  done < <(python3 -c 'import tomllib; print("\n".join(a for o in tomllib.load(open(".config/nextest.toml", "rb"))["profile"]["ci"].get("overrides", []) for a in o["filter"].split(" | ")))')
}

phase "broker" scripts/ensure-broker.sh
phase "postgres" scripts/ensure-postgres.sh
phase "fmt check" $CARGO fmt --all -- --check
# the tool installs are downloads (PyPI, crates.io) mostly: they run while the workspace builds
beside "tool installs" make --no-print-directory tools
phase "build" $CARGO build --workspace --all-targets
joined "tool installs"
phase "one build" one_build
# nextest runs no doc tests: cargo does (none are written yet; this keeps any that are)
phase "doc tests" $CARGO test -q --workspace --doc
phase "test order" overrides_match
# the fuzz targets (the adapters alone, a build of their own in target/fuzz) build and run beside
# the tests and the phases after them, at the lowest priority: the tests leave about a third of
# the cores idle, waiting on the network, the broker and the disk, and the fuzz build takes that
beside "fuzz (build and 5 s a target)" nice -n 19 make --no-print-directory fuzz FUZZ_SECONDS=5 \
  FUZZ_PROFILE=--dev FUZZ_SANITIZER=none
# the broker-restart binary stops and starts the shared RabbitMQ: it runs alone, after the rest
tests "tests" 'not binary(broker_restart)'
tests "broker restart tests" 'binary(broker_restart)' --test-threads 1
phase "TLS audit" make --no-print-directory audit-tls
phase "clean clone and README commands" scripts/clone-check.sh
joined "fuzz (build and 5 s a target)"
table
