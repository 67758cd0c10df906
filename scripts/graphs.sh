#!/usr/bin/env bash
# Renders the README's pictures of the blog's and the branched example's histories
# (`retort history --graph dot`, drawn by Graphviz) into docs/images/. Installs Graphviz
# from Debian when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v dot >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "graphs: installing graphviz from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq graphviz >/dev/null
fi
"$root/scripts/setup.sh" --rust
retort="$("$root/scripts/retort-bin.sh")"
mkdir -p "$root/docs/images"
draw() { # example, picture name, then what to upgrade to before drawing
  local dir="$root/examples/$1" out="$root/docs/images/$2.svg" db
  db="$(mktemp -d)/graph.db"
  (cd "$dir" && "$retort" build >&2)
  (cd "$dir" && "$retort" upgrade "$3" --url "sqlite:$db" >/dev/null 2>&1)
  (cd "$dir" && "$retort" history --graph dot --url "sqlite:$db") | dot -Tsvg -o "$out"
  rm -rf "$(dirname "$db")"
  echo "graphs: $out"
}
draw blog blog-history 42a8112dd419
draw branched branched-history b2c0ffee0004
