"""The README's API examples run, as written, against a real service and do what they say."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import requests
from test_readme import section, shell_blocks

ROOT = Path(__file__).resolve().parents[2]
README_BASE = "http://127.0.0.1:8080"


def api_examples() -> list[str]:
    """The curl commands of the README's API section, continuation lines joined, as typed."""
    text = section((ROOT / "README.md").read_text(), "API")
    assert text, "README has no '## API' section"
    joined = [re.sub(r"\\\n\s*", " ", block) for block in shell_blocks(text)]
    return [line.strip() for block in joined for line in block.splitlines() if line.strip()]


def test_readme_api_examples_are_curl_calls_that_fail_on_http_errors() -> None:
    examples = api_examples()
    assert len(examples) >= 5
    for command in examples:
        assert command.startswith("curl "), command
        assert "--fail-with-body" in command, command
        assert README_BASE in command, command


def test_readme_api_walkthrough_creates_lists_reads_updates_and_deletes(
    readme_service: Any,
) -> None:
    auth = {"Authorization": f"Bearer {readme_service.token}"}
    env = {"PATH": os.environ.get("PATH", ""), "TOKEN": readme_service.token, "ID": "", "ETAG": ""}
    outputs = []
    for command in api_examples():
        if "$ETAG" in command:  # the reader copies the ETag of the task as it is now
            current = requests.get(f"{readme_service.url}/api/v1/tasks/{env['ID']}", headers=auth)
            env["ETAG"] = current.headers["ETag"]
        run = subprocess.run(
            ["bash", "-c", command.replace(README_BASE, readme_service.url)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, f"{command}\n{run.stdout}\n{run.stderr}"
        outputs.append(run.stdout)
        if not env["ID"] and " -X POST " in command:
            env["ID"] = json.loads(run.stdout)["id"]

    created = json.loads(outputs[0])
    assert created["title"] == "Write the runbook"
    assert created["status"] == "todo"
    listed = json.loads(outputs[1])
    assert [task["id"] for task in listed["items"]] == [created["id"]]
    assert outputs[2].startswith("HTTP/1.1 200")
    assert "etag:" in outputs[2].lower()
    assert json.loads(outputs[3])["status"] == "done"
    gone = requests.get(f"{readme_service.url}/api/v1/tasks/{created['id']}", headers=auth)
    assert gone.status_code == 404
