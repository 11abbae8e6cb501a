#!/usr/bin/env bash
# A bounded run of every cargo-fuzz target (fuzz/): builds them on the stable toolchain
# (RUSTC_BOOTSTRAP=1, no sanitizer: see docs/verification.md, "Fuzzing") and runs each for
# FUZZ_SECONDS (default 10) from its committed seeds (fuzz/corpus/<target>/). Fails on any
# crash; the input that crashed is kept in fuzz/artifacts/<target>/ and the command that
# replays it is printed.
#
#   scripts/fuzz-smoke.sh                 # every target
#   scripts/fuzz-smoke.sh rules jwt       # some
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh
#
# The server crate (what `jwt` links) is built only when `jwt` is among the targets: the
# four core targets alone build in a fraction of the time (scripts/test.sh runs those by
# default; see docs/verification.md, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-10}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ws_message amounts_and_ids auction_spec rules jwt)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
# One build for all the targets asked for: `server` adds the jwt target (it links the
# server crate, several minutes of build on its own).
features=()
for t in "${targets[@]}"; do
  if [ "$t" = jwt ]; then features=(--features server); fi
done
echo "== fuzz: build (${targets[*]})"
cargo fuzz build --sanitizer none "${features[@]}"

# New inputs go to a scratch corpus, never into the committed seeds.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  echo "== fuzz: $t (${seconds}s)"
  mkdir -p "$scratch/$t" "corpus/$t"
  if ! cargo fuzz run --sanitizer none "${features[@]}" "$t" "$scratch/$t" "corpus/$t" \
    -- -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
    grep -a -E "panicked|ERROR|SUMMARY|Test unit written|artifact" "$scratch/$t.log" | head -20 || true
    tail -n 30 "$scratch/$t.log"
    echo "fuzz target $t crashed; replay it with:" >&2
    echo "  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --features server $t artifacts/$t/<crash-file>" >&2
    exit 1
  fi
  grep -a -E "^Done|stat::number_of_executed_units" "$scratch/$t.log" | head -2
done
echo "== fuzz smoke passed"
