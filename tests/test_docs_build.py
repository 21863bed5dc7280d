"""The documentation site builds with ``mkdocs build --strict`` and no warning.

The build renders docs/*.md and the API reference generated from the docstrings
(mkdocstrings), so a broken link or anchor, a page left out of the navigation, or a docstring
the reference cannot render fails here. It takes a few seconds of CPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocstrings", reason="the [docs] extra (part of [test]) is not installed")


def test_the_site_builds_strictly_without_warnings(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    api = (site / "api.html").read_text(encoding="utf-8")
    # the reference really holds the docstrings, not just headings
    assert "OrderBook" in api and "Return the events the book took" in api
    assert "korea_sessions" in api
    for page in ("index", "engine", "policies", "cli", "kiwoom", "simulation", "testing"):
        assert (site / f"{page}.html").exists(), page
