#!/usr/bin/env bash
# Start the whole Signup Platform in the foreground: servers, databases, topology, every process.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
export PATH="$PWD/.venv/bin:$PATH" LOG_FORMAT=${LOG_FORMAT:-console} PYTHONUNBUFFERED=1

bash deploy/ensure-servers.sh
mkdir -p var/mail var/sms var/spaces var/log
for service in "${SERVICES[@]}"; do
  echo "==> $service: database and migrations"
  LOG_FORMAT=json "$service" migrate >/dev/null
  echo "==> $service: broker topology"
  LOG_FORMAT=json "$service" topology >/dev/null
done

cat <<'BANNER'

  Signup Platform is starting (Ctrl-C stops everything).

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
