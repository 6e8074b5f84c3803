#!/usr/bin/env bash
# TCP wake overhead: a connection to a sleeping TCP-only container through a
# sleeper.streams listener, against `docker start` + echoing through the
# published port every millisecond. Needs Go and a Docker engine.
#   ROUNDS=10 bench/tcp-wake.sh
#   SLEEPER_BIN=/path/to/other/sleeper bench/tcp-wake.sh   # compare a build
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SLEEPER_BENCH_ROUNDS="${ROUNDS:-10}" \
  go test -count=1 -run '^TestTCPWakeOverhead$' -v ./bench/ | grep -v '^=== RUN'
