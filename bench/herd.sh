#!/usr/bin/env bash
# 5,000 concurrent requests held on one sleeping container: all answered, one
# start, time to the last answer and sleeper's peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
SLEEPER_BENCH=1 go test -count=1 -timeout 10m -run '^TestHerd5000$' -v ./bench/ | grep -v '^=== RUN'
