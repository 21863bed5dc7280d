"""One call that runs a seeded simulated session with the built-in example strategy."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

from adapters.sim.example import ExampleStrategy
from adapters.sim.exchange import SimExchange
from adapters.sim.harness import Harness, Report, Strategy
from adapters.sim.latency import Latency
from adapters.sim.market import _CheckedStep, _Walk
from engine import OrderBook, SessionCalendar
from engine import events as ev
from engine.sessions import KST

__all__ = ["DAY_MS", "DEFAULT_START", "DEFAULT_SYMBOLS", "run_session", "sub_seeds"]

#: The simulated session opens at 09:00 Korea time on a fixed business day (never the clock).
DEFAULT_START: Final = datetime(2026, 11, 25, 9, 0, tzinfo=KST)

#: The continuous session runs from 09:00 to 15:20 Korea time.
DAY_MS: Final = (6 * 60 + 20) * 60 * 1000

#: Samsung Electronics, SK hynix, NAVER.
DEFAULT_SYMBOLS: Final = ("005930", "000660", "035420")


def sub_seeds(seed: int) -> tuple[int, int, int]:
    """Return the exchange's, the market's and the strategy's seeds, all derived from ``seed``."""
    if type(seed) is not int:
        raise ValueError(f"seed must be an int (the same seed, the same run), not {seed!r}")
    rng = random.Random(seed)
    return rng.getrandbits(63), rng.getrandbits(63), rng.getrandbits(63)


def run_session(
    *,
    seed: int = 7,
    orders: int = 500,
    latency: Latency | str | int = "5-150",
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    step_ms: int = 200,
    start: datetime = DEFAULT_START,
    sessions: SessionCalendar | None = None,
    journal: bool | Callable[[ev.Event], object] = True,
    strategy: Strategy | None = None,
    on_step: Callable[[Harness], object] | None = None,
    max_steps: int | None = None,
    on_start: Callable[[Harness], object] | None = None,
) -> tuple[Harness, Report]:
    """Run a session and return the harness (book, exchange) and its final report.

    The market is a random walk of ``symbols`` with one bar per ``step_ms`` from ``start``
    (09:00 Korea time) to 15:20, or for ``max_steps`` steps. The example strategy spreads
    ``orders`` orders over that session (a ``strategy`` of your own replaces it). ``latency`` is
    a :class:`Latency` or one delay for all three channels (``"5-150"``, ``25``). The session
    ends when the market data ends or the strategy is done; open orders then expire.
    ``on_start`` gets the harness before the first step (a recorder attaches itself there).
    """
    if not isinstance(latency, Latency):
        latency = Latency.uniform(latency)
    exchange_seed, market_seed, strategy_seed = sub_seeds(seed)
    exchange = SimExchange(seed=exchange_seed, start=start, latency=latency, sessions=sessions)
    steps = max_steps if max_steps is not None else max(1, DAY_MS // step_ms)
    if strategy is None:
        strategy = ExampleStrategy(orders=orders, seed=strategy_seed, steps=steps)
    book = OrderBook(calendar=sessions, journal=journal)
    harness = Harness(exchange, strategy, book=book, on_step=on_step)
    if on_start is not None:
        on_start(harness)
    market = _Walk(list(symbols), steps, market_seed, step_ms, 200, None, _CheckedStep)
    return harness, harness.run(market)
