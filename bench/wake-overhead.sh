#!/usr/bin/env bash
# Wake overhead: a request held by sleeper on a stopped container, against
# `docker start` + polling the app directly. Needs Go and a Docker engine.
#   ROUNDS=10 bench/wake-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SLEEPER_BENCH_ROUNDS="${ROUNDS:-10}" \
  go test -count=1 -run '^TestWakeOverhead$' -v ./bench/ | grep -v '^=== RUN'
