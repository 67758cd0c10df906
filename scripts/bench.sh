#!/usr/bin/env bash
# Benchmarks, side by side with the alternatives; writes BENCHMARKS.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$(dirname "${BASH_SOURCE[0]}")/setup-alembic.sh"
"$root/scripts/setup-languages.sh"
cargo build --release --quiet -p retort
cargo bench -p retort --bench history
cargo bench -p retort --bench languages
cargo bench -p retort --bench autogen
cat target/bench/history.md target/bench/languages.md target/bench/autogen.md > BENCHMARKS.md
