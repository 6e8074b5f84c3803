#!/usr/bin/env bash
# CPU and allocation profile of sleeper's proxy path for an awake
# container under wrk -c64, without Docker: an nginx upstream answers a
# short body itself, bench/cmd/proxyprof serves sleeper's front door in
# front of it in-process. Prints the top of both profiles and keeps them.
#   DURATION=10s OUT=/tmp/proxyprof bench/proxy-profile.sh
# The allocation profile samples every allocation, which slows the run:
# read its counts, not its throughput (MEM=0 for a CPU profile only).
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${DURATION:-10s}"; out="${OUT:-$(mktemp -d)}"; mkdir -p "$out"
for cmd in wrk nginx; do command -v $cmd >/dev/null || { echo "$cmd missing: apt-get install wrk nginx-light" >&2; exit 1; }; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); px=$(free_port)
mkdir -p "$out/nginx"
cat > "$out/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $out/nginx; proxy_temp_path $out/nginx; fastcgi_temp_path $out/nginx;
  uwsgi_temp_path $out/nginx; scgi_temp_path $out/nginx;
  server { listen 127.0.0.1:$up; location / { return 200 "hello from the upstream\n"; } }
}
CONF
nginx -p "$out/nginx" -c "$out/nginx/nginx.conf" -g 'daemon off;' & ngx=$!
trap 'kill $ngx $prof 2>/dev/null || true' EXIT
go build -o "$out/proxyprof" ./bench/cmd/proxyprof
memflag=(); [ "${MEM:-1}" = 0 ] || memflag=(-memprofile "$out/mem.out")
secs=$(( ${dur%s} + 4 ))
"$out/proxyprof" -upstream "127.0.0.1:$up" -addr "127.0.0.1:$px" -cpuprofile "$out/cpu.out" "${memflag[@]}" -for "${secs}s" & prof=$!
for _ in $(seq 100); do curl -fs -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$px/" && break; sleep 0.05; done
wrk -t2 -c64 -d"$dur" --latency -H 'Host: bench.localhost' "http://127.0.0.1:$px/" | grep -E 'Requests/sec|requests in|99%'
wait $prof || true
echo "== CPU (top 25) =="; go tool pprof -top -nodecount=25 "$out/proxyprof" "$out/cpu.out" 2>/dev/null | tail -n +5
if [ -f "$out/mem.out" ]; then
  echo "== allocations (objects, top 25; divide by the request count above) =="
  go tool pprof -sample_index=alloc_objects -top -nodecount=25 "$out/proxyprof" "$out/mem.out" 2>/dev/null | tail -n +5
fi
echo "profiles in $out"
