#!/usr/bin/env bash
# 100,000 watchers on one machine (issue 14): NODES gavel nodes (release build, distributed
# mode) on the local Redis and PostgreSQL under their own key prefix and schema, and
# gavel-bench holding the watchers in WORKERS worker processes; then `gavel-bench floor` for
# the same numbers of sockets. Loopback only. Every run is bounded (timeout); the nodes, the
# prefix and the schema are removed at the end, whatever happened.
#
#   scripts/bench-100k.sh                      # ladder 20k → 50k → 100k on one auction at
#                                              # 1 bid/s, 100k over 1,000 auctions at 100 bids/s,
#                                              # floor at 20k/50k/100k sockets (~20 min)
#   PROFILE=debug NODES=3 WORKERS=2 STEPS=200,500 MANY=500 MANY_AUCTIONS=50 FLOOR=200,500 \
#     DURATION=3 scripts/bench-100k.sh       # a try-out in a minute
#
# Why several processes: every process here has an open-files hard limit of 20,000 (root
# cannot raise it), and 100,000 watchers are 200,000 sockets on loopback (one in a node, one
# in a worker). Ports: one source address has ~28,000 ephemeral ports towards one
# destination (ip_local_port_range 32768–60999), so each node listens on its own port and
# holds under 28,000 watchers. The limits met are written to $OUT/limits.txt.
#
# Reports: $OUT/{ladder,many,floor-N}.json, $OUT/summary.md (g2g p50/p99, memory per
# watcher, CPU per delivered frame, ratio to the floor), docs/benchmarks-100k.svg (chart).
# Exit status: non-zero when a run found a correctness violation or could not be made.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-7}
WORKERS=${WORKERS:-7}
STEPS=${STEPS:-20000,50000,100000}
MANY=${MANY:-100000}               # watchers over 1,000 auctions (0: skip)
MANY_AUCTIONS=${MANY_AUCTIONS:-1000}
FLOOR=${FLOOR:-$STEPS}             # socket counts for gavel-bench floor (empty: skip)
DURATION=${DURATION:-10}           # seconds of bidding per step
HEARTBEAT_MS=${HEARTBEAT_MS:-10000}
RUN_TIMEOUT=${RUN_TIMEOUT:-1500}   # seconds, per gavel-bench run
BASE_PORT=${BASE_PORT:-4760}
OUT=${OUT:-target/bench-100k}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}

if [ -f scripts/services.sh ]; then
  # shellcheck source=/dev/null
  source scripts/services.sh
  ensure_redis
  ensure_postgres
fi

PROFILE=${PROFILE:-release}       # debug: for trying the script out
flag=""; [ "$PROFILE" = release ] && flag=--release
if [ "${BUILD:-1}" = 1 ]; then   # BUILD=0: use the binaries already in target/$PROFILE
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} nice cargo build $flag --locked -p gavel-server -p gavel-bench
fi
bin=target/$PROFILE
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/summary.md

tag="gb100k-$$-$(date +%s)"
prefix="$tag"
schema="${tag//-/_}"
admin=$(openssl rand -hex 24)
jwt=$(openssl rand -hex 32)
data=$(mktemp -d)
pids=()

cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  # The run's keys (hash-tagged per auction, all under the prefix) and schema.
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" \
    | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null
  psql "$PG_URL" -qXc "DROP SCHEMA IF EXISTS \"$schema\" CASCADE" >/dev/null 2>&1
  left=$(redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" | wc -l)
  echo "== cleaned up: nodes stopped, prefix $prefix ($left keys left), schema $schema dropped"
  rm -rf "$data"
}
trap cleanup EXIT INT TERM

{
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "open files per process: soft $(ulimit -Sn), hard $(ulimit -Hn)"
  echo "fs.file-max $(cat /proc/sys/fs/file-max), fs.nr_open $(cat /proc/sys/fs/nr_open), open now $(cut -f1 /proc/sys/fs/file-nr)"
  echo "ip_local_port_range $(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' ' ')"
  echo "tcp_mem (pages) $(cat /proc/sys/net/ipv4/tcp_mem | tr '\t' ' '), somaxconn $(cat /proc/sys/net/core/somaxconn)"
  echo "nodes $NODES (ports $BASE_PORT..$((BASE_PORT + NODES - 1))), workers $WORKERS, heartbeat ${HEARTBEAT_MS} ms"
} | tee "$OUT/limits.txt"

servers=()
for i in $(seq 0 $((NODES - 1))); do
  port=$((BASE_PORT + i))
  mkdir -p "$data/$port"
  GAVEL_JWT_SECRET="$jwt" GAVEL_ADMIN_TOKEN="$admin" RUST_LOG=${RUST_LOG:-warn} \
    "$bin/gavel" serve --listen "127.0.0.1:$port" --data-dir "$data/$port" \
    --redis "$REDIS_URL" --database "$PG_URL" \
    --redis-prefix "$prefix" --database-schema "$schema" \
    --node-id "$tag-$i" --drain-interval-ms 1000 \
    --max-connections-per-ip 0 --bids-per-second 1000000 --sessions-per-minute-per-ip 0 \
    --heartbeat-ms "$HEARTBEAT_MS" >"$data/node-$i.log" 2>&1 &
  pids+=($!)
  servers+=(--server "http://127.0.0.1:$port" --server-pid "$!")
  # The first node creates the schema: let it finish before the others start.
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$!" 2>/dev/null || { echo "node $i died:"; cat "$data/node-$i.log"; exit 1; }
    sleep 0.1
  done
