#!/usr/bin/env bash
# Start the whole Signup Platform in the foreground: servers, databases, topology, then every
# process of deploy/roles.toml under supervisord (deploy/supervisor/supervisord.conf, generated
# from that table; why supervisord: deploy/roles.py).
#
#   make run                          one process per program
#   CONSUMER_PROCESSES=2 make run     two competing processes per consuming role
#   INSTANCES=2 make run              two processes per web and relay role
# Instance i of a role listens on its port (deploy/roles.toml) + 100 * i.
#
# A crashed process is restarted with a growing delay and its exit is logged while the others
# keep serving; Ctrl-C or SIGTERM stops everything; if supervisord itself is killed, every
# process gets SIGTERM from the kernel (parent-death signal) and the next `make run` starts
# cleanly. Operators: .venv/bin/supervisorctl -c deploy/supervisor/supervisord.conf status|restart <name>
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
export PATH="$PWD/.venv/bin:$PATH" LOG_FORMAT=${LOG_FORMAT:-console} PYTHONUNBUFFERED=1
CONFIG=deploy/supervisor/supervisord.conf
PIDFILE=var/run/supervisord.pid
# What supervisord expands in $CONFIG (%(ENV_...)s): instances per role, the user it runs as.
export CONSUMER_PROCESSES=${CONSUMER_PROCESSES:-1} INSTANCES=${INSTANCES:-1}
export SUPERVISOR_USER=${SUPERVISOR_USER:-$(id -un)}

# --- preflight: no platform still running, ports free -----------------------------------------
if [[ -s $PIDFILE ]] && pid=$(<"$PIDFILE") && [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] \
   && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q supervisord; then
  echo "The platform is already running (supervisord pid $pid)." >&2
  echo "Stop it first: Ctrl-C in its terminal, or kill $pid" >&2
  exit 1
fi
read -ra ports <<<"$(python deploy/roles.py ports)"
read -ra ready_urls <<<"$(python deploy/roles.py ready-urls)"
busy_ports() {
  busy=()
  for port in "${ports[@]}"; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy+=("$port")
  done
  ((${#busy[@]} == 0))
}
# Processes of a platform whose supervisor was just killed are still stopping: give them time.
for _ in $(seq 40); do busy_ports && break; sleep 0.25; done
if ! busy_ports; then
  echo "Port(s) ${busy[*]} on 127.0.0.1 are already in use: is the platform already running?" >&2
  echo "Stop it first (Ctrl-C in its terminal), or find the process with: ss -ltnp" >&2
  exit 1
fi

# --- setup: servers, then each service's database, migrations and broker topology --------------
bash deploy/ensure-servers.sh
echo "==> credentials: broker users, database roles (least privilege)"; python deploy/credentials/setup.py >/dev/null  # deploy/credentials
mkdir -p var/log var/run
setup_service() {
  local service=$1 output
  echo "==> $service: database, migrations and broker topology"
  if ! output=$("$service" migrate 2>&1 && "$service" topology 2>&1); then
    echo "$output" >&2
    return 1
  fi
}
for service in "${SERVICES[@]}"; do
  setup_service "$service"
done

# --- data keys: each consuming service reads users' keys (scope keys:read) from accounts to open
# the sealed signups of the event history (docs/erasure.md). One key per service in
# var/keys/<service>.key (mode 600); the previous run's key is revoked first, so a client never
# holds more than one valid key.
echo "==> data keys: a keys:read API key per consuming service, users:read for the dlq janitor (var/keys/)"
mkdir -p var/keys && chmod 700 var/keys
accounts_url=http://127.0.0.1:${ACCOUNTS_WEB_PORT:-8000}
new_key() {  # new_key CLIENT SCOPE: var/keys/CLIENT.key, the previous run's key revoked
  local file=var/keys/$1.key
  if [[ -s $file ]]; then
    accounts keys revoke "$(cut -d_ -f3 "$file")" >/dev/null 2>&1 || true
  fi
  (umask 077; accounts keys create --client "$1" --scope "$2" | sed -n 2p >"$file.new")
  grep -q '^sk_' "$file.new" || { echo "could not create the $2 key of $1" >&2; exit 1; }
  mv "$file.new" "$file"
}
for service in notifications provisioning stats audit; do
  file=var/keys/$service.key
  new_key "$service" keys:read
  upper=${service^^}
  export "${upper}_KEYS_URL=$accounts_url"
  export "${upper}_KEYS_API_KEY_FILE=$PWD/$file"
done
# The dlq janitor (drop-erased --all --every): its own broker user (the credentials setup made
# it) and a users:read key. Exported only now: SIGNUP_DLQ_AMQP_URL names the operator above.
new_key signup-dlq-janitor users:read
janitor_url=${SIGNUP_DLQ_JANITOR_AMQP_URL:-amqp://signup-dlq-janitor:local-dev-signup-dlq-janitor@127.0.0.1:5672/%2F}
export SIGNUP_DLQ_AMQP_URL=$janitor_url SIGNUP_DLQ_ACCOUNTS_URL=$accounts_url
export SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE=$PWD/var/keys/signup-dlq-janitor.key
export SIGNUP_DLQ_MANAGEMENT_URL=${SIGNUP_DLQ_JANITOR_MANAGEMENT_URL:-http://signup-dlq-janitor:local-dev-signup-dlq-janitor@127.0.0.1:15672}

# --- supervision ------------------------------------------------------------------------------
# Prints one line once every process answers /readyz. It watches this shell's pid, which
# becomes supervisord's below (exec keeps the pid), and gives up as soon as that is gone.
announce_when_ready() {
  local supervisor=$$ urls=("${ready_urls[@]}")
  for _ in $(seq 240); do
    sleep 0.5
    kill -0 "$supervisor" 2>/dev/null || return 0
    local ready=1
    for url in "${urls[@]}"; do curl -fs -m 1 -o /dev/null "$url" || { ready=0; break; }; done
    if ((ready)); then
      printf '\n\033[1m==> Signup Platform is ready: http://127.0.0.1:8000/docs\033[0m\n\n'
      return 0
    fi
  done
}
announce_when_ready &

cat <<'BANNER'

  Signup Platform is starting (Ctrl-C stops everything); a line says when it is ready.

  Accounts API        http://127.0.0.1:8000        docs: http://127.0.0.1:8000/docs
  Stats API           http://127.0.0.1:8003/stats  docs: http://127.0.0.1:8003/docs
  Health, metrics     /healthz, /readyz and /metrics (Prometheus text) on each process's port:
  RabbitMQ dashboard  http://127.0.0.1:15672  (guest/guest): Queues tab for queues, rates and *.dlq
  Processes           .venv/bin/supervisorctl -c deploy/supervisor/supervisord.conf status

  Try it:
    curl -i -X POST http://127.0.0.1:8000/signups -H 'Content-Type: application/json' \
         -d '{"email": "ada@example.com", "full_name": "Ada Lovelace", "plan": "pro", "phone": "+14155550123"}'
    curl http://127.0.0.1:8000/users/<user_id>       # status turns "active" once the space exists
    curl http://127.0.0.1:8003/stats

  Then look at:  var/mail (welcome emails, Maildir)   var/sms/messages.jsonl (SMS)
                 var/spaces/<user_id>/ (the space)    signup-dlq list (dead letters)

BANNER
python deploy/roles.py listing
echo
# Every program checks that its parent is still this pid (the parent-death signal's race).
export SIGNUP_PARENT_PID=$$
exec supervisord -c "$CONFIG"
