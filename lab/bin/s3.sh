#!/usr/bin/env bash
# The lab's S3-compatible object storage in three regions: one moto server per region (PyPI moto[server], in
# the virtualenv) on loopback, and one nginx in front of them as the TLS terminator - pgBackRest insists on TLS
# to S3, and moto's own TLS mode breaks its connections.
#
# Usage: lab/bin/s3.sh start | stop | status | down REGION | up REGION
#   start       starts what is not running (idempotent); prints "region <name> <endpoint> <port>" per region
#   stop        stops the store - also one another checkout left running: its ports are the store's, whoever
#               started it (a leftover would otherwise serve old objects, or hold the ports so nginx cannot bind)
#   down REGION makes the region unreachable (its TLS endpoint stops listening: connection refused) while its
#               moto keeps the objects; up REGION brings it back
# Environment:
#   LAB_S3_DIR     state: endpoint certificate, nginx configuration, logs, pids (default .lab/s3)
#   LAB_S3_LISTEN  address the TLS endpoints listen on (default 127.0.0.1; Molecule: its network's gateway,
#                  which the lab hosts reach)
#   LAB_S3_NAME    DNS name in the endpoint's certificate besides the address (default s3.dslab.test; pgBackRest
#                  matches the endpoint against DNS names only, so lab hosts reach the store by this name)
#   LAB_S3_CA_DIR  the lab CA (ca.pem, ca.key) that signs the endpoint's certificate (default: a CA of its own
#                  in LAB_S3_DIR)
#   LAB_S3_PORT_OFFSET  added to every port below (default 0; tests of this script use their own ports)
# Regions (TLS port -> moto port on 127.0.0.1): eu-west-1 9441 -> 9201, eu-central-1 9442 -> 9202,
# us-east-1 9443 -> 9203.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${LAB_S3_DIR:-$root/.lab/s3}
listen=${LAB_S3_LISTEN:-127.0.0.1}
name=${LAB_S3_NAME:-s3.dslab.test}
ca_dir=${LAB_S3_CA_DIR:-$dir/ca}
moto="$root/.venv/bin/moto_server"
regions=(eu-west-1 eu-central-1 us-east-1)
offset=${LAB_S3_PORT_OFFSET:-0}
declare -A tls_port=([eu-west-1]=$((9441 + offset)) [eu-central-1]=$((9442 + offset)) [us-east-1]=$((9443 + offset)))
declare -A moto_port=([eu-west-1]=$((9201 + offset)) [eu-central-1]=$((9202 + offset)) [us-east-1]=$((9203 + offset)))

answers() {  # answers URL: moto (or nginx in front of it) answers HTTP
  curl -s -o /dev/null --max-time 2 ${2:+--cacert "$2"} "$1"
}

known_region() {
  [ -n "${tls_port[$1]:-}" ] || { echo "unknown region '$1' (known: ${regions[*]})" >&2; exit 2; }
}

