#!/usr/bin/env bash
# The show on a real 3-node RabbitMQ cluster (crates/consumer/benches/cluster.rs):
# starts nodes dyn1..dyn3@localhost on AMQP ports 5701-5703 beside the
# machine's RabbitMQ (never touched), kills the request queue's leader twice
# with SIGKILL mid-show, and prints what was lost, charged and how late alerts
# came. Needs PostgreSQL and RabbitMQ as for the tests (the fakes and moto run
# in-process), and rabbitmq-server under /usr/lib/rabbitmq/bin.
# CLUSTER_REQUESTS sizes it (default 300). About two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# Without CLUSTER_SHOW=1 it is the small run (30 requests, one leader kill).
export CLUSTER_SHOW=1
exec cargo test -p dynamo-consumer --bench cluster -- --nocapture "$@"
