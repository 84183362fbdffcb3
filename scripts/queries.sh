#!/usr/bin/env bash
# The offline data of dynamo's checked queries (`.sqlx/`, committed): the
# query macros of crates/store read it, so building needs no database.
#
#   scripts/queries.sh          # regenerate .sqlx/ after changing a query or a migration
#   scripts/queries.sh --check  # fail if .sqlx/ is not current (what .ci/run does)
#
# Both build a scratch database laid out as production (database
# dynamo_sqlx_check on 127.0.0.1:5432 as postgres, dropped and recreated on
# every run; the migrations applied by sqlx-cli with ./sqlx.toml, which puts
# sqlx's table in schema dynamo as connect.rs does), then run
# `cargo sqlx prepare --workspace` against it. sqlx-cli is installed into
# ~/.cache/dynamo-tools when missing (its version is sqlx's, from Cargo.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=()
case "${1:-}" in
  "") ;;
  --check) mode=(--check) ;;
  *) echo "usage: scripts/queries.sh [--check]" >&2; exit 2 ;;
esac

TOOLS="$HOME/.cache/dynamo-tools"
export PATH="$TOOLS/bin:$PATH"
# sqlx-cli must match the sqlx the workspace builds with (same macros, same
# offline format, same migration checksums).
version=$(awk '/^name = "sqlx"$/ { getline; sub(/^version = "/, ""); sub(/"$/, ""); print }' Cargo.lock)
if [ "$(sqlx --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  echo "installing sqlx-cli $version into $TOOLS (cargo install)"
  cargo install --quiet --locked --root "$TOOLS" sqlx-cli --version "$version" \
    --no-default-features --features postgres,rustls,sqlx-toml
fi

DB=dynamo_sqlx_check
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
psql_() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -h 127.0.0.1 -U postgres "$@"; }
psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
sqlx migrate run >/dev/null
cargo sqlx prepare --workspace "${mode[@]}"
