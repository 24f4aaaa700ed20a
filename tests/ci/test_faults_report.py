"""`make faults` runs end to end, and the fault pictures in docs/ are the ones it renders.

A short run of ci/faults.sh (two faults, 1 s phases) must write the table and a picture per fault;
every committed picture must come out byte for byte from its committed data file (so none is
hand-edited or stale); every image the runbook, the fault report and the README link must exist.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "bench"))

from fault_plot import render  # noqa: E402

COMMITTED = sorted((DOCS / "faults").glob("*.json"))
ROW = re.compile(
    r"^\| (?P<fault>[^|]+) \| (?P<db>\w+) \| (?P<sent>\d+) \| (?P<failed>\d+) \| (?P<lost>\d+) \| "
    r"\d+ \| [^|]+ \| [\d.]+ \| \d+ -> \d+ \| \d+ -> \d+ \| "
    r"\[png\]\(faults/(?P<slug>[\w-]+)\.png\) \|$",
    re.MULTILINE,
)


def test_a_short_fault_run_reports_each_fault_with_its_picture(tmp_path: Path) -> None:
    output = tmp_path / "faults.md"
    subprocess.run(
        [str(ROOT / "ci" / "faults.sh"), "--phase", "1", "--only", "sigterm-sqlite,tokens-file",
         "--output", str(output)],
        cwd=ROOT, check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    rows = {m["slug"]: m for m in ROW.finditer(output.read_text())}
    assert set(rows) == {"sigterm-sqlite", "tokens-file"}, output.read_text()
    for slug, row in rows.items():
        assert int(row["sent"]) > 0
        assert row["lost"] == "0"
        assert (tmp_path / "faults" / f"{slug}.png").read_bytes().startswith(b"\x89PNG")
    assert rows["tokens-file"]["failed"] == "0"


def test_every_fault_has_committed_data_and_a_row_in_the_report() -> None:
    from faults import FAULTS  # bench/faults.py

    assert {p.stem for p in COMMITTED} == set(FAULTS)
    report = (DOCS / "faults.md").read_text()
    assert {m["slug"] for m in ROW.finditer(report)} == set(FAULTS)


@pytest.mark.parametrize("data", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_each_committed_picture_is_rendered_from_its_data(data: Path, tmp_path: Path) -> None:
    picture = tmp_path / f"{data.stem}.png"
    render(json.loads(data.read_text()), picture)
    committed = data.with_suffix(".png")
    assert committed.read_bytes() == picture.read_bytes(), (
        f"{committed.relative_to(ROOT)} is not what its data renders: run `make faults` "
        "(or `python bench/faults.py --render-only`)"
    )


@pytest.mark.parametrize("doc", ["README.md", "docs/runbook.md", "docs/faults.md"])
def test_image_links_resolve(doc: str) -> None:
    path = ROOT / doc
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", path.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (path.parent / target.split("#")[0]).is_file(), f"{doc}: {target} does not exist"
