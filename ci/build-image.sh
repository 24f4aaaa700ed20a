#!/usr/bin/env bash
# Builds the image task-manager:<appVersion> (local Debian-built base unless IMAGE_BASE=official), its SBOM, and reports sizes.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

"$REPO_ROOT/ci/docker.sh"
[[ -x .venv/bin/cyclonedx-py && -x .tools/bin/uv ]] || "$REPO_ROOT/ci/setup-python.sh"

# The chart's appVersion names the image it runs; before the chart exists, the package version.
if [[ -f Chart.yaml ]]; then
  version=$(awk '$1 == "appVersion:" { gsub(/["'\'']/, "", $2); print $2; exit }' Chart.yaml)
else
  version=$(awk -F'"' '/^version = / { print $2; exit }' pyproject.toml)
fi
[[ -n $version ]] || die "no appVersion in Chart.yaml nor version in pyproject.toml"
IMAGE="${IMAGE:-task-manager:$version}"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"

grep -q "^uv==$UV_VERSION " ci/image/uv-requirements.txt \
  || die "ci/image/uv-requirements.txt does not pin uv $UV_VERSION (ci/versions.env); regenerate it"

# IMAGE_BASE=local (default): the Debian-built base from ci/base-image.sh, for machines that pull
# nothing. IMAGE_BASE=official: the Dockerfile's default, the official image pinned by digest.
mkdir -p build
base_args=()
case "${IMAGE_BASE:-local}" in
  local)
    base=$("$REPO_ROOT/ci/base-image.sh")
    base_args=(--build-arg "BASE_IMAGE=$base")
    ;;
  official) base=$(awk -F= '/^ARG BASE_IMAGE=/ { print $2; exit }' Dockerfile) ;;
  *) die "IMAGE_BASE must be local or official, not '$IMAGE_BASE'" ;;
esac

# CA certificates this machine trusts beyond the base's own bundle (a TLS-inspecting proxy in front
# of PyPI, say). The build stage adds them so pip and uv can download; the runtime stage never
# sees them. Empty where the host trusts nothing more than Debian does.
host_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
extra_ca=""
if [[ ${IMAGE_BASE:-local} == local && -f $host_bundle ]]; then
  extra_ca=$(docker run --rm --network none --entrypoint cat "$base" /etc/ssl/certs/ca-certificates.crt \
    | python3 -c '
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
known = set(pem.findall(sys.stdin.read()))
print("\n".join(c for c in pem.findall(open(sys.argv[1]).read()) if c not in known))
' "$host_bundle")
fi

log "building $IMAGE on $base"
start=$SECONDS
docker build --network host --force-rm \
  "${base_args[@]}" \
  --build-arg "EXTRA_CA_CERTS=$extra_ca" \
  --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" \
  --iidfile build/image.id --tag "$IMAGE" . >build/image-build.log 2>&1 \
  || { tail -n 40 build/image-build.log >&2; die "docker build failed (full log: build/image-build.log)"; }
build_seconds=$((SECONDS - start))
# build/image.ref names the image for the next steps; build/image.id pins exactly this build (the
# tag may be moved by another checkout building on the same daemon).
printf '%s\n' "$IMAGE" >build/image.ref

# SBOM of exactly what the image installs: the lock's runtime dependencies, as requirements.
uv export --locked --no-dev --no-emit-project --format requirements-txt --quiet \
  >build/requirements.lock.txt
# (Requirements carry no dependency graph; cyclonedx-py warns about that, which is expected here.)
PYTHONWARNINGS=ignore::UserWarning cyclonedx-py requirements --pyproject pyproject.toml \
  --output-reproducible --validate -o build/sbom.cdx.json build/requirements.lock.txt
components=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["components"]))' \
  build/sbom.cdx.json)

image_id=$(<build/image.id)
image_bytes=$(docker image inspect --format '{{.Size}}' "$image_id")
base_bytes=$(docker image inspect --format '{{.Size}}' "$base" 2>/dev/null || echo 0)
venv_bytes=$(docker run --rm --network none --entrypoint du "$image_id" -sb /opt/task-manager/venv | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
{
  printf 'image       %s (%s)\n' "$IMAGE" "$image_id"
  printf 'base        %s\n' "$base"
  printf 'image size  %s (%s bytes)\n' "$(mib "$image_bytes")" "$image_bytes"
  printf 'base size   %s (%s bytes)\n' "$(mib "$base_bytes")" "$base_bytes"
  printf 'venv size   %s (%s bytes)\n' "$(mib "$venv_bytes")" "$venv_bytes"
  printf 'build time  %ss\n' "$build_seconds"
  printf 'sbom        build/sbom.cdx.json (%s components)\n' "$components"
} | tee build/image-report.txt
