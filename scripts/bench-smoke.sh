#!/usr/bin/env bash
# A seconds-long run of gavel-bench against freshly spawned servers (debug build, loopback
# only). It fails on a correctness violation (gavel-bench exits 2: a watcher saw a gap, a
# repeated or falling seq or price, or ended on another state than the server; the archive
# lost, duplicated or invented a bid; a final-second round had other than one winner; a
# recorded history is not linearizable, per gavel-check) or when the run cannot be made
# (exit 1). It never fails on a timing: latencies and rates are printed, not judged.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${BENCH_PROFILE:-debug}
flag=""
[ "$profile" = release ] && flag="--release"
cargo build $flag --locked -q -p gavel-server -p gavel-bench -p gavel-check
bin="target/$profile"
history=$(mktemp -d)
trap 'rm -rf "$history"' EXIT

echo "-- smoke: 200 watchers on 4 auctions, 20 bidders at 200 bids/s for 2 s (recorded)"
"$bin/gavel-bench" custom --spawn "$bin/gavel" --quiet \
  --watchers 200 --auctions 4 --bidders 20 --rate 200 --duration 2 \
  --record "$history/custom.jsonl"
echo "-- smoke: the recorded history is linearizable"
"$bin/gavel-check" "$history/custom.jsonl"

echo "-- smoke: 100 bidders bid the same amount at the same instant, 2 rounds (recorded)"
"$bin/gavel-bench" final-second --spawn "$bin/gavel" --quiet \
  --bidders 100 --watchers 50 --rounds 2 --record "$history/final-second.jsonl"
echo "-- smoke: the recorded history is linearizable"
"$bin/gavel-check" "$history/final-second.jsonl"

echo "-- smoke: 200 auctions, 100 watchers subscribed to 4 each, 200 bids/s for 2 s"
"$bin/gavel-bench" many-auctions --spawn "$bin/gavel" --quiet \
  --auctions 200 --watchers 100 --subs-per-conn 4 --bidders 20 --rate 200 --duration 2
echo "-- bench smoke: no correctness violation"
