#!/usr/bin/env bash
# Makes Rust revisions buildable for wasm32-unknown-unknown, idempotently.
#   1. A rustc that already has the wasm32-unknown-unknown std: nothing to do.
#   2. rustup can add the target: `rustup target add wasm32-unknown-unknown`.
#   3. Otherwise (e.g. Debian bookworm with no access to rustup's servers): Debian's
#      rustc-web, rust-web-src, cargo-web and lld-22; `retort build` then builds std
#      from source with /usr/bin/cargo (RUSTC_BOOTSTRAP=1 -Zbuild-std).
set -euo pipefail

has_wasm_std() {
  local sysroot
  sysroot="$("$1" --print sysroot 2>/dev/null)" || return 1
  [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]
}

if command -v rustc >/dev/null 2>&1 && has_wasm_std rustc; then
  echo "guest toolchain: rustc has wasm32-unknown-unknown"
  exit 0
fi

if command -v rustup >/dev/null 2>&1 \
   && timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 \
   && has_wasm_std rustc; then
  echo "guest toolchain: added wasm32-unknown-unknown with rustup"
  exit 0
fi

packages=(rustc-web rust-web-src cargo-web lld-22)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "guest toolchain: no wasm32 target and no apt-get: run 'rustup target add wasm32-unknown-unknown'" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "guest toolchain: installing ${missing[*]} from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  echo "guest toolchain: Debian rustc-web $(/usr/bin/rustc --version | cut -d' ' -f2) (std built from source)"
else
  echo "guest toolchain: Debian packages installed but /usr/bin/cargo or the std sources are missing" >&2
  exit 1
fi
