#!/usr/bin/env bash
# The main job: build Retort and the blog example's revisions, upgrade a fresh embedded
# SQLite database to head, then show the history and the current revision. Installs only
# what Rust revisions need (scripts/setup.sh --rust).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --rust
# Cargo says where it put the binary (CARGO_TARGET_DIR, a config's target-dir, ...).
retort="$(cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p retort \
  --message-format=json-render-diagnostics |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "retort":
        print(m["executable"])')"
[ -x "$retort" ] || { echo "demo: cargo did not report the retort binary" >&2; exit 1; }
cd "$root/examples/blog"
rm -f blog.db
set -x
"$retort" build
"$retort" upgrade head
"$retort" history
"$retort" current
