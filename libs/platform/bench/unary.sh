#!/usr/bin/env bash
# Quick per-call cost of the platform's server path: one unary gRPC call
# (UserService/GetUser, in-memory handler) served three ways, server pinned
# to core 0, load from h2load on core 1 (Debian package nghttp2-client).
# Usage: libs/platform/bench/unary.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "needs h2load: apt-get install nghttp2-client" >&2; exit 1; }
requests=${1:-100000}
body=$(mktemp)
# gRPC frame: flag 0, length 38, then GetUserRequest{id: <36-char uuid>} (tag 0x0a, length 0x24).
printf '\x00\x00\x00\x00\x26\x0a\x24%s' "8f0c4a52-7d0e-4c0e-9d5e-2b1a3c4d5e6f" >"$body"
for mode in ${MODES:-stock meridian quiet secured}; do
  log=$(mktemp)
  taskset -c 0 node --conditions=@meridian/source --import tsx bench/unary-server.ts "$mode" >"$log" 2>&1 &
  server=$!
  until grep -q '^port ' "$log"; do sleep 0.1; done
  sleep 0.2 # the token line, when there is one, comes first
  port=$(awk '/^port /{print $2}' "$log")
  url="http://127.0.0.1:$port/meridian.user.v1.UserService/GetUser"
  token=$(awk '/^token /{print $2}' "$log")
  auth=(); [[ -n "$token" ]] && auth=(-H "authorization: Bearer $token")
  run() { taskset -c 1 h2load -n "$1" -c 1 -m "$2" -t 1 --data="$body" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" "$url"; }
  run 20000 32 >/dev/null # warm-up: JIT and caches
  loaded=$(run "$requests" 32)
  unloaded=$(run 5000 1)
  printf '%-9s %8s req/s  loaded mean %-8s | unloaded mean %-8s max %s\n' "$mode" \
    "$(awk '/^finished in/{print int($4)}' <<<"$loaded")" \
    "$(awk '/^time for request:/{print $6}' <<<"$loaded")" \
    "$(awk '/^time for request:/{print $6}' <<<"$unloaded")" \
    "$(awk '/^time for request:/{print $5}' <<<"$unloaded")"
  grep -q "status codes: $requests 2xx" <<<"$loaded" || echo "  (not every response was HTTP 200)"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -f "$log"
done
rm -f "$body"
