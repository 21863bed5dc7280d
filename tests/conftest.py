"""Hypothesis profiles: ``ci`` (default, about a minute for the whole suite) and ``deep``.

Select with ``HYPOTHESIS_PROFILE=deep pytest tests/test_stateful.py`` for a long exploration
(about 25 minutes on 2 cores; see README). ``dev`` is a quick local loop.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=200, stateful_step_count=40, **_UNTIMED)
settings.register_profile("deep", max_examples=2_000, stateful_step_count=120, **_UNTIMED)
settings.register_profile("dev", max_examples=50, stateful_step_count=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the journals the CLI makes by default out of the user's real state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
