#!/usr/bin/env bash
# Many watched containers: discovery time, resident memory and idle CPU of the
# sleeper binary. Needs Go and a Docker engine.
#   CONTAINERS=1000 IDLE=30s bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SLEEPER_BENCH_CONTAINERS="${CONTAINERS:-100}" SLEEPER_BENCH_IDLE="${IDLE:-30s}" \
  go test -count=1 -timeout 30m -run '^TestScale$' -v ./bench/ | grep -v '^=== RUN'
