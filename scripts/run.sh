#!/usr/bin/env bash
# `make run`: the product on the embedded default (SQLite + filesystem broker under var/) unless
# DATABASE_URL / REDIS_URL are set. Web in the foreground; worker with embedded beat in the background.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-dunning_project.settings.local}"
mkdir -p var/log

$PY manage.py migrate --noinput
$PY manage.py setup_periodic_tasks
$PY manage.py seed_demo

.venv/bin/celery -A dunning_project worker --beat --scheduler django --pool solo --loglevel INFO \
  >var/log/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true' EXIT INT TERM

echo
echo "Web:    http://127.0.0.1:8000/admin/   (logins above)"
echo "Worker: Celery worker + beat, log in var/log/worker.log"
echo
$PY manage.py runserver 127.0.0.1:8000
