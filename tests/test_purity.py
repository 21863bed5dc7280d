"""The core reads no clock, no global random, and does no I/O (checked on its source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "engine"
FILES = sorted(p for p in CORE.rglob("*.py") if "testing" not in p.parts)
FORBIDDEN_MODULES = {"time", "random", "uuid", "os", "socket", "requests", "secrets", "threading"}
FORBIDDEN_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "urandom"}


def _violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in FORBIDDEN_CALLS:
                found.append(f"{node.func.attr}() at line {node.lineno}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            found.append(f"open() at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_core_module_reads_no_clock_and_no_global_random(path: Path) -> None:
    assert _violations(ast.parse(path.read_text(encoding="utf-8"))) == []


def test_the_check_catches_a_clock_read() -> None:
    tree = ast.parse("import random\nfrom datetime import datetime\nx = datetime.now()\n")
    assert _violations(tree) == ["random", "now() at line 3"]


def test_importing_the_engine_pulls_in_no_test_kit_and_no_network() -> None:
    import subprocess
    import sys

    code = (
        "import sys, engine\n"
        "bad = [m for m in ('hypothesis', 'requests', 'transitions.extensions.diagrams')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_core_and_its_test_kit_import_nothing_from_the_adapters() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):  # engine/testing included
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "adapters"]
    assert offenders == []
