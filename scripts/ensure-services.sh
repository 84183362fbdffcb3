#!/usr/bin/env bash
# Makes sure what the tests need is installed and running on this machine:
# PostgreSQL, RabbitMQ (both from Debian's packages), moto's S3 server (PyPI)
# and headless Chromium with chromedriver for the page tests (Debian's packages).
# Idempotent; used by .ci/run and handy before `cargo test --workspace`.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  for _ in $(seq "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "$1 did not come up on port $2" >&2; return 1
}

apt_ready=""
apt_install() {
  [ -n "$apt_ready" ] || { apt-get update -qq; apt_ready=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432 60
fi
echo "PostgreSQL: up"

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ 5672 120
fi
# The port opens before the broker accepts logins; wait for it to be ready.
rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
echo "RabbitMQ: up"

if ! command -v moto_server >/dev/null; then
  echo "installing moto (S3-protocol server for the tests)"
  python3 -m pip install --quiet 'moto[server]'
fi
echo "moto_server: $(command -v moto_server)"

# Pillow and numpy: the reference the image-step benchmark compares against
# (its smoke run is part of cargo test).
if ! python3 -c 'import PIL, numpy' 2>/dev/null; then
  echo "installing Pillow and numpy (image-step benchmark reference)"
  python3 -m pip install --quiet -r "$(dirname "$0")/../bench/requirements.txt"
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing chromium and chromium-driver (browser tests of the live page)"
  apt_install chromium chromium-driver
fi
echo "chromium: $(chromium --version 2>/dev/null || echo '?'), $(chromedriver --version | cut -d' ' -f1-2)"

# axe-core (npm) checks the page's accessibility inside the browser tests.
axe_dir="$HOME/.cache/dynamo-node"
if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null || apt_install npm
  echo "installing axe-core (accessibility checks of the live page)"
  mkdir -p "$axe_dir"
  npm install --silent --no-audit --no-fund --prefix "$axe_dir" axe-core@4 >/dev/null
fi
echo "axe-core: $axe_dir/node_modules/axe-core"

# wrk drives the status-API benchmark (bench/status_api.sh).
command -v wrk >/dev/null || { echo "installing wrk"; apt_install wrk; }
