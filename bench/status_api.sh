#!/usr/bin/env bash
# Status API benchmark: wrk on GET /requests/{id} and GET /requests?limit=50
# against a release dynamo-server, and pgbench running the same SQL the
# server issues per call, at the same concurrency, in the same run. The
# public gallery (GET /gallery, 24 aired images as HTML) is measured in the
# same run against the same references.
#
#   bench/status_api.sh            # 10 s per measurement (BENCHMARKS.md)
#   SMOKE=1 bench/status_api.sh   # CI: 1 s each, 200 rows, the debug build
#
# Needs PostgreSQL and RabbitMQ (scripts/test.sh sets them up), wrk and pgbench
# (apt-get install wrk postgresql-contrib; pgbench ships with PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SMOKE:-}" ]; then
  DURATION=1 ROWS=200 PROFILE=debug
  echo "SMOKE RUN: 1 s per measurement, 200 rows, the debug build; only proves the benchmark still runs."
  echo "Its figures measure nothing and have no target. Measure with: bench/status_api.sh"
fi
DURATION=${DURATION:-10} ROWS=${ROWS:-10000} CONNECTIONS=${CONNECTIONS:-64} PROFILE=${PROFILE:-release}
PORT=${PORT:-18080} DB=dynamo_bench_status
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -n1)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet -p dynamo-server
elif [ ! -x "$CARGO_TARGET_DIR/debug/dynamo-server" ]; then
  cargo build --quiet -p dynamo-server  # the smoke run reuses the one cargo test built
fi
psql_() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -h 127.0.0.1 -U postgres "$@"; }

psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
TOKEN=bench-admin-token
export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=$DB PGSSLMODE=disable
export AUTH_MODE=standalone ADMIN_TOKEN_SHA256=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
# The server keeps uploaded sounds with the images: a directory will do here.
export STORAGE_BACKEND=filesystem STORAGE_DIR=${TMPDIR:-/tmp}/dynamo-bench-status
export PUBLIC_GALLERY=true PUBLIC_BASE_URL=http://127.0.0.1:$PORT
export LISTEN_PORT=$PORT BIND_ADDR=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn
"$CARGO_TARGET_DIR/$PROFILE/dynamo-server" & server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done  # migrations ran

# $ROWS finished requests with an image each, a friend name on every other one.
psql_ -d $DB <<SQL
INSERT INTO dynamo.image_request (id, twitch_user_id, twitch_display_name, style, inputs, prompt,
    points_cost, state, created_at, debited_at, stored_at, alerted_at, settled_at, finished_at, updated_at)
SELECT gen_random_uuid(), (i % 500)::text, 'viewer' || (i % 500),
       CASE WHEN i % 2 = 0 THEN 'ghost' ELSE 'friend' END,
       jsonb_build_object('subject', 'a seal number ' || i), 'a ghostly image of a seal number ' || i,
       200, 'succeeded', t, t, t, t, t, t, t
FROM generate_series(1, $ROWS) i, LATERAL (SELECT now() - i * interval '1 second' AS t) at;
INSERT INTO dynamo.image (image_request_id, index, url, content_type, byte_size)
SELECT id, 0, 'https://example.test/' || id || '/' || id || '-0.jpg', 'image/jpeg', 120000 FROM dynamo.image_request;
INSERT INTO dynamo.answer (image_request_id, prompt, value)
SELECT id, 'name it', 'Name' || left(id::text, 4) FROM dynamo.image_request WHERE style = 'friend';
ANALYZE;
SQL
ID=$(psql_ -d $DB -At -c "SELECT id FROM dynamo.image_request WHERE style = 'friend' ORDER BY created_at DESC OFFSET $((ROWS / 8)) LIMIT 1")

# The statements dynamo-server issues per call (crates/store: Store::detail;
# Store::list and Store::images_of). Keep them in step with the store.
SELECT_REQUEST="SELECT r.id, r.twitch_user_id, r.twitch_display_name, r.broadcast_id, r.screening_id,
 r.tape_id, r.style, r.inputs, r.prompt, r.state, r.attempts, r.points_cost, r.free_of_charge,
 r.ledger_flow_id, r.error_message, r.retry_of, r.created_at, r.debited_at, r.named_at, r.stored_at,
 r.alerted_at, r.settled_at, r.result_published_at, r.finished_at, r.updated_at, r.next_attempt_at,
 a.value AS name FROM dynamo.image_request r LEFT JOIN dynamo.answer a ON a.image_request_id = r.id"
