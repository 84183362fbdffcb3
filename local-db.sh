#!/usr/bin/env bash
# PostgreSQL for local development: ./local-db.sh up|down|env|logs
# Uses Docker when an engine runs; otherwise the locally installed PostgreSQL.
set -euo pipefail
name=dynamo-postgres
have_docker() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

case "${1:-}" in
  up)
    if have_docker; then
      docker start "$name" 2>/dev/null || docker run -d --name "$name" -p 5432:5432 \
        -e POSTGRES_PASSWORD=dynamo postgres:16
    elif command -v pg_ctlcluster >/dev/null; then
      port_open || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    else
      echo "No Docker engine and no PostgreSQL here. Install one: apt-get install postgresql" >&2; exit 1
    fi
    for _ in $(seq 60); do port_open && { echo "PostgreSQL is up on 127.0.0.1:5432"; exit 0; }; sleep 1; done
    echo "PostgreSQL did not come up" >&2; exit 1 ;;
  down)
    if have_docker; then docker rm -f "$name"; else pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main stop; fi ;;
  env)
    if have_docker; then
      printf 'PGHOST=127.0.0.1\nPGPORT=5432\nPGDATABASE=postgres\nPGUSER=postgres\nPGPASSWORD=dynamo\nPGSSLMODE=disable\n'
    else
      printf 'PGHOST=127.0.0.1\nPGPORT=5432\nPGDATABASE=postgres\nPGUSER=postgres\nPGSSLMODE=disable\n'
    fi ;;
  logs)
    if have_docker; then docker logs -f "$name"; else tail -f /var/log/postgresql/*.log; fi ;;
  *) echo "usage: $0 up|down|env|logs" >&2; exit 2 ;;
esac
