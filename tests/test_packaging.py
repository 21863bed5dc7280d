"""Packaging: license, single-sourced version, extras that match who needs them, changelog."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import metadata, version
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    build = PYPROJECT["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77 for r in build)
    assert metadata("kiwoom-order-engine")["License-Expression"] == "MIT"


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "engine.__version__"}
    assert version("kiwoom-order-engine") == engine.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", engine.__version__)


def test_classifiers_and_urls() -> None:
    classifiers = PROJECT["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX field says it
    assert PROJECT["urls"]


def test_extras_match_who_needs_them() -> None:
    assert names(EXTRAS["testing"]) == {"hypothesis"}  # engine.testing needs nothing else
    assert {"ruff", "mypy", "types-requests", "pytest-xdist"} <= names(EXTRAS["dev"])
    assert names(EXTRAS["holidays"]) == {"holidays"}
    assert {"mkdocs", "mkdocstrings"} <= names(EXTRAS["docs"])
    # [test] installs all the suite needs: every other extra's packages but dev's own
    needed = set().union(*(names(EXTRAS[k]) for k in ("testing", "holidays", "backtrader", "docs")))
    assert needed | {"pytest", "pytest-xdist", "ruff", "mypy"} <= names(EXTRAS["test"])


def test_the_changelog_has_an_unreleased_section_and_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert engine.__version__ in headings


def test_the_test_kit_names_its_extra_when_hypothesis_is_missing() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import engine\n"
        "try:\n    from engine.testing import strategies\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'kiwoom-order-engine[testing]'" in done.stdout, done.stdout + done.stderr
