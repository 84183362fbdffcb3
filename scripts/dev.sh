#!/usr/bin/env bash
# Runs dynamo locally without Docker: PostgreSQL and RabbitMQ from this machine,
# the placeholder image provider, images stored under ./data/images and served
# by dynamo-server. Publishes one sample request so you see an image at once.
# Ctrl-C stops both processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./local-db.sh up && ./local-rmq.sh up
cargo build --release --bin dynamo-consumer --bin dynamo-server --bin dynamo-publish
export IMAGE_PROVIDER="${IMAGE_PROVIDER:-placeholder}" STORAGE_BACKEND="${STORAGE_BACKEND:-filesystem}"
export POINTS_COST="${POINTS_COST:-0}" PGHOST="${PGHOST:-127.0.0.1}" PGSSLMODE="${PGSSLMODE:-disable}"
bin=${CARGO_TARGET_DIR:-target}/release
"$bin/dynamo-server" & server=$!
"$bin/dynamo-consumer" & consumer=$!
trap 'kill $server $consumer 2>/dev/null; wait' INT TERM EXIT
sleep 2
"$bin/dynamo-publish" ../shared/vectors/generation-requests/friend-article.json 2>/dev/null \
  || "$bin/dynamo-publish" crates/wire/tests/vectors/generation-requests/friend-article.json
echo "Images appear under ./data/images and at http://localhost:8080/images/<request id>/"
wait
