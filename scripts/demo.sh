#!/usr/bin/env bash
# The main job: build Retort and the blog example's revisions, upgrade a fresh embedded
# SQLite database to head, then show the history and the current revision. Installs only
# what Rust revisions need (scripts/setup.sh --rust).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --rust
retort="$("$root/scripts/retort-bin.sh")"
cd "$root/examples/blog"
rm -f blog.db
set -x
"$retort" build
"$retort" upgrade head
"$retort" history
"$retort" current
