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
# Bytecode compiled now, as the image does: these machines set PYTHONDONTWRITEBYTECODE, so nothing
# would ever be cached and every start would compile every module (cold start, bench/results.md).
uv sync --locked --quiet --compile-bytecode --python "python$PYTHON_MINOR"
# The project itself is installed editable, so uv leaves its modules alone: compile them too.
.venv/bin/python -m compileall -q service/task_manager
