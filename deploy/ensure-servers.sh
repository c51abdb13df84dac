#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ (with its management plugin) answer on this machine.
# Installed but stopped: start them. Absent: say how to run them with deploy/compose/compose.yaml.
set -euo pipefail

PG_HOST=${PGHOST:-127.0.0.1}
PG_PORT=${PGPORT:-5432}
AMQP_PORT=${AMQP_PORT:-5672}
MANAGEMENT_PORT=${MANAGEMENT_PORT:-15672}

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {
  local host=$1 port=$2 name=$3 seconds=${4:-60}
  for _ in $(seq "$((seconds * 4))"); do port_open "$host" "$port" && return 0; sleep 0.25; done
  echo "$name did not answer on $host:$port within ${seconds}s" >&2
  return 1
}
absent() {
  cat >&2 <<MSG
$1 is not installed on this machine and nothing answers on $2.
Start the servers in containers (the header of deploy/compose/compose.yaml says which
variables to export then):
  docker compose -f deploy/compose/compose.yaml up -d postgres rabbitmq-1 rabbitmq-admin
or point the services at other servers (see README: Configuration).
MSG
  exit 1
}

if ! port_open "$PG_HOST" "$PG_PORT"; then
  if command -v pg_ctlcluster >/dev/null; then
    say "starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    absent PostgreSQL "$PG_HOST:$PG_PORT"
  fi
fi
wait_port "$PG_HOST" "$PG_PORT" PostgreSQL 60
say "PostgreSQL answers on $PG_HOST:$PG_PORT"

if ! port_open 127.0.0.1 "$AMQP_PORT"; then
  if command -v rabbitmq-server >/dev/null; then
    say "starting RabbitMQ"
    rabbitmq-server -detached || true
    rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || true
  else
    absent RabbitMQ "127.0.0.1:$AMQP_PORT"
  fi
fi
wait_port 127.0.0.1 "$AMQP_PORT" RabbitMQ 120
say "RabbitMQ answers on 127.0.0.1:$AMQP_PORT"

if ! port_open 127.0.0.1 "$MANAGEMENT_PORT" && command -v rabbitmq-plugins >/dev/null; then
  say "enabling the RabbitMQ management plugin (dashboard)"
  rabbitmq-plugins -q enable rabbitmq_management rabbitmq_prometheus >/dev/null
fi
wait_port 127.0.0.1 "$MANAGEMENT_PORT" "RabbitMQ management" 60
say "RabbitMQ dashboard on http://127.0.0.1:$MANAGEMENT_PORT (guest/guest: the loopback-only administrator; no service uses it)"
