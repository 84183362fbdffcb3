#!/usr/bin/env bash
# Exposure benchmark: a flood of bad bearer tokens (wrk, random tokens, 10 s)
# against a release dynamo-server in goldenvcr mode, while one client from
# another address measures the latency of valid requests; and how many calls
# reach the auth service (a Python stand-in for GET /access, bench/fake_auth.py).
#
#   bench/auth_flood.sh            # BENCHMARKS.md §5
#   SMOKE=1 bench/auth_flood.sh    # 1 s each, the debug build: proves it runs
#
# Four runs of DURATION each: valid requests alone (the usual latency); with
# the flood and the per-address limit on (the default); with the limit off
# (AUTH_FAILURE_LIMIT=0) so every random token reaches the authenticator; and
# the limit off with one bad token repeated (the negative cache).
# Needs PostgreSQL, RabbitMQ (scripts/test.sh), wrk and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SMOKE:-}" ]; then DURATION=1 PROFILE=debug; fi
DURATION=${DURATION:-10} CONNECTIONS=${CONNECTIONS:-32} PROFILE=${PROFILE:-release}
PORT=${PORT:-18081} AUTH_PORT=${AUTH_PORT:-18082} DB=dynamo_bench_auth
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet -p dynamo-server
elif [ ! -x "$CARGO_TARGET_DIR/debug/dynamo-server" ]; then
  cargo build --quiet -p dynamo-server
fi
psql_() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -h 127.0.0.1 -U postgres "$@"; }
psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"

python3 bench/fake_auth.py "$AUTH_PORT" & auth=$!
server=
stop_server() { [ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=; }; }
trap 'stop_server; kill $auth 2>/dev/null; wait $auth 2>/dev/null; psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=$DB PGSSLMODE=disable
export AUTH_MODE=goldenvcr AUTH_URL=http://127.0.0.1:$AUTH_PORT
export LISTEN_PORT=$PORT BIND_ADDR=127.0.0.1 LOG_FORMAT=json RUST_LOG=error
VALID=bench-broadcaster-token
URL=http://127.0.0.1:$PORT

start_server() {  # $1: AUTH_FAILURE_LIMIT
  AUTH_FAILURE_LIMIT=$1 "$CARGO_TARGET_DIR/$PROFILE/dynamo-server" & server=$!
  until curl -fs "$URL/readyz" >/dev/null; do sleep 0.2; done
}
calls() { curl -fs "http://127.0.0.1:$AUTH_PORT/calls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"])'; }
valid() { python3 bench/latency.py 127.0.0.1 "$PORT" "/requests?limit=1" "$VALID" "$DURATION" 127.0.0.2; }
flood() {  # wrk from 127.0.0.1 while the valid client runs from 127.0.0.2
  local before; before=$(calls)
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/random_tokens.lua "$URL" > /tmp/dynamo-bench-flood.txt & local w=$!
  valid
  wait $w
  grep -E "Requests/sec|Non-2xx|Latency" /tmp/dynamo-bench-flood.txt | sed 's/^/  flood: /'
  echo "  auth service calls during the flood: $(( $(calls) - before ))"
}

start_server 20
curl -fs -H "Authorization: Bearer $VALID" "$URL/requests?limit=1" >/dev/null  # warm the cache
echo "== valid requests alone"
valid
echo "== flood of random bad tokens, limit on (AUTH_FAILURE_LIMIT=20 per 60 s per address)"
flood
stop_server

start_server 0
curl -fs -H "Authorization: Bearer $VALID" "$URL/requests?limit=1" >/dev/null
echo "== flood of random bad tokens, limit off (every token reaches the authenticator)"
flood
echo "== flood of one bad token repeated, limit off (the negative cache)"
FIXED_TOKEN=1 flood
