#!/usr/bin/env bash
# Start the whole Signup Platform in the foreground: servers, databases, topology, every process.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
export PATH="$PWD/.venv/bin:$PATH" LOG_FORMAT=${LOG_FORMAT:-console} PYTHONUNBUFFERED=1

busy=()
for port in 8000 8001 8002 8003 8013 1025 8025; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy+=("$port")
done
if ((${#busy[@]})); then
  echo "Port(s) ${busy[*]} on 127.0.0.1 are already in use: is the platform already running?" >&2
  echo "Stop it first (Ctrl-C in its terminal), or find the process with: ss -ltnp" >&2
  exit 1
fi

bash deploy/ensure-servers.sh
echo "==> credentials: broker users, database roles (least privilege)"; python deploy/credentials/setup.py >/dev/null  # deploy/credentials
mkdir -p var/log
for service in "${SERVICES[@]}"; do
  echo "==> $service: database, migrations and broker topology"
  if ! output=$("$service" migrate 2>&1 && "$service" topology 2>&1); then
    echo "$output" >&2
    exit 1
  fi
done

announce_when_ready() {
  local urls=(http://127.0.0.1:8000/readyz http://127.0.0.1:8001/readyz http://127.0.0.1:8002/readyz
              http://127.0.0.1:8003/readyz http://127.0.0.1:8013/readyz)
  for _ in $(seq 240); do
    sleep 0.5
    local ready=1
    for url in "${urls[@]}"; do curl -fs -o /dev/null "$url" || { ready=0; break; }; done
    if ((ready)); then
      printf '\n\033[1m==> Signup Platform is ready: http://127.0.0.1:8000/docs\033[0m\n\n'
      return
    fi
  done
}
announce_when_ready &

cat <<'BANNER'

  Signup Platform is starting (Ctrl-C stops everything); a line says when it is ready.

  Accounts API        http://127.0.0.1:8000        docs: http://127.0.0.1:8000/docs
  Stats API           http://127.0.0.1:8003/stats  docs: http://127.0.0.1:8003/docs
  Health              :8000 accounts, :8001 notifications, :8002 provisioning, :8003 stats (/healthz, /readyz)
  RabbitMQ dashboard  http://127.0.0.1:15672  (guest/guest): Queues tab for queues, rates and *.dlq

  Try it:
    curl -i -X POST http://127.0.0.1:8000/signups -H 'Content-Type: application/json' \
         -d '{"email": "ada@example.com", "full_name": "Ada Lovelace", "plan": "pro", "phone": "+14155550123"}'
    curl http://127.0.0.1:8000/users/<user_id>       # status turns "active" once the space exists
    curl http://127.0.0.1:8003/stats

  Then look at:  var/mail (welcome emails, Maildir)   var/sms/messages.jsonl (SMS)
                 var/spaces/<user_id>/ (the space)    signup-dlq list (dead letters)

BANNER
exec honcho -f deploy/Procfile -d . start
