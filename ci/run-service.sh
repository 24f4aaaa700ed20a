#!/usr/bin/env bash
# Runs the API locally on http://127.0.0.1:8080 with SQLite under ./var and a dev token; Ctrl-C stops it.
source "$(dirname "$0")/lib.sh"

run_dir=${RUN_DIR:-$REPO_ROOT/var}
mkdir -p "$run_dir"
tokens="$run_dir/dev-tokens"
if [[ ! -s "$tokens" ]]; then
  (umask 077 && printf 'dev:%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" >"$tokens")
fi
token=$(cut -d: -f2- "$tokens" | head -n1)

export TASK_MANAGER_HOST=${TASK_MANAGER_HOST:-127.0.0.1}
export TASK_MANAGER_PORT=${TASK_MANAGER_PORT:-8080}
export TASK_MANAGER_METRICS_PORT=${TASK_MANAGER_METRICS_PORT:-9464}
export TASK_MANAGER_DATABASE_URL=${TASK_MANAGER_DATABASE_URL:-sqlite:///$run_dir/task-manager.db}
export TASK_MANAGER_AUTH_TOKENS_FILE=$tokens
export TASK_MANAGER_DRAIN_SECONDS=${TASK_MANAGER_DRAIN_SECONDS:-2}
unset TASK_MANAGER_AUTH_TOKENS

base="http://$TASK_MANAGER_HOST:$TASK_MANAGER_PORT"
cat <<MSG
Task manager API on $base (metrics on http://$TASK_MANAGER_HOST:$TASK_MANAGER_METRICS_PORT/metrics)
Data: ${TASK_MANAGER_DATABASE_URL#sqlite:///}   Dev token (principal "dev"): $token

  export TOKEN=$token
  curl -s -X POST $base/api/v1/tasks -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"title": "Try the API", "labels": ["demo"]}'
  curl -s "$base/api/v1/tasks?limit=10" -H "Authorization: Bearer \$TOKEN"
  curl -s $base/openapi.json

Press Ctrl-C to stop (in-flight requests finish first).
MSG
exec "$REPO_ROOT/.venv/bin/task-manager" serve
