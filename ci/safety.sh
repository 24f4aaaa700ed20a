#!/usr/bin/env bash
# Second dependency scan with Safety CLI over the locked requirements, when SAFETY_API_KEY is set.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
if [[ -z "${SAFETY_API_KEY:-}" ]]; then
  log "SAFETY_API_KEY is not set: skipping the Safety scan (pip-audit in ci/audit.sh still gates)"
  exit 0
fi
out="$REPO_ROOT/build/safety"
mkdir -p "$out"
uv export --frozen --format requirements-txt --all-groups --no-emit-project --quiet \
  --output-file "$out/requirements.txt"
uv tool run --from "safety==$SAFETY_VERSION" safety --key "$SAFETY_API_KEY" --stage cicd \
  scan --target "$out" "$@"
