#!/usr/bin/env bash
# Benchmarks behind docs/PERFORMANCE.md. Usage: scripts/bench.sh queue|upload|load|crash|long-call|transcribe|score|reports|web
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_rust
cargo build --release --locked --quiet
case "${1:-}" in
  queue)
    PG_ADMIN="$(scripts/postgres.sh)"
    PG_BENCH="${PG_ADMIN%/*}/callgrade_bench"
    as_root su postgres -c "dropdb --if-exists callgrade_bench; createdb -O callgrade callgrade_bench"
    target/release/callgrade bench queue --postgres "$PG_BENCH" "${@:2}"
    ;;
  upload)
    target/release/callgrade bench upload "${@:2}"
    ;;
  load)
    ensure_pip
    target/release/callgrade models install base
    PG_ADMIN="$(scripts/postgres.sh)"
    PG_BENCH="${PG_ADMIN%/*}/callgrade_bench_load"
    as_root su postgres -c "dropdb --if-exists callgrade_bench_load; createdb -O callgrade callgrade_bench_load"
    target/release/callgrade bench load --postgres "$PG_BENCH" "${@:2}"
    ;;
  crash)
    # The worker transcribes with the small English model, so many rounds kill a running pass.
    ensure_pip
    target/release/callgrade models install tiny.en
    PG_ADMIN="$(scripts/postgres.sh)"
    PG_BENCH="${PG_ADMIN%/*}/callgrade_bench_crash"
    as_root su postgres -c "dropdb --if-exists callgrade_bench_crash; createdb -O callgrade callgrade_bench_crash"
    CALLGRADE_TRANSCRIBE__MODEL=tiny.en target/release/callgrade bench crash --postgres "$PG_BENCH" "${@:2}"
    ;;
  fuzz)
    # The sample calls, plus the team's test files (other formats, broken inputs) when present.
    seeds=(--seeds samples/calls)
    for extra in ../shared/testdata/calls ../shared/testdata/calls/bad ../shared/testdata/audio; do
      [ -d "$extra" ] && seeds+=(--seeds "$extra")
    done
    target/release/callgrade bench fuzz "${seeds[@]}" "${@:2}"
    ;;
  long-call)
    ensure_pip
    target/release/callgrade models install tiny.en
    target/release/callgrade bench long-call "${@:2}"
    ;;
  transcribe)
    ensure_pip
    target/release/callgrade models install tiny.en
    target/release/callgrade models install base
    RUST_LOG=warn target/release/callgrade bench transcribe "${@:2}"
    ;;
  score)
    # Against CALLGRADE_LLM_BASE_URL if set, else the small local server (a smoke-test model:
    # its latency says what this machine does with a 135M model, not what a real one costs).
    if [ -z "${CALLGRADE_LLM_BASE_URL:-}" ]; then
      ensure_venv_module
      CALLGRADE_LLM_BASE_URL="$(scripts/llm-server.sh start)"
      CALLGRADE_LLM_MODEL="${CALLGRADE_LLM_MODEL:-SmolLM2-135M-Instruct.Q4_1}"
      export CALLGRADE_LLM_BASE_URL CALLGRADE_LLM_MODEL
      export CALLGRADE_LLM__MAX_TOKENS=3000
      export CALLGRADE_LLM__TIMEOUT_SECONDS="${CALLGRADE_LLM__TIMEOUT_SECONDS:-900}"
      export CALLGRADE_LLM__COMPACT_JSON=true
    fi
    RUST_LOG=warn target/release/callgrade bench score "${@:2}"
    ;;
  reports)
    PG_ADMIN="$(scripts/postgres.sh)"
    PG_BENCH="${PG_ADMIN%/*}/callgrade_bench_reports"
    as_root su postgres -c "dropdb --if-exists callgrade_bench_reports; createdb -O callgrade callgrade_bench_reports"
    RUST_LOG=warn target/release/callgrade bench reports --postgres "$PG_BENCH" "${@:2}"
    ;;
  web)
    PG_ADMIN="$(scripts/postgres.sh)"
    PG_BENCH="${PG_ADMIN%/*}/callgrade_bench_web"
    as_root su postgres -c "dropdb --if-exists callgrade_bench_web; createdb -O callgrade callgrade_bench_web"
    RUST_LOG=warn,sqlx::query=error target/release/callgrade bench web --postgres "$PG_BENCH" "${@:2}"
    ;;
  *) echo "usage: $0 queue|upload|load|crash|long-call|fuzz|transcribe|score|reports|web [options]" >&2; exit 2 ;;
esac
