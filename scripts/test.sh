#!/usr/bin/env bash
# The one command to test dynamo: sets up what the tests need on this machine,
# says so before changing anything, then runs `cargo test --workspace`.
#
#   scripts/test.sh                              # everything, as CI does
#   DYNAMO_SKIP_RESTART_TESTS=1 scripts/test.sh  # not the two tests that restart
#                                                # this machine's PostgreSQL and RabbitMQ
#
# (One test file while you work: cargo test -p dynamo-server --test page.)
#
# What the tests need: PostgreSQL and RabbitMQ running (Debian's packages,
# started here if they are not), moto's S3 server (PyPI), Pillow and numpy
# (PyPI; the image benchmark's smoke run compares against them), Debian's
# chromium and chromium-driver and npm's axe-core (the live page's browser
# tests), Debian's prometheus for promtool (checks deploy/prometheus/alerts.yml;
# the package brings a Prometheus server too, which no test uses), and PyPI's
# kubernetes-validate and check-jsonschema (validate the Kubernetes manifests,
# KEDA's objects and the compose file offline, against the schemas they ship
# or deploy/schemas/). Each is installed only when missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests that restart the machine's services, by their exact names: each
# lives alone in its test binary (crates/consumer/tests/*_restart.rs).
RESTART_TESTS=(
  processing_resumes_by_itself_after_rabbitmq_restarts   # broker_restart.rs
  processing_resumes_by_itself_after_postgresql_restarts # database_restart.rs
)
AXE_DIR="$HOME/.cache/dynamo-node"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
have() { command -v "$1" >/dev/null; }

# --- what is missing, found before anything is changed ---
apt_packages=() pip_packages=() npm_packages=() starts=()
if ! port_open 5432; then
  have pg_ctlcluster || apt_packages+=(postgresql)
  starts+=("PostgreSQL (pg_ctlcluster ... main start)")
fi
if ! port_open 5672; then
  have rabbitmq-server || apt_packages+=(rabbitmq-server)
  starts+=("RabbitMQ (rabbitmq-server -detached)")
fi
have moto_server || pip_packages+=("moto[server]")
python3 -c 'import PIL, numpy' 2>/dev/null || pip_packages+=(-r bench/requirements.txt)
{ have chromium && have chromedriver; } || apt_packages+=(chromium chromium-driver)
have promtool || apt_packages+=(prometheus)
have kubernetes-validate || pip_packages+=("kubernetes-validate>=1.37")
have check-jsonschema || pip_packages+=("check-jsonschema>=0.39")
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  have npm || apt_packages+=(npm)
  npm_packages+=(axe-core@4)
fi

echo "== scripts/test.sh: what this does to this machine"
if [ ${#apt_packages[@]} -gt 0 ]; then echo "  install with apt-get: ${apt_packages[*]}"; fi
if [ ${#pip_packages[@]} -gt 0 ]; then echo "  install with pip: ${pip_packages[*]}"; fi
if [ ${#npm_packages[@]} -gt 0 ]; then echo "  install with npm into $AXE_DIR: ${npm_packages[*]}"; fi
if [ ${#starts[@]} -gt 0 ]; then printf '  start: %s\n' "${starts[@]}"; fi
echo "  tests create (and drop) databases dynamo_test_* in PostgreSQL on 127.0.0.1:5432,"
echo "  queues and exchanges test-<uuid>.* in RabbitMQ on 127.0.0.1:5672 (deleted after each test),"
echo "  and start moto_server, chromedriver and headless chromium on free ports (stopped after)"
if [ -n "${DYNAMO_SKIP_RESTART_TESTS:-}" ]; then
  echo "  skipped (DYNAMO_SKIP_RESTART_TESTS): the two tests that restart PostgreSQL and RabbitMQ"
else
  echo "  RESTARTS this machine's RabbitMQ and PostgreSQL once each (two tests; anything else"
  echo "  using them sees its connections drop). DYNAMO_SKIP_RESTART_TESTS=1 skips them."
fi
if [ $((${#apt_packages[@]} + ${#pip_packages[@]} + ${#npm_packages[@]} + ${#starts[@]})) -gt 0 ] && [ -t 0 ]; then
  read -r -p "Go on? [Enter: yes, Ctrl-C: stop] " _
fi

# --- set up ---
if [ ${#apt_packages[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
if [ ${#pip_packages[@]} -gt 0 ]; then python3 -m pip install --quiet "${pip_packages[@]}"; fi
if [ ${#npm_packages[@]} -gt 0 ]; then
  mkdir -p "$AXE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AXE_DIR" "${npm_packages[@]}" >/dev/null
fi

wait_for() { # name port seconds
  for _ in $(seq "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "$1 did not come up on port $2" >&2; return 1
}
if ! port_open 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432 60
fi
if ! port_open 5672; then
  rabbitmq-server -detached
  wait_for RabbitMQ 5672 120
fi
# The port opens before the broker accepts logins; wait for it to be ready.
rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
echo "  ready: PostgreSQL, RabbitMQ, $(command -v moto_server), $(chromium --version 2>/dev/null || echo chromium),"
echo "         $(chromedriver --version | cut -d' ' -f1-2), axe-core in $AXE_DIR"

# --- run ---
skip=()
if [ -n "${DYNAMO_SKIP_RESTART_TESTS:-}" ]; then
  for name in "${RESTART_TESTS[@]}"; do
    # A renamed test must not quietly stop being skipped.
    grep -q "fn $name(" crates/consumer/tests/*_restart.rs \
      || { echo "scripts/test.sh: no test named $name any more; update RESTART_TESTS" >&2; exit 1; }
    skip+=(--skip "$name")
  done
  skip=(-- --exact "${skip[@]}")
fi
echo "== cargo test --workspace --locked --no-fail-fast ${skip[*]}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
# --no-fail-fast: one run shows every failing test binary, not just the first.
cargo test --workspace --locked --no-fail-fast "${skip[@]}"
