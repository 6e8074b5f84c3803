#!/usr/bin/env bash
# 5,000 concurrent requests held on one sleeping container: all answered, one
# start, time to the last answer and sleeper's peak memory, and per held
# request (peak minus the RSS before the herd, over 5,000).
#   SLEEPER_BIN=/path/to/sleeper bench/herd.sh   # a prebuilt binary
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
SLEEPER_BENCH=1 SLEEPER_BIN="${SLEEPER_BIN:-}" go test -count=1 -timeout 10m -run '^TestHerd5000$' -v ./bench/ | grep -v '^=== RUN'