work=$(mktemp -d)
cat > "$work/by_id.sql" <<SQL
SELECT d.*,
  coalesce((SELECT json_agg(i ORDER BY i.index) FROM (SELECT index, url, color, content_type, byte_size
    FROM dynamo.image WHERE image_request_id = d.id) i), '[]') AS images,
  coalesce((SELECT json_agg(f ORDER BY f.id) FROM (SELECT id, step, attempt, failed_at, reason
    FROM dynamo.step_failure WHERE image_request_id = d.id) f), '[]') AS failures
FROM ($SELECT_REQUEST WHERE r.id = '$ID') d;
SQL
cat > "$work/list.sql" <<SQL
\\set dummy 0
SELECT * FROM ($SELECT_REQUEST WHERE true ORDER BY r.created_at DESC, r.id DESC LIMIT 51) page;
SELECT image_request_id, index, url, color, content_type, byte_size FROM dynamo.image
 WHERE image_request_id = ANY(ARRAY(SELECT id FROM dynamo.image_request ORDER BY created_at DESC, id DESC LIMIT 51)) ORDER BY image_request_id, index;
SQL
# The gallery's one statement per page (crates/store/src/gallery.rs).
cat > "$work/gallery.sql" <<SQL
SELECT g.* FROM (
  SELECT left(encode(sha256(convert_to(r.id::text, 'UTF8')), 'hex'), 24) AS public_id,
    r.twitch_display_name, coalesce(r.inputs->>'subject', '') AS description, a.value, r.style,
    i.url, r.created_at AS requested_at
  FROM dynamo.image_request r
  JOIN dynamo.image i ON i.image_request_id = r.id AND i.index = 0
  LEFT JOIN dynamo.answer a ON a.image_request_id = r.id
  WHERE r.state = 'succeeded' AND r.approval_decision IS DISTINCT FROM 'declined'
    AND r.created_at > now() - make_interval(days => 7)
    AND (EXISTS (SELECT 1 FROM dynamo.overlay_alert q WHERE q.image_request_id = r.id AND q.started_at IS NOT NULL)
         OR NOT EXISTS (SELECT 1 FROM dynamo.overlay_alert q WHERE q.started_at IS NOT NULL))
) g ORDER BY g.requested_at DESC, g.public_id DESC LIMIT 24;
SQL

wrk_rps() { # path
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$1" \
    | tee "$work/wrk.txt" | awk '/Requests\/sec/ {print $2}'
}
pgbench_tps() { # script
  "$PGBENCH" -n -h 127.0.0.1 -U postgres -c "$CONNECTIONS" -j 2 -T "$DURATION" -M prepared -f "$1" "$DB" 2>/dev/null \
    | awk '/^tps/ {print $3}'
}
curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/requests/$ID" | grep -q '"state":"succeeded"' \
  || { echo "GET /requests/$ID did not answer the seeded request" >&2; exit 1; }
printf '%-22s %12s %12s %8s %10s\n' endpoint "dynamo rps" "pgbench tps" ratio target
for case in "by id|/requests/$ID|by_id.sql|0.5" "list of 50|/requests?limit=50|list.sql|0.3" "gallery page|/gallery|gallery.sql|-"; do
  IFS='|' read -r name path script target <<<"$case"
  # Warm-up (pool connections, caches), not counted.
  wrk -t2 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" >/dev/null
  api=$(wrk_rps "$path")
  errors=$(awk '/Non-2xx|Socket errors/' "$work/wrk.txt")
  [ -z "$errors" ] || { echo "wrk saw errors on $path: $errors" >&2; exit 1; }
  db=$(pgbench_tps "$work/$script")
  printf '%-22s %12.0f %12.0f %8.2f %10s\n' "$name" "$api" "$db" "$(awk -v a="$api" -v b="$db" 'BEGIN {print a / b}')" "$(if [ -n "${SMOKE:-}" ]; then echo "- (smoke)"; elif [ "$target" = - ]; then echo "none"; else echo "≥ $target"; fi)"
done
echo "($CONNECTIONS connections, ${DURATION}s each, $ROWS requests in the table, $(nproc) cores)"
[ -z "${SMOKE:-}" ] || echo "SMOKE RUN: the figures above measure nothing; a miss of the target here is not a regression."
