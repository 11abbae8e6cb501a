#!/usr/bin/env bash
# Runs Gavel in distributed mode: two nodes on 127.0.0.1:3001 and 127.0.0.1:3002, sharing
# the local Redis (the authority) and PostgreSQL (the archive). Ctrl-C stops both.
#
#   scripts/run-two-nodes.sh            # build, then run until Ctrl-C
#   REDIS_URL=... DATABASE_URL=... GAVEL_ADMIN_TOKEN=... scripts/run-two-nodes.sh
#
# Defaults: redis://127.0.0.1:6379, postgres://postgres@127.0.0.1:5432/postgres (the
# archive goes into the schema `gavel_local`, created and migrated at start-up), key prefix
# `gavel-local`, admin token `admin`, demo auctions seeded, drain interval 5 s so the
# archive visibly fills (production default: 60 s). If Redis or PostgreSQL are not
# running, scripts/services.sh (when present) starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f scripts/services.sh ]; then
  # shellcheck source=/dev/null
  source scripts/services.sh
  ensure_redis
  ensure_postgres
fi

redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
database_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
prefix="${GAVEL_REDIS_PREFIX:-gavel-local}"
schema="${GAVEL_DATABASE_SCHEMA:-gavel_local}"
# Gavel refuses admin tokens under 16 bytes and JWT secrets under 32: generate both unless given.
admin="${GAVEL_ADMIN_TOKEN:-$(openssl rand -hex 32)}"
jwt_secret="${GAVEL_JWT_SECRET:-$(openssl rand -hex 32)}"
drain_ms="${GAVEL_DRAIN_INTERVAL_MS:-5000}"

cargo build --bin gavel
bin=target/debug/gavel
data=$(mktemp -d)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT INT TERM

for port in 3001 3002; do
  mkdir -p "$data/$port"
  GAVEL_JWT_SECRET="$jwt_secret" \
  "$bin" serve \
    --listen "127.0.0.1:$port" \
    --data-dir "$data/$port" \
    --redis "$redis_url" \
    --database "$database_url" \
    --redis-prefix "$prefix" \
    --database-schema "$schema" \
    --drain-interval-ms "$drain_ms" \
    --node-id "local-$port" \
    --admin-token "$admin" \
    $( [ "$port" = 3001 ] && echo --demo ) &
  pids+=($!)
  # Let the first node seed the demo auctions before the second starts.
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

echo
echo "Gavel, distributed: http://127.0.0.1:3001 and http://127.0.0.1:3002 (admin token: $admin)"
echo "Redis $redis_url prefix $prefix; PostgreSQL $database_url schema $schema"
echo "A bid through one node shows up on the other. Ctrl-C stops both."
wait
