#!/usr/bin/env bash
# RabbitMQ for local development: ./local-rmq.sh up|down|env|logs
# Uses Docker when an engine runs; otherwise the locally installed RabbitMQ.
set -euo pipefail
name=dynamo-rabbitmq
have_docker() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

case "${1:-}" in
  up)
    if have_docker; then
      docker start "$name" 2>/dev/null || docker run -d --name "$name" -p 5672:5672 -p 15672:15672 \
        rabbitmq:3-management
    elif command -v rabbitmq-server >/dev/null; then
      port_open || rabbitmq-server -detached
    else
      echo "No Docker engine and no RabbitMQ here. Install one: apt-get install rabbitmq-server" >&2; exit 1
    fi
    for _ in $(seq 120); do port_open && { echo "RabbitMQ is up on 127.0.0.1:5672"; exit 0; }; sleep 1; done
    echo "RabbitMQ did not come up" >&2; exit 1 ;;
  down)
    if have_docker; then docker rm -f "$name"; else rabbitmqctl stop; fi ;;
  env)
    printf 'RMQ_HOST=127.0.0.1\nRMQ_PORT=5672\nRMQ_VHOST=/\nRMQ_USER=guest\nRMQ_PASSWORD=guest\n' ;;
  logs)
    if have_docker; then docker logs -f "$name"; else tail -f /var/log/rabbitmq/*.log; fi ;;
  *) echo "usage: $0 up|down|env|logs" >&2; exit 2 ;;
esac
