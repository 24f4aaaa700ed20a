"""The committed benchmark picture is the one bench/plot.py draws from the committed data.

`make bench` writes bench/results.json and draws docs/bench-results.png from it; re-drawing the
committed data must give the committed picture byte for byte, so the picture cannot have been
edited by hand or left behind by an older run. The README and bench/README.md show it, and every
image link in them resolves.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PICTURE = ROOT / "docs" / "bench-results.png"


def test_the_committed_picture_is_drawn_from_the_committed_data(tmp_path: Path) -> None:
    redrawn = tmp_path / "bench-results.png"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plot.py"), str(ROOT / "bench" / "results.json"),
         str(redrawn)],
        check=True, timeout=120,
    )  # fmt: skip
    assert redrawn.read_bytes() == PICTURE.read_bytes(), "run make bench (or bench/plot.py)"


@pytest.mark.parametrize("doc", ["README.md", "bench/README.md", "bench/results.md"])
def test_the_docs_show_the_picture_and_their_image_links_resolve(doc: str) -> None:
    path = ROOT / doc
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", path.read_text())
    assert any((path.parent / link).resolve() == PICTURE for link in links), links
    for link in links:
        assert (path.parent / link).resolve().is_file(), f"{doc}: {link}"
