#!/usr/bin/env bash
# The whole test suite against SQLite, PostgreSQL and MariaDB: installs what is missing,
# starts private database servers (or uses RETORT_TEST_POSTGRES_URL and
# RETORT_TEST_MYSQL_URL when set), runs every test, stops the servers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# The differential tests run real Alembic.
"$root/scripts/setup-alembic.sh"
# shellcheck source=scripts/services.sh
source "$root/scripts/services.sh"
trap services_stop EXIT
cd "$root"
# Build once; the embedded example carries its revisions inside its binary, so `retort
# build` makes them before the tests run (its binary is then rebuilt with them).
cargo test --release --workspace --no-run --quiet
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
(cd examples/embedded && "$target/release/retort" build)
cargo test --release --workspace --no-fail-fast "$@"
