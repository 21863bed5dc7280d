"""docs/testing.md: the worked example of property-testing a strategy runs as written.

The Python blocks of the section "Property-testing your own strategy against the simulated
exchange" run in order in one namespace, like a reader pasting them into one test module; then
every ``test_*`` function they define runs, and every state machine ``TestCase`` they collect.

They run derandomized (the same examples every time, under the profile of tests/conftest.py):
this file checks that the example still works as written; searching for new failures is the
job of tests/test_sim_kit.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from adapters.sim import testing as ss
from engine import Order, OrderBook
from engine import events as ev

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
SECTION = "## Property-testing your own strategy against the simulated exchange"


def _section(text: str) -> str:
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@contextlib.contextmanager
def _profile(name: str, **changes: Any) -> Iterator[settings]:
    """Load the current profile with ``changes`` while the block runs; settings made inside
    (the examples' ``@settings(...)``) inherit them."""
    current = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    settings.register_profile(name, settings.get_profile(current), **changes)
    settings.load_profile(name)
    try:
        yield settings.default
    finally:
        settings.load_profile(current)


def _run_section(**changes: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_testing_example"}
    with _profile("docs-examples", derandomize=True, database=None, **changes):
        for block in _blocks(_section(DOC.read_text(encoding="utf-8"))):
            exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def test_the_section_is_there_with_its_examples() -> None:
    blocks = _blocks(_section(DOC.read_text(encoding="utf-8")))
    assert len(blocks) >= 3
    assert any("@given" in b for b in blocks)
    assert any("SimulationMachine" in b for b in blocks)


def test_the_worked_example_runs_and_its_tests_pass() -> None:
    namespace = _run_section()
    tests = {k: v for k, v in namespace.items() if k.startswith("test_") and callable(v)}
    machines = {
        k: v
        for k, v in namespace.items()
        if k.startswith("Test") and isinstance(v, type) and issubclass(v, unittest.TestCase)
    }
    assert len(tests) >= 2 and len(machines) >= 1
    for test in tests.values():
        test()  # a Hypothesis test: it runs its examples, and raises if a property fails
    for case in machines.values():
        case("runTest").runTest()


class _LosesFills(OrderBook):
    """A broken engine: it never hears of a fill."""

    def apply(self, event: ev.Event) -> Order | None:
        return None if isinstance(event, ev.OrderFilled) else super().apply(event)


def test_the_worked_example_catches_a_broken_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The docs' properties are not vacuous: an engine that loses fills is reported by both."""
    namespace = _run_section(phases=[Phase.generate])  # failures expected: no shrinking
    real = ss.run_strategy

    def broken_run(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs, book=_LosesFills())

    monkeypatch.setattr(ss, "run_strategy", broken_run)
    with pytest.raises(AssertionError, match="filled_qty engine=0 exchange="):
        namespace["test_dip_buyer_keeps_every_share_accounted_for"]()

    class Broken(namespace["DipBuyerMachine"]):  # type: ignore[misc, name-defined]
        def make_book(self) -> OrderBook:
            return _LosesFills()

    with pytest.raises(AssertionError, match="filled_qty engine=0 exchange="):
        run_state_machine_as_test(Broken, settings=namespace["TestDipBuyer"].settings)
