#!/usr/bin/env bash
# DAST: runs the built image as the chart does, then schemathesis and the OWASP ZAP API scan against /openapi.json.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
[[ -s build/image.ref ]] || die "build/image.ref is missing: run ci/build-image.sh first"
image=$(<build/image.ref)
port="${DAST_PORT:-8080}"
base="http://127.0.0.1:$port"
out="$REPO_ROOT/build/dast"
mkdir -p "$out"
token=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')

# The chart's securityContext, as docker flags: read-only root, non-root UID, no capabilities.
name="task-manager-dast-$$"
docker run --detach --name "$name" --network host \
  --read-only --tmpfs /tmp --tmpfs /var/lib/task-manager:uid=10001,gid=10001 \
  --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
  --env "TASK_MANAGER_PORT=$port" --env "TASK_MANAGER_AUTH_TOKENS=dast:$token" \
  "$image" >/dev/null
trap 'docker logs "$name" >"$out/service.log" 2>&1 || true; docker rm --force "$name" >/dev/null 2>&1 || true' EXIT

for _ in $(seq 60); do
  curl --silent --fail --output /dev/null "$base/readyz" && break
  sleep 1
done
curl --silent --fail --output /dev/null "$base/readyz" || die "the service did not become ready on $base"

log "schemathesis against $base/openapi.json"
# Every check but positive_data_acceptance: a schema-valid request is rightly refused with 412 (stale
# If-Match), 422 (Idempotency-Key reused with another body) or 422 (a cursor from another query).
schemathesis run "$base/openapi.json" --checks all --exclude-checks positive_data_acceptance \
  --max-examples 50 \
  --header "Authorization: Bearer $token" \
  --report junit --report-junit-path "$out/schemathesis.xml"

log "OWASP ZAP API scan ($ZAP_IMAGE) against $base/openapi.json"
chmod a+rwx "$out"
docker run --rm --network host --volume "$out:/zap/wrk:rw" \
  --env ZAP_AUTH_HEADER=Authorization --env "ZAP_AUTH_HEADER_VALUE=Bearer $token" \
  "$ZAP_IMAGE" zap-api-scan.py -t "$base/openapi.json" -f openapi \
  -r zap-report.html -J zap-report.json -I
