#!/usr/bin/env bash
# Health-check wake overhead: a request held by sleeper on a stopped container
# whose 30 s-interval health test names a URL, against `docker start` +
# polling that URL directly. Needs Go and a Docker engine.
#   ROUNDS=10 bench/health-wake.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SLEEPER_BENCH_ROUNDS="${ROUNDS:-10}" \
  go test -count=1 -run '^TestHealthWakeOverhead$' -v ./bench/ | grep -v '^=== RUN'
