#!/usr/bin/env bash
# Installs what Retort's build, demo and tests need, skipping what is already there.
# Safe to run again and again. Debian/Ubuntu: uses apt-get (as root, or through sudo).
#
#   scripts/setup.sh          everything the test suite needs: the sqlite3 shell and the
#                             Rust, Python, JavaScript and C guest toolchains
#   scripts/setup.sh --rust   only what Rust revisions need (the demo: a wasm32 target)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
only_rust=false
case "${1:-}" in
  --rust) only_rust=true ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--rust]" >&2; exit 2 ;;
esac

# The host toolchain: rustup's cargo is expected (rust-version in Cargo.toml).
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi

# Rust guests: a wasm32 target, from rustup or from Debian's packages.
"$here/setup-guest-toolchain.sh"
$only_rust && exit 0

# The sqlite3 shell: the offline tests run rendered scripts through it.
if ! command -v sqlite3 >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing sqlite3 from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq sqlite3 >/dev/null
fi

# Python, JavaScript and C guests: componentize-py, componentize-js, clang + wasi-libc.
"$here/setup-languages.sh"
