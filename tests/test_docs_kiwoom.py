"""docs/kiwoom.md: its examples against the simulator run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "kiwoom.md"


def test_kiwoom_doc_examples_against_the_simulator_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    # The example for real and mock use would reach Kiwoom; the others start a SimServer.
    local = [b for b in blocks if "SimServer(" in b]
    assert len(blocks) == 4 and len(local) == 3
    for block in local:
        namespace: dict[str, object] = {}
        exec(compile(block, str(DOC), "exec"), namespace)  # the asserts inside must hold
        assert "server" in namespace and "broker" in namespace


def test_the_documented_exit_statuses_are_the_cli_s() -> None:
    from adapters.cli.kiwoom_cli import EXIT

    text = DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d) \| (.+?) \|$", text, flags=re.M))
    assert {int(k) for k in rows} == set(EXIT.values())
    assert rows[str(EXIT["unknown"])].startswith("outcome unknown")
    assert rows[str(EXIT["refused"])].startswith("refused by the engine")
    assert rows[str(EXIT["rejected"])].startswith("rejected by Kiwoom")
