#!/usr/bin/env bash
# Builds the retort binary (release) and prints its path, wherever cargo puts it
# (CARGO_TARGET_DIR, a config's target-dir, ...): cargo reports it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p retort \
  --message-format=json-render-diagnostics |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "retort":
        print(m["executable"])')"
[ -x "$bin" ] || { echo "retort-bin: cargo did not report the retort binary" >&2; exit 1; }
echo "$bin"
