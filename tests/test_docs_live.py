"""docs/live.md: its example runs as written against the simulator."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "live.md"


def test_the_live_doc_example_runs_against_the_simulator() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # the asserts inside must hold
    assert namespace["reasons"] == ["CANCEL_ALL_PENDING"] * 3
