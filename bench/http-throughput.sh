#!/usr/bin/env bash
# HTTP proxy throughput, p99 latency and CPU time per request: sleeper
# against nginx, both proxying with keep-alive to the same upstream (a
# separate nginx), measured with wrk (64 connections); 5 alternating rounds,
# medians. Installs wrk and nginx from the distribution when missing
# (Debian/Ubuntu).
#   DURATION=10s ROUNDS=5 bench/http-throughput.sh
#   SLEEPER_BIN=/path/to/sleeper bench/http-throughput.sh   # a prebuilt binary
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk nginx-light >/dev/null
fi
SLEEPER_BENCH=1 SLEEPER_BENCH_DURATION="${DURATION:-10s}" SLEEPER_BENCH_ROUNDS="${ROUNDS:-5}" \
  SLEEPER_BIN="${SLEEPER_BIN:-}" \
  go test -count=1 -timeout 30m -run '^TestHTTPThroughput$' -v ./bench/ | grep -v '^=== RUN'
