#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster (installing it if missing) and makes sure the test role
# exists. Prints the admin URL the tests use. Idempotent: safe to run on every `make test`.
set -euo pipefail

PG_VERSION=15
URL="postgres://callgrade:callgrade@127.0.0.1:5432/postgres"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d "/usr/lib/postgresql/$PG_VERSION" ]; then
  echo "installing PostgreSQL $PG_VERSION..." >&2
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" >&2
fi
if [ ! -d "/etc/postgresql/$PG_VERSION/main" ]; then
  as_root pg_createcluster "$PG_VERSION" main >&2
fi
if ! as_root pg_ctlcluster "$PG_VERSION" main status >/dev/null 2>&1; then
  as_root pg_ctlcluster "$PG_VERSION" main start >&2
fi
for _ in $(seq 1 50); do
  as_root su postgres -c "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
as_root su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'callgrade') THEN
    CREATE ROLE callgrade LOGIN PASSWORD 'callgrade' CREATEDB;
  END IF; END \\\$\\\$;\"" >&2
# Test databases from earlier runs: drop them so the cluster does not fill up.
for db in $(as_root su postgres -c "psql -qtAc \"SELECT datname FROM pg_database WHERE datname LIKE 'cg_test_%'\""); do
  as_root su postgres -c "dropdb --if-exists '$db'" >&2 || true
done
echo "$URL"
