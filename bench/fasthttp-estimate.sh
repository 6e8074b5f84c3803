#!/usr/bin/env bash
# Issue 19 estimate: is fasthttp worth moving the front door to? Runs, with
# wrk -t2 -c64 and alternating rounds, nginx as a proxy, sleeper's front door
# (bench/cmd/proxyprof, in-process, no Docker) and a minimal fasthttp reverse
# proxy (bench/cmd/fhproxy; fh-bare: the same forwarding as received, no
# header work, the floor of any fasthttp proxy), all in front of the same nginx upstream, and
# prints each one's req/s, p99 and CPU µs per request (utime+stime from
# /proc, nginx's workers included) with the medians.
#   DURATION=10s ROUNDS=5 bench/fasthttp-estimate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${DURATION:-10s}"; rounds="${ROUNDS:-5}"; out="$(mktemp -d)"
for cmd in wrk nginx; do command -v $cmd >/dev/null || { echo "$cmd missing: apt-get install wrk nginx-light" >&2; exit 1; }; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); ngp=$(free_port); slp=$(free_port); fhp=$(free_port); fbp=$(free_port)
nginx_conf() { # dir, server block
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<CONF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  $2
}
CONF
}
nginx_conf "$out/up" "server { listen 127.0.0.1:$up; location / { return 200 \"hello from the upstream\n\"; } }"
nginx_conf "$out/px" "upstream app { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$ngp; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme; } }"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
nginx -p "$out/up" -c "$out/up/nginx.conf" -g 'daemon off;' & pids+=($!)
nginx -p "$out/px" -c "$out/px/nginx.conf" -g 'daemon off;' & ngx=$!; pids+=($ngx)
go build -o "$out/proxyprof" ./bench/cmd/proxyprof
(cd bench/cmd/fhproxy && go build -o "$out/fhproxy" .)
"$out/proxyprof" -upstream "127.0.0.1:$up" -addr "127.0.0.1:$slp" -for 24h >/dev/null & sl=$!; pids+=($sl)
"$out/fhproxy" -upstream "127.0.0.1:$up" -addr "127.0.0.1:$fhp" & fh=$!; pids+=($fh)
"$out/fhproxy" -bare -upstream "127.0.0.1:$up" -addr "127.0.0.1:$fbp" & fb=$!; pids+=($fb)
for p in $ngp $slp $fhp $fbp; do
  for _ in $(seq 200); do curl -fs -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$p/" && break; sleep 0.05; done
done
tick=$(getconf CLK_TCK)
cpu() { # utime+stime in ticks of a pid and its children
  local t; t=$(awk '{print $14+$15}' "/proc/$1/stat")
  for k in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do t=$((t + $(cpu "$k"))); done
  echo "$t"
}
declare -A res
for r in $(seq "$rounds"); do
  for target in nginx:$ngp:$ngx sleeper:$slp:$sl fasthttp:$fhp:$fh fh-bare:$fbp:$fb; do
    IFS=: read -r name p pid <<<"$target"
    c0=$(cpu "$pid")
    o=$(wrk -t2 -c64 -d"$dur" --latency -H 'Host: bench.localhost' "http://127.0.0.1:$p/")
    c1=$(cpu "$pid")
    n=$(grep -oE '[0-9]+ requests in' <<<"$o" | cut -d' ' -f1)
    rps=$(grep -oE 'Requests/sec: +[0-9.]+' <<<"$o" | awk '{print $2}')
    p99=$(grep -E '^ +99%' <<<"$o" | awk '{print $2}')
    us=$(awk -v c=$((c1-c0)) -v t="$tick" -v n="$n" 'BEGIN{printf "%.1f", c/t*1e6/n}')
    grep -q Non-2xx <<<"$o" && { echo "$name: non-2xx answers"; echo "$o"; exit 1; }
    printf 'round %d %-8s %7.0f req/s  p99 %-8s %5s µs CPU/request\n' "$r" "$name" "$rps" "$p99" "$us"
    res[$name]+="$rps $p99 $us"$'\n'
  done
done
to_us() { awk '{v=$1; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else if (v ~ /us$/) {sub(/us/,"",v)} else {sub(/s$/,"",v); v*=1e6}; print v}'; }
med() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for name in nginx sleeper fasthttp fh-bare; do
  rps=$(awk 'NF{print $1}' <<<"${res[$name]}" | med)
  p99=$(awk 'NF{print $2}' <<<"${res[$name]}" | to_us | med)
  us=$(awk 'NF{print $3}' <<<"${res[$name]}" | med)
  printf 'median %-8s %7.0f req/s  p99 %7.0f µs  %5.1f µs CPU/request\n' "$name" "$rps" "$p99" "$us"
done
