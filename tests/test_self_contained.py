"""The repository stands on its own: no file points at documents a user of it does not have.

Specifications and Kiwoom facts live in ``docs/`` (``docs/policies.md``, ``docs/kiwoom.md``);
a reference to notes outside the repository (a ``reference/`` folder, a shared folder, an
unnamed "seed document", "§7") would send a reader to a file they cannot open. Every
"scenario N" must name one of the numbered scenarios of ``docs/policies.md``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()

#: What a pointer outside the repository looks like.
OUTSIDE = re.compile(
    r"reference/[\w-]+\.md"  # reference/order-lifecycle.md, reference/kiwoom-rest.md
    r"|\.\./shared|/work/shared|shared/(?:reference|seed)"
    r"|seed document"
    r"|§\s*\d"
    r"|\bsection \d+\b(?! of docs/)"
    r"|``reference``",
    re.IGNORECASE,
)
SCENARIO = re.compile(r"\bscenarios? (\d+)((?:(?:, | and | or )\d+)*)", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini", ""}


def repository_files() -> list[Path]:
    """Every text file the repository tracks (git's list; a walk when git is unavailable)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", ".ci-venv", "site", "__pycache__", ".pytest_cache"}
        paths = [p for p in ROOT.rglob("*") if not skip.intersection(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES and p.resolve() != THIS]


def numbered_scenarios() -> set[int]:
    """The numbers of the scenarios listed in docs/policies.md."""
    text = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    section = text.split("## The numbered scenarios", 1)[1]
    return {int(m[1]) for m in re.finditer(r"^(\d+)\. ", section, re.MULTILINE)}


def test_the_scenarios_are_all_in_the_repository() -> None:
    assert numbered_scenarios() == set(range(1, 27))


def test_no_file_points_outside_the_repository() -> None:
    files = repository_files()
    assert len(files) > 50  # the walk really saw the repository
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "references to files outside the repository:\n" + "\n".join(found)


def test_every_scenario_number_mentioned_exists() -> None:
    known = numbered_scenarios()
    unknown = []
    for path in repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for match in SCENARIO.finditer(text):
            numbers = [int(match[1]), *map(int, re.findall(r"\d+", match[2]))]
            unknown += [
                f"{path.relative_to(ROOT)}: scenario {n}" for n in numbers if n not in known
            ]
    assert not unknown, unknown


@pytest.mark.parametrize(
    "line",
    [
        "see ``reference/order-lifecycle.md`` section 4",
        "the facts are in ../shared/reference/kiwoom-rest.md",
        "as the seed document spells it",
        "Kiwoom limits calls per api-id (§8).",
        "an answer with return_code != 0 (``reference`` section 7)",
    ],
)
def test_the_pattern_catches_what_it_must(line: str) -> None:
    assert OUTSIDE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        'see docs/kiwoom.md, "Answer codes"',
        "reference = self._reference.get(stk_cd)",
        "a partial cancel of 5 (scenario 9)",
    ],
)
def test_the_pattern_leaves_ordinary_text_alone(line: str) -> None:
    assert not OUTSIDE.search(line)
