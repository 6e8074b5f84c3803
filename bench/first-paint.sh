#!/usr/bin/env bash
# First paint of the loading page in Debian's Chromium: the time from the
# navigation until the page's status line is in the document, for a sleeping
# app, against the 500 ms budget. Needs Go, a Docker engine and chromium.
#   ROUNDS=5 bench/first-paint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SLEEPER_BENCH=1 SLEEPER_BENCH_ROUNDS="${ROUNDS:-5}" \
  go test -count=1 -run '^TestBrowserFirstPaintBudget$' -v ./internal/e2e/ | grep -E '^(first paint|---|ok|FAIL)|loading page present'