certificate() {
  mkdir -p "$ca_dir" "$dir/tls"
  if [ ! -f "$ca_dir/ca.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=DealerScope lab S3 CA" \
      -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem" 2>/dev/null
    chmod 0600 "$ca_dir/ca.key"
  fi
  # Re-issued when the name, the address or the CA changed.
  if [ ! -f "$dir/tls/server.pem" ] || ! openssl x509 -in "$dir/tls/server.pem" -noout -ext subjectAltName 2>/dev/null | grep -qx " *DNS:$name, IP Address:$listen" \
     || ! openssl verify -CAfile "$ca_dir/ca.pem" "$dir/tls/server.pem" >/dev/null 2>&1; then
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth\n' "$name" "$listen" >"$dir/tls/ext.cnf"
    openssl x509 -req -in "$dir/tls/server.csr" -CA "$ca_dir/ca.pem" -CAkey "$ca_dir/ca.key" -CAcreateserial -days 825 \
      -extfile "$dir/tls/ext.cnf" -out "$dir/tls/server.pem" 2>/dev/null
    chmod 0600 "$dir/tls/server.key"
  fi
  cp "$ca_dir/ca.pem" "$dir/ca.pem"
}

nginx_conf() {  # the regions that are up listen; one that is down has no server block
  local region
  mkdir -p "$dir/nginx/logs" "$dir/nginx/tmp" "$dir/down"
  {
    echo "worker_processes 1; pid $dir/nginx/nginx.pid; error_log $dir/nginx/logs/error.log;"
    echo "events { worker_connections 256; }"
    echo "http {"
    echo "  access_log $dir/nginx/logs/access.log; client_max_body_size 0; client_body_temp_path $dir/nginx/tmp;"
    echo "  proxy_temp_path $dir/nginx/tmp; proxy_request_buffering off; proxy_buffering off; proxy_http_version 1.1;"
    for region in "${regions[@]}"; do
      [ -e "$dir/down/$region" ] && continue
      echo "  server { listen $listen:${tls_port[$region]} ssl;"
      echo "    ssl_certificate $dir/tls/server.pem; ssl_certificate_key $dir/tls/server.key;"
      # moto reads a bucket from a host name (virtual-hosted style): it is given its own address instead, so every
      # request is path-style whatever name the client used (moto does not check signatures).
      echo "    location / { proxy_pass http://127.0.0.1:${moto_port[$region]}; proxy_set_header Host 127.0.0.1:${moto_port[$region]}; } }"
    done
    echo "}"
  } >"$dir/nginx/nginx.conf"
}

port_pids() {  # processes listening on a TCP port, any address
  ss -Hltnp "( sport = :$1 )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

nginx_running() {
  [ -f "$dir/nginx/nginx.pid" ] && kill -0 "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null
}

nginx_apply() {
  nginx_conf
  nginx -t -q -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon on;' 2>"$dir/nginx/logs/test.log" \
    || { cat "$dir/nginx/logs/test.log" >&2; exit 1; }
  if nginx_running; then
    nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -s reload 2>>"$dir/nginx/logs/signal.log"
  else
    nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon on;'
  fi
}

wait_endpoint() {  # wait_endpoint REGION up|down
  local url="https://$listen:${tls_port[$1]}/"
  for _ in $(seq 50); do
    if answers "$url" "$dir/ca.pem"; then [ "$2" = up ] && return 0; else [ "$2" = down ] && return 0; fi
    sleep 0.1
  done
  echo "region $1: $url is not $2 after 5 s (see $dir/nginx/logs/error.log)" >&2; exit 1
}

case "${1:-status}" in
  start)
    [ -x "$moto" ] || { echo "s3: $moto is missing (make venv installs moto[server])" >&2; exit 2; }
    certificate
    for region in "${regions[@]}"; do
      if ! answers "http://127.0.0.1:${moto_port[$region]}/"; then
        nohup "$moto" -H 127.0.0.1 -p "${moto_port[$region]}" >"$dir/moto-$region.log" 2>&1 &
        echo $! >"$dir/moto-$region.pid"
      fi
    done
    for region in "${regions[@]}"; do
      for _ in $(seq 100); do answers "http://127.0.0.1:${moto_port[$region]}/" && break; sleep 0.1; done
      answers "http://127.0.0.1:${moto_port[$region]}/" || { echo "moto of $region did not start (see $dir/moto-$region.log)" >&2; exit 1; }
    done
    rm -rf "$dir/down"
    nginx_apply
    for region in "${regions[@]}"; do
      wait_endpoint "$region" up
      echo "region $region $listen ${tls_port[$region]}"
    done ;;
  down|up)
    region=${2:-}; known_region "$region"
    mkdir -p "$dir/down"
    if [ "$1" = down ]; then touch "$dir/down/$region"; else rm -f "$dir/down/$region"; fi
    nginx_apply
    wait_endpoint "$region" "$1"
    echo "region $region $1" ;;
  stop)
    for region in "${regions[@]}"; do rm -f "$dir/moto-$region.pid"; done
    ports=()
    for region in "${regions[@]}"; do ports+=("${tls_port[$region]}" "${moto_port[$region]}"); done
    for port in "${ports[@]}"; do
      for pid in $(port_pids "$port"); do kill "$pid" 2>/dev/null || true; done
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 50); do [ -z "$(port_pids "$port")" ] && break; sleep 0.1; done
      [ -z "$(port_pids "$port")" ] || { echo "s3: port $port is still held by $(port_pids "$port" | tr '\n' ' ')" >&2; exit 1; }
    done ;;
  status)
    for region in "${regions[@]}"; do
      if answers "https://$listen:${tls_port[$region]}/" "$dir/ca.pem"; then state=up; else state=down; fi
      echo "region $region $listen ${tls_port[$region]} $state"
    done ;;
  *) echo "usage: $0 start|stop|status|down REGION|up REGION" >&2; exit 2 ;;
esac
