#!/usr/bin/env bash
# Starts private PostgreSQL and MariaDB servers for the test suite, or reuses the ones
# named by RETORT_TEST_POSTGRES_URL / RETORT_TEST_MYSQL_URL.
#
#   source scripts/services.sh   # exports the URLs; call services_stop when done
#
# Private servers: data in a temp dir, loopback only, non-default ports, stopped by
# services_stop. Installs Debian's postgresql and mariadb-server when missing.
set -euo pipefail

services_root="$(mktemp -d /tmp/retort-services.XXXXXX)"
chmod 755 "$services_root"
# The first free port from a start (a leftover server must not break the next run).
free_port() {
  local port="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}
pg_port="$(free_port "${RETORT_TEST_PG_PORT:-55432}")"
my_port="$(free_port "${RETORT_TEST_MY_PORT:-53306}")"

services_install() {
  local missing=()
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "services: installing ${missing[*]} from Debian"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Runs a command as the unprivileged owner of the data (initdb refuses root).
as_owner() {
  local user="$1"; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

services_start_postgres() {
  local bin user=postgres
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [ "$(id -u)" -eq 0 ] || user="$(id -un)"
  local data="$services_root/pg"
  mkdir -p "$data" && chown "$user" "$data"
  as_owner "$user" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$services_root/pg-init.log" 2>&1
  as_owner "$user" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $pg_port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  export RETORT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  echo "services: PostgreSQL on 127.0.0.1:$pg_port ($data)"
}

services_start_mariadb() {
  local user=mysql
  [ "$(id -u)" -eq 0 ] || user="$(id -un)"
  local data="$services_root/my"
  mkdir -p "$data" && chown "$user" "$data"
  as_owner "$user" mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=normal \
    --skip-test-db >"$services_root/my-init.log" 2>&1
  as_owner "$user" /usr/sbin/mariadbd --no-defaults --datadir="$data" --port="$my_port" \
    --socket="$data/sock" --bind-address=127.0.0.1 --pid-file="$data/pid" \
    --log-error="$data/server.log" --innodb-flush-log-at-trx-commit=0 --max-connections=300 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci 2>>"$data/stderr.log" &
  for _ in $(seq 1 60); do
    if mariadb --no-defaults -uroot -h127.0.0.1 -P"$my_port" -e "SELECT 1" >/dev/null 2>&1; then
      break
    fi
    sleep 0.5
  done
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$my_port" -e "SELECT 1" >/dev/null
  export RETORT_TEST_MYSQL_URL="mysql://root@127.0.0.1:$my_port/mysql"
  echo "services: MariaDB on 127.0.0.1:$my_port ($data)"
}

services_stop() {
  if [ -f "$services_root/pg/postmaster.pid" ]; then
    local bin user=postgres
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ "$(id -u)" -eq 0 ] || user="$(id -un)"
    as_owner "$user" "$bin/pg_ctl" -D "$services_root/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$services_root/my/pid" ]; then
    kill "$(cat "$services_root/my/pid")" 2>/dev/null || true
    for _ in $(seq 1 40); do [ -f "$services_root/my/pid" ] || break; sleep 0.25; done
  fi
  rm -rf "$services_root"
}

services_install
if [ -z "${RETORT_TEST_POSTGRES_URL:-}" ]; then services_start_postgres; fi
if [ -z "${RETORT_TEST_MYSQL_URL:-}" ]; then services_start_mariadb; fi
