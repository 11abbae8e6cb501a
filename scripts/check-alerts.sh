#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) with promtool: syntax
# (`promtool check rules`) and behaviour (`promtool test rules` on alerts.test.yml, where
# every alert is shown to fire and not to fire). Then proves the checks can fail: a copy
# with a broken expression must fail `check rules`, and a copy whose archive-lag threshold
# is wrong must fail `test rules`. Installs Debian's `prometheus` package (for promtool)
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  source scripts/services.sh
  echo "check-alerts: installing prometheus (for promtool)"
  apt_install prometheus
fi

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp deploy/prometheus/alerts.test.yml "$tmp/"

# A broken rule (an unbalanced parenthesis) must fail the syntax check.
sed 's/max by (instance) (gavel_archive_lag_seconds) > 300/max by (instance) (gavel_archive_lag_seconds > 300/' \
  deploy/prometheus/alerts.yml >"$tmp/alerts.yml"
cmp -s deploy/prometheus/alerts.yml "$tmp/alerts.yml" && { echo "check-alerts: the syntax break did not apply" >&2; exit 1; }
if promtool check rules "$tmp/alerts.yml" >"$tmp/out" 2>&1; then
  echo "check-alerts: promtool check rules accepted a broken rule" >&2
  exit 1
fi

# A rule that no longer fires when it should must fail the unit tests.
sed 's/max by (instance) (gavel_archive_lag_seconds) > 300/max by (instance) (gavel_archive_lag_seconds) > 3000/' \
  deploy/prometheus/alerts.yml >"$tmp/alerts.yml"
cmp -s deploy/prometheus/alerts.yml "$tmp/alerts.yml" && { echo "check-alerts: the threshold change did not apply" >&2; exit 1; }
promtool check rules "$tmp/alerts.yml" >/dev/null
if promtool test rules "$tmp/alerts.test.yml" >"$tmp/out" 2>&1; then
  echo "check-alerts: promtool test rules passed a rule that never fires" >&2
  exit 1
fi
echo "check-alerts: rules valid, unit tests pass, broken rules are caught"