done
echo "== $NODES nodes up: ${pids[*]}"

common=("${servers[@]}" --admin-token "$admin" --workers "$WORKERS"
  --archive-pg "$PG_URL" --archive-schema "$schema" --drain 20)
status=0
run() {
  local name=$1; shift
  echo "== $name: gavel-bench $*"
  echo "gavel-bench $*" >"$OUT/$name.cmd"
  set +e
  timeout --signal=INT --kill-after=30 "$RUN_TIMEOUT" \
    "$bin/gavel-bench" "$@" "${common[@]}" --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { echo "!! $name exited $rc"; status=1; }
}

run ladder ladder --steps "$STEPS" --rate 1 --duration "$DURATION" --bidders 10 \
  --label "ladder on one auction, 1 bid/s, $NODES nodes"
# The floor right after the ladder (its top step matters most): the nodes stay up, idle
# (no connection left), while it runs.

IFS=, read -ra floors <<<"$FLOOR"
for n in "${floors[@]}"; do
  # Two files per socket pair in one process: at most ~9,900 pairs per worker here.
  fw=$(( (n + 8999) / 9000 ))
  echo "== floor: $n sockets in $fw processes"
  timeout --kill-after=30 600 "$bin/gavel-bench" floor --sockets "$n" --workers "$fw" --rounds 10 \
    --json "$OUT/floor-$n.json" || { echo "!! floor $n failed"; status=1; }
done

if [ "$MANY" != 0 ]; then
  run many custom --watchers "$MANY" --auctions "$MANY_AUCTIONS" --rate 100 \
    --duration "$DURATION" --bidders 50 --label "$MANY watchers over $MANY_AUCTIONS auctions, 100 bids/s"
fi

reports=()
for f in ladder many; do [ -f "$OUT/$f.json" ] && reports+=("$OUT/$f.json"); done
if [ ${#reports[@]} -gt 0 ]; then
  "$bin/gavel-bench" render "${reports[@]}" --table "$OUT/table.md" --svg docs/benchmarks-100k.svg
fi

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys, glob
out = sys.argv[1]
floors = {}
for f in glob.glob(os.path.join(out, "floor-*.json")):
    r = json.load(open(f))
    floors[r["sockets"]] = r
print("| run | step | watchers | conns | accepted | updates | g2g p50 ms | g2g p99 ms | max ms | floor round median / worst ms | p99 / floor worst | node CPU µs/frame | tool CPU µs/frame | floor send+recv µs/frame | node KiB/watcher | machine busy cores | other cores | load | checks |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for name in ("ladder", "many"):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    for st in r["steps"]:
        g = st["g2g_us"]
        fl = floors.get(st["watchers"])
        ms = lambda us: "%.0f" % (us / 1000) if us else "–"
        floor_txt = "%.0f / %.0f" % (fl["round_median_us"] / 1000, fl["round_worst_us"] / 1000) if fl else "–"
        ratio = "%.2f" % (g["p99"] / fl["round_worst_us"]) if fl and g["p99"] else "–"
        fcpu = "%.1f" % (fl["sender_cpu_us_per_frame"] + fl["receiver_cpu_us_per_frame"]) if fl else "–"
        f = lambda v, d=1: ("%.*f" % (d, v)) if v is not None else "–"
        print("| %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, st["name"], st["watchers"], st["connections"], st["accepted"], st["updates"],
            ms(g["p50"]), ms(g["p99"]), ms(g["max"]), floor_txt, ratio,
            f(st["server"]["cpu_us_per_update"]), f(st.get("tool_cpu_us_per_update")), fcpu,
            f(st["server"]["idle_kib_per_conn"]), f(st.get("machine_busy_cores"), 2),
            f(st.get("other_busy_cores"), 2), f(st.get("load_average")),
            "ok" if r["ok"] else "VIOLATIONS"))
    c = r["checks"]
    print()
    print("%s: %d violations; %d watcher states compared, %d differ; archive %s; events %s; notes %s" % (
        name, c["violations"], c["watcher_states_checked"], c["watcher_state_mismatches"],
        c.get("archive"), c.get("events"), r.get("notes")))
    for v in c.get("violation_samples", [])[:5]:
        print("  VIOLATION:", v)
    print()
for n, fl in sorted(floors.items()):
    print("floor %d sockets (%d processes): send %.2f + receive %.2f µs/frame; round median %.0f ms, worst %.0f ms" % (
        n, fl["workers"], fl["sender_cpu_us_per_frame"], fl["receiver_cpu_us_per_frame"],
        fl["round_median_us"] / 1000, fl["round_worst_us"] / 1000))
EOF
echo "== reports in $OUT/ (summary.md), chart docs/benchmarks-100k.svg"
exit $status
