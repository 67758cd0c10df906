#!/usr/bin/env bash
# Installs the toolchains `retort build` uses for non-Rust revisions, skipping what is
# already there (safe to run again and again):
#   Python      componentize-py            (PyPI)
#   JavaScript  componentize-js            (npm, global)
#   C           clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32 (Debian)
#               and wit-bindgen's CLI for the C bindings (crates.io)
# Pass the languages to install (python js c); none means all.
set -euo pipefail

COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0
WIT_BINDGEN=0.61.1

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(python js c)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

want() { [[ " ${langs[*]} " == *" $1 "* ]]; }

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "languages: installing ${missing[*]} from Debian"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if want python; then
  if componentize-py --version 2>/dev/null | grep -q "$COMPONENTIZE_PY"; then
    echo "languages: componentize-py $COMPONENTIZE_PY"
  else
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip
    echo "languages: installing componentize-py $COMPONENTIZE_PY from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "componentize-py==$COMPONENTIZE_PY" \
      || python3 -m pip install --quiet --break-system-packages "componentize-py==$COMPONENTIZE_PY"
    hash -r
    componentize-py --version >/dev/null
  fi
fi

if want js; then
  if componentize-js --version 2>/dev/null | grep -q "$COMPONENTIZE_JS"; then
    echo "languages: componentize-js $COMPONENTIZE_JS"
  else
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    echo "languages: installing componentize-js $COMPONENTIZE_JS from npm"
    $sudo npm install --global --silent "@bytecodealliance/componentize-js@$COMPONENTIZE_JS" >/dev/null
    hash -r
    componentize-js --version >/dev/null
  fi
fi

if want c; then
  apt_install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
  if wit-bindgen --version 2>/dev/null | grep -q "$WIT_BINDGEN"; then
    echo "languages: clang-14 for wasm32-wasi, wit-bindgen $WIT_BINDGEN"
  else
    echo "languages: installing wit-bindgen-cli $WIT_BINDGEN from crates.io"
    cargo install --quiet --locked wit-bindgen-cli --version "$WIT_BINDGEN"
  fi
fi
