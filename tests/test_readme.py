"""The README's promises: its Python example runs, its commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run() -> None:
    blocks = _blocks("python")
    assert blocks, "the README should show the engine in use"
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)  # the asserts inside must hold


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    setup = _blocks("sh")[0].strip().splitlines()
    assert len(setup) == 2
    main_cmd, test_cmd = setup
    assert "order-engine" in main_cmd and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines()
