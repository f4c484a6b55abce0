#!/usr/bin/env bash
# `make test`: set-up, then fmt, clippy and every test on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
ensure_apt pkg-config cmake clang libclang-dev
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

echo "==> starting PostgreSQL"
TEST_POSTGRES_URL="$(scripts/postgres.sh)"
export TEST_POSTGRES_URL TEST_REQUIRE_POSTGRES=1

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "==> tests (SQLite and PostgreSQL)"
cargo nextest run --locked --profile ci
