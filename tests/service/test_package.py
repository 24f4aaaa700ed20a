import tomllib
from pathlib import Path

import task_manager


def test_installed_version_matches_pyproject() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert task_manager.__version__ == pyproject["project"]["version"]
