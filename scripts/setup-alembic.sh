#!/usr/bin/env bash
# Real Alembic, the oracle of the differential tests (tests/alembic/) and the other
# side of the benchmarks: a pinned version from PyPI, skipped when already there.
set -euo pipefail
ALEMBIC=1.20.1
if python3 -c "import alembic, sys; sys.exit(alembic.__version__ != '$ALEMBIC')" 2>/dev/null; then
  echo "alembic: $ALEMBIC"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-pip >/dev/null
fi
echo "alembic: installing $ALEMBIC from PyPI"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "alembic==$ALEMBIC" \
  || python3 -m pip install --quiet --break-system-packages "alembic==$ALEMBIC"
python3 -c "import alembic" >/dev/null
