"""The order-engine command: the demo is the README's main job."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from adapters.cli.main import main


def test_demo_walks_the_four_seed_examples_and_a_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for needle in (
        '"orig_ord_no": "0000140", "stk_cd": "005930", "cncl_qty": "0"',
        '"orig_ord_no": "0000140", "stk_cd": "005930", "cncl_qty": "5"',
        '"orig_ord_no": "0000141", "stk_cd": "000660", "cncl_qty": "0"',
        '"orig_ord_no": "0000142", "stk_cd": "035420", "cncl_qty": "0"',
        "refused: FULLY_FILLED",
        "no kt10003 is sent",
        "부분체결 PARTIALLY_FILLED",
        "취소 CANCELLED",
        "전량체결 FILLED",
        "every step kept F + C + M + L == Q",
    ):
        assert needle in out, needle
    # example 1: 3 filled before the cancel-all, so only the 7 still open are cancelled
    assert 'decide cancel cncl_qty "0": allowed, 7 shares' in out
    # the refused example sends nothing: exactly four kt10003 bodies are printed
    assert out.count("kt10003 body") == 4


def test_console_script_is_installed_and_runs_the_demo() -> None:
    exe = shutil.which("order-engine")
    assert exe is not None, "pip install -e . should install the order-engine script"
    done = subprocess.run([exe, "demo"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "0000140" in done.stdout


def test_unknown_command_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "nonsense"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
