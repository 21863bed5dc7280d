"""docs/simulation.md: its Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.cli.main import main

DOC = Path(__file__).resolve().parent.parent / "docs" / "simulation.md"


def test_simulation_doc_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)  # the replay example reads day.jsonl from where it runs
    args = ["simulate", "--orders", "60", "--step-ms", "1000", "--events-out", "day.jsonl"]
    assert main(args) == 0
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(DOC), "exec"), namespace)  # the asserts inside must hold
    book = namespace["book"]
    assert len(book) >= 60  # type: ignore[arg-type]
    capsys.readouterr()
