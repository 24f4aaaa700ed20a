"""docs/service.md's "Adding a field", followed on a copy of the package: its code and commands as
written, then the new field checked through the migrated schema and the API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from support.paths import REPO_ROOT
from support.postgres import Postgres

DOC = REPO_ROOT / "docs" / "service.md"
VENV_BIN = Path(sys.executable).parent
NEW_MIGRATION = "service/task_manager/migrations/versions/0002_task_estimate.py"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[
        text.index("## Adding a field") : text.index("\n## ", text.index("## Adding a field"))
    ]


def blocks(language: str) -> list[list[str]]:
    """The fenced blocks of one language in the section, as lists of lines (comments dropped)."""
    found = re.findall(rf"```{language}\n(.*?)```", section(), re.DOTALL)
    return [
        [line for line in textwrap.dedent(block).splitlines() if not line.startswith("#")]
        for block in found
    ]


def run(command: str, cwd: Path) -> None:
    """A documented command, with the checkout's .venv standing for this interpreter's and the copy
    of the package first on the import path."""
    command = command.replace(".venv/bin/", f"{VENV_BIN}/")
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "PYTHONPATH": str(cwd / "service")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


def insert_after(path: Path, anchor: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(anchor) == count, f"{path}: {anchor!r} found {text.count(anchor)} times"
    path.write_text(text.replace(anchor, anchor + new))


CHECK = """
import sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from task_manager.app import create_app
from task_manager.settings import Settings
from task_manager.storage import build_engine
from task_manager.storage.migrate import current_revision, upgrade
from task_manager.storage.schema import metadata

for url in sys.argv[1:]:
    engine = build_engine(url, pool_size=1)
    assert upgrade(engine) == "0002"
    assert current_revision(engine) == "0002"
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()
    app = create_app(Settings.from_env({
        "TASK_MANAGER_DATABASE_URL": url, "TASK_MANAGER_AUTH_TOKENS": "a:token-of-a",
        "TASK_MANAGER_MIGRATE_ON_START": "false",
    }))
    client = app.test_client()
    auth = {"Authorization": "Bearer token-of-a"}
    body = {"title": "t", "estimate_minutes": 30}
    created = client.post("/api/v1/tasks", json=body, headers=auth)
    assert created.status_code == 201, created.json
    assert created.json["estimate_minutes"] == 30
    path = created.headers["Location"]
    assert client.get(path, headers=auth).json["estimate_minutes"] == 30
    cleared = client.patch(path, json={"estimate_minutes": None}, headers=auth)
    assert cleared.status_code == 200, cleared.json
    assert cleared.json["estimate_minutes"] is None
    assert client.get(path, headers=auth).json["estimate_minutes"] is None
    bad = client.post("/api/v1/tasks", json={"title": "t", "estimate_minutes": -1}, headers=auth)
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json["errors"]] == ["/estimate_minutes"]
    assert client.get("/readyz").status_code == 200
print("ok")
"""


def test_the_documented_steps_add_a_field_end_to_end(tmp_path: Path, postgres: Postgres) -> None:
    shutil.copytree(
        REPO_ROOT / "service" / "task_manager",
        tmp_path / "service" / "task_manager",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "docs").mkdir()
    package = tmp_path / "service" / "task_manager"
    (column,), models, *_ = blocks("python")
    migration, openapi = blocks("sh")

    # 1. The table.
    schema = package / "storage" / "schema.py"
    insert_after(
        schema, 'Column("due_at", DateTime(timezone=True), nullable=True),\n', f"    {column},\n"
    )
    # 2. The models: the type before the first model, then the field in each of the four.
    alias, *fields = models
    assert len(fields) == 4
    models_py = package / "models.py"
    text = models_py.read_text()
    text = text.replace("\n\nclass TaskCreate(", f"\n\n{alias}\n\n\nclass TaskCreate(", 1)
    for name, field in zip(("TaskCreate", "TaskFields", "TaskPatch", "Task"), fields, strict=True):
        start = text.index(f"\nclass {name}(")
        due = text.index("    due_at: ", start)
        end = text.index("\n", due) + 1
        text = text[:end] + f"    {field}\n" + text[end:]
    models_py.write_text(text)
    # 3. The migration, with the documented commands; then the head.
    for command in migration:
        run(command, tmp_path)
    written = (tmp_path / NEW_MIGRATION).read_text()
    assert 'add_column(sa.Column("estimate_minutes", sa.Integer(), nullable=True))' in written
    assert not (tmp_path / "var" / "revision.db").exists()
    schema.write_text(schema.read_text().replace('SCHEMA_HEAD = "0001"', 'SCHEMA_HEAD = "0002"'))
    # 4. OpenAPI.
    for command in openapi:
        run(command, tmp_path)
    document = json.loads((tmp_path / "docs" / "openapi.json").read_text())
    for model in ("Task", "TaskCreate", "TaskPatch"):
        assert "estimate_minutes" in document["components"]["schemas"][model]["properties"]

    # The field works on both databases, from a fresh migration to the API.
    (tmp_path / "check.py").write_text(CHECK)
    run(
        f"python check.py sqlite:///{tmp_path}/fresh.db {postgres.create_database()}",
        tmp_path,
    )


def test_every_file_the_service_doc_names_exists() -> None:
    """Paths as the doc writes them: from the checkout, the package (or its api/), tests/service or
    docs/; URL paths such as /openapi.json are not files."""
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/])[\w.-][\w./-]*\.(?:py|toml|md|json)\b", text))
    named.discard(NEW_MIGRATION)
    package = REPO_ROOT / "service" / "task_manager"
    places = (REPO_ROOT, package, package / "api", REPO_ROOT / "tests" / "service", DOC.parent)
    missing = {name for name in named if not any((place / name).exists() for place in places)}
    assert missing == set()
