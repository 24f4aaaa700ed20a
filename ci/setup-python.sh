#!/usr/bin/env bash
# Installs the pinned uv and syncs .venv exactly from uv.lock (runtime + dev groups).
source "$(dirname "$0")/lib.sh"

uv_dir=$(cached_tool uv "$UV_VERSION")
if [[ ! -x "$uv_dir/venv/bin/uv" ]]; then
  log "installing uv $UV_VERSION"
  python3 -m venv "$uv_dir/venv"
  "$uv_dir/venv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
link_tool uv "$uv_dir/venv/bin/uv"

export UV_PYTHON_DOWNLOADS=never
cd "$REPO_ROOT"
uv sync --locked --quiet --python "python$PYTHON_MINOR"
