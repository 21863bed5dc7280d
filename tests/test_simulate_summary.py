"""The words of ``order-engine simulate``'s summary: its counts add up and its headings are true."""

from __future__ import annotations

import json
import re

import pytest

from adapters.cli.main import main
from adapters.cli.simulate import _RACE_GROUPS
from adapters.sim import run_session
from engine.sessions import KST

SMALL = ["--orders", "300", "--step-ms", "1000"]


def _summary(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["simulate", *SMALL, *args]) == 0
    return capsys.readouterr().out


def _numbers(pattern: str, text: str) -> list[int]:
    match = re.search(pattern, text)
    assert match is not None, text
    return [int(group.replace(",", "")) for group in match.groups()]


@pytest.mark.parametrize("seed", ["7", "3"])
def test_the_orders_in_the_book_add_up(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    out = _summary(capsys, "--seed", seed)
    total, placed, successors = _numbers(
        r"Orders: ([\d,]+) in the book = ([\d,]+) placed \+ ([\d,]+) new orders from modifies",
        out,
    )
    (sent,) = _numbers(r"placements sent ([\d,]+), refused by the order server none", out)
    match = re.search(r"modifies sent ([\d,]+), rejected (.+?), refused by the engine", out)
    assert match is not None, out
    modifies = int(match[1].replace(",", ""))
    rejected = sum(int(n.replace(",", "")) for n in re.findall(r"RC\d+ ([\d,]+)", match[2]))
    assert match[2] == "none" or rejected > 0
    assert total == placed + successors
    assert placed == sent  # nothing was refused by the order server on this run
    assert successors == modifies - rejected
    # the same figures from the report itself
    assert main(["simulate", *SMALL, "--seed", seed, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["orders"] == total
    assert data["placements"]["sent"] == sent
    assert data["placements"]["modifies"] == modifies
    assert sum(data["states"].values()) == total


def test_every_race_is_listed_under_a_heading_that_is_true_of_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _summary(capsys, "--reorder")
    section = out.split("Races observed", 1)[1].split("Anomalies", 1)[0]
    headings = {title: set(kinds) for title, kinds in _RACE_GROUPS}
    current = None
    listed = []
    for row in section.splitlines()[1:]:
        if row.startswith("  ") and not row.startswith("    "):
            current = row.strip().rstrip(":")
            assert current in headings, current
        elif row.strip():
            kind = row.split()[0]
            listed.append(kind)
            assert current is not None and kind in headings[current], (current, kind)
    assert "fills beating cancels" not in out
    assert "FILL_DURING_CANCEL" in listed  # the run had races to list
    beat = headings["fills beat a cancel (it took fewer shares than allowed, or none)"]
    assert "FILL_DURING_CANCEL" not in beat and "EARLY_EVENT" not in beat


def test_the_day_says_when_it_really_ended(capsys: pytest.CaptureFixture[str]) -> None:
    out = _summary(capsys, "--seed", "5")
    harness, _ = run_session(seed=5, orders=300, step_ms=1000, journal=False)
    ended = harness.exchange.now.astimezone(KST)
    assert f"ended {ended:%H:%M:%S}.{ended.microsecond // 1000:03d} KST" in out
    assert "market data 09:00:00-15:20:00 KST" in out
    assert "when the strategy had nothing left to do" in out
    assert f"{ended:%H:%M}" != "15:20"  # the strategy was done before the market data ended


def test_the_summary_ends_with_what_to_do_next(capsys: pytest.CaptureFixture[str]) -> None:
    tail = _summary(capsys).rstrip("\n").splitlines()[-3:]
    assert tail[0].startswith("next: order-engine simulate --report day.html")
    assert "order-engine sweep" in tail[1]
    assert "docs/index.md" in tail[2]
