#!/usr/bin/env bash
# HTTP proxy throughput and p99 latency: sleeper against nginx, both proxying
# with keep-alive to the same upstream, measured with wrk (64 connections).
# Installs wrk and nginx from the distribution when missing (Debian/Ubuntu).
#   DURATION=10s bench/http-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk nginx-light >/dev/null
fi
SLEEPER_BENCH=1 SLEEPER_BENCH_DURATION="${DURATION:-10s}" \
  go test -count=1 -timeout 30m -run '^TestHTTPThroughput$' -v ./bench/ | grep -v '^=== RUN'
