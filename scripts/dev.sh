#!/usr/bin/env bash
# Runs dynamo locally without Docker: PostgreSQL and RabbitMQ from this machine,
# the placeholder image provider, images stored under ./data/images and served
# by dynamo-server. Publishes the sample requests so you see images at once,
# and prints the alerts and results dynamo publishes.
# Ctrl-C stops both processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./local-db.sh up && ./local-rmq.sh up
# The same build as scripts/test.sh's `cargo test --workspace`: building only
# the binaries resolves dependency features differently (dev-dependencies
# turn more on) and would recompile ~95 crates after a test run, and the
# tests' build again after this one.
cargo build --workspace --all-targets --locked
export IMAGE_PROVIDER="${IMAGE_PROVIDER:-placeholder}" STORAGE_BACKEND="${STORAGE_BACKEND:-filesystem}"
export POINTS_COST="${POINTS_COST:-0}" PGHOST="${PGHOST:-127.0.0.1}" PGSSLMODE="${PGSSLMODE:-disable}"
# The live page's admin token is dev-admin-token (only its SHA-256 is
# configured). That token is public, so both services listen on 127.0.0.1
# only; README "Quick start" says how to open them to the LAN (with a token
# of your own).
export BIND_ADDR="${BIND_ADDR:-127.0.0.1}" CONSUMER_HEALTH_ADDR="${CONSUMER_HEALTH_ADDR:-127.0.0.1:8081}"
export AUTH_MODE="${AUTH_MODE:-standalone}"
export ADMIN_TOKEN_SHA256="${ADMIN_TOKEN_SHA256:-1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd}"
bin=${CARGO_TARGET_DIR:-target}/debug
"$bin/dynamo-server" & server=$!
"$bin/dynamo-consumer" & consumer=$!
# Stands in for the alerts service: alerts need a listener to count as shown.
"$bin/dynamoctl" watch & watch=$!
trap 'kill $server $consumer $watch 2>/dev/null; wait' INT TERM EXIT
port=${LISTEN_PORT:-8080}
until curl -fs "http://localhost:$port/readyz" >/dev/null; do
  # A server that could not start (port 8080 in use, ...) has said why: stop here.
  kill -0 $server 2>/dev/null || { echo "dev.sh: dynamo-server stopped; see above" >&2; exit 1; }
  sleep 1
done
"$bin/dynamoctl" publish crates/wire/tests/vectors/generation-requests/*.json
echo "Watch them at http://localhost:$port/ (token: dev-admin-token); files under ${STORAGE_DIR:-./data/images}"
wait
