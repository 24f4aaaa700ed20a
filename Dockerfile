# The task-manager service image: what the Helm chart at the repository root runs.
#
# Both stages start from BASE_IMAGE. The default is the official slim Python image pinned by digest;
# ci/base-image.sh builds a stand-in from Debian's own packages (same Debian release, same Python
# minor) for machines that cannot pull it, and ci/build-image.sh passes it here. Nothing below
# names a Python path: the official image has /usr/local/bin/python3.11, Debian's /usr/bin/python3.11,
# and `python3.11` on PATH finds either.
#
# Only the classic Dockerfile syntax is used (no RUN --mount, no heredocs), so the legacy builder of
# Debian's docker.io builds it as well as BuildKit does.

# python:3.11.16-slim-bookworm, multi-arch index digest as published in docker-library/repo-info.
ARG BASE_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

FROM ${BASE_IMAGE} AS build

ENV UV_PYTHON=python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/opt/task-manager/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Extra CA certificates (PEM) for the build's downloads only, e.g. a proxy's; the runtime stage
# starts again from the base and never has them. Both bases keep their bundle at this path.
ARG EXTRA_CA_CERTS=""
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt \
      && update-ca-certificates >/dev/null; \
    fi

# uv (UV_VERSION of ci/versions.env, hash-pinned) lives in its own venv in the build stage only;
# it never reaches the runtime stage.
COPY ci/image/uv-requirements.txt /tmp/uv-requirements.txt
RUN python3.11 -m venv /opt/uv \
 && /opt/uv/bin/pip install --quiet --require-hashes --only-binary :all: -r /tmp/uv-requirements.txt

WORKDIR /src
# Dependencies first, from the lock alone, so editing the service or README reuses this layer.
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --locked --no-dev --no-install-project
# Then the project itself: a wheel built by the hash-pinned backend in
# ci/image/build-constraints.txt (build-system.requires is not in uv.lock), installed without
# dependencies since the lock's are all in place. Not editable: the runtime stage has no /src.
COPY ci/image/build-constraints.txt /tmp/build-constraints.txt
COPY README.md ./
COPY service ./service
RUN /opt/uv/bin/uv build --wheel --out-dir /tmp/dist \
      --build-constraints /tmp/build-constraints.txt --require-hashes \
 && /opt/uv/bin/uv pip install --python /opt/task-manager/venv/bin/python --no-deps /tmp/dist/*.whl \
 && test -x /opt/task-manager/venv/bin/task-manager \
 && /opt/task-manager/venv/bin/python -c "import task_manager"

FROM ${BASE_IMAGE} AS runtime

# A fixed numeric user (the chart's runAsUser/runAsGroup/fsGroup) that owns only the data dir.
RUN groupadd --system --gid 10001 task-manager \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/task-manager --shell /usr/sbin/nologin task-manager \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/task-manager

COPY --from=build /opt/task-manager/venv /opt/task-manager/venv

# The root filesystem may be read-only: bytecode is compiled at build time, nothing writes .pyc,
# the database and anything else the service writes go to /var/lib/task-manager and temporary
# files to /tmp; mount both (the chart: a data volume and an emptyDir). No VOLUME instruction, so
# `docker run` leaves no anonymous volumes behind.
ENV PATH=/opt/task-manager/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/task-manager \
    TMPDIR=/tmp \
    TASK_MANAGER_DATABASE_URL=sqlite:////var/lib/task-manager/tasks.db

# Last, so a new revision rebuilds only this small layer and the metadata: the source revision
# goes into the package (task_manager/REVISION, read for task_manager_build_info{revision}) and
# into the OCI label, from the same build argument.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/task-manager/task-manager
RUN python3 -c "import pathlib, sys, task_manager; pathlib.Path(task_manager.__file__).with_name('REVISION').write_text(sys.argv[1] + chr(10))" "${REVISION}"
LABEL org.opencontainers.image.title="task-manager" \
      org.opencontainers.image.description="Task manager REST API with Prometheus metrics and OpenTelemetry traces" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

USER 10001:10001
WORKDIR /var/lib/task-manager
EXPOSE 8080 9464

# For plain `docker run`; Kubernetes ignores HEALTHCHECK and the chart uses /livez and /readyz probes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('TASK_MANAGER_PORT', '8080'), timeout=2)"]

ENTRYPOINT ["task-manager"]
CMD ["serve"]
