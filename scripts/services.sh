#!/usr/bin/env bash
# Makes sure the services the tests need are installed and running on this machine:
# Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 (trust auth for local TCP,
# database `test`), Debian's Chromium for browser tests. Installs Debian packages when
# missing (needs root or sudo). Safe to run again: it only acts on what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    return
  fi
  command -v redis-server >/dev/null 2>&1 || { echo "services: installing redis-server"; apt_install redis-server; }
  echo "services: starting redis on 127.0.0.1:6379"
  mkdir -p /tmp/gavel-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/gavel-redis --logfile /tmp/gavel-redis/redis.log
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return
    sleep 0.2
  done
  echo "services: redis did not start" >&2
  exit 1
}

pg_ok() {
  command -v psql >/dev/null 2>&1 &&
    psql "postgres://postgres@127.0.0.1:5432/test" -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if pg_ok; then return; fi
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "services: installing postgresql"
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! $SUDO grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    # Tests connect as postgres over TCP without a password, as on the project's machines.
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "services: starting postgresql $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
  for _ in $(seq 1 50); do
    if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc "select 1 from pg_database where datname='test'" | grep -q 1 ||
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qc 'create database test' >/dev/null
  pg_ok || { echo "services: postgresql is not reachable on 127.0.0.1:5432" >&2; exit 1; }
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "services: installing chromium"
  apt_install chromium
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_redis
  ensure_postgres
  ensure_chromium
fi
