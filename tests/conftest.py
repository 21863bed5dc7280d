"""Hypothesis profiles, and the order in which the suite's tests are handed out.

Profiles: ``ci`` (the default) and ``deep``. Select with
``HYPOTHESIS_PROFILE=deep pytest tests/test_stateful.py`` for a long exploration (about 25
minutes on 2 cores; see docs/testing.md). ``dev`` is a quick local loop.

The suite runs in parallel (``-n auto --dist worksteal`` in pyproject's addopts, pytest-xdist).
The rule-based state machine is one long test, so it is collected first: one worker starts on it
at once while the others take the rest, and no worker is left with it at the end.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
#: Under CI (``CI=true``) the examples are derandomized: the same ones every run, so a result
#: never depends on the run's luck; locally every run explores new ones.
_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
settings.register_profile(
    "ci", max_examples=200, stateful_step_count=40, derandomize=_IN_CI, **_UNTIMED
)
settings.register_profile("deep", max_examples=2_000, stateful_step_count=120, **_UNTIMED)
settings.register_profile("dev", max_examples=50, stateful_step_count=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Test files whose tests take long enough that they should start first.
LONG_FIRST = ("test_stateful.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the long tests to the front (a stable sort: the rest keep their order)."""
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)


@pytest.fixture(autouse=True)
def _private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the journals the CLI makes by default out of the user's real state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
