#!/usr/bin/env bash
# Benchmarks, side by side with the alternatives; writes BENCHMARKS.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$(dirname "${BASH_SOURCE[0]}")/setup-alembic.sh"
# Every guest language, and sqlite3 (the deploy bench's floor).
"$root/scripts/setup.sh"
# The deploy bench measures processes with /usr/bin/time.
if [ ! -x /usr/bin/time ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet -p retort
cargo bench -p retort --bench history
cargo bench -p retort --bench languages
cargo bench -p retort --bench autogen
cargo bench -p retort --bench deploy
# The data migration runs on SQLite and on a private PostgreSQL (or RETORT_TEST_POSTGRES_URL).
(
  # shellcheck source=scripts/services.sh
  source "$root/scripts/services.sh"
  trap services_stop EXIT
  cargo bench -p retort --bench data
)
cat target/bench/history.md target/bench/languages.md target/bench/autogen.md \
  target/bench/deploy.md target/bench/data.md > BENCHMARKS.md
