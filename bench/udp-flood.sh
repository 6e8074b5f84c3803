#!/usr/bin/env bash
# UDP flood: one datagram from each of SOURCES (12,000) source ports through a
# sleeper.streams UDP listener to a container's echo; reports sleeper's RSS
# and whether a new client is answered afterwards. Needs Go and Docker.
#   SOURCES=12000 bench/udp-flood.sh
#   SLEEPER_BIN=/path/to/other/sleeper bench/udp-flood.sh   # compare a build
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SOURCES="${SOURCES:-12000}" \
  go test -count=1 -timeout 20m -run '^TestUDPFlood$' -v ./bench/ | grep -v '^=== RUN'
