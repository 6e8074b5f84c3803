#!/usr/bin/env bash
# TCP throughput through a sleeper stream listener against a direct
# connection to the same sink, on loopback. Builds bench/cmd/tcpbench and
# runs it; see that command's doc for the method. Extra arguments go to it:
#   bench/tcp-throughput.sh -bytes 1073741824 -conns 4 -rounds 7
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/tcpbench" ./bench/cmd/tcpbench

echo "# $(go version), $(nproc) CPUs, $(uname -sr)"
echo "# single connection"
"$bin/tcpbench" "$@"
echo "# four parallel connections"
"$bin/tcpbench" -conns 4 "$@"
