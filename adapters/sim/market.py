"""Market data for the simulated exchange: bars with volume, KRX tick sizes, seeded price paths."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, NamedTuple

__all__ = ["START_PRICES", "Bar", "random_walk", "round_to_tick", "tick_size"]

#: Starting prices of the built-in symbols (KRW).
START_PRICES: Final[dict[str, int]] = {
    "005930": 71_000,  # Samsung Electronics
    "000660": 182_000,  # SK hynix
    "035420": 201_500,  # NAVER
    "051910": 354_000,  # LG Chem
    "005380": 246_000,  # Hyundai Motor
    "068270": 178_500,  # Celltrion
}

#: KRX tick sizes for stocks (price floor, tick), highest floor first.
_TICKS: Final = (
    (500_000, 1_000),
    (200_000, 500),
    (50_000, 100),
    (20_000, 50),
    (5_000, 10),
    (2_000, 5),
    (0, 1),
)


def tick_size(price: int) -> int:
    """Return the KRX tick size for a stock quoted at ``price`` KRW."""
    for floor, tick in _TICKS:
        if price >= floor:
            return tick
    return 1


def round_to_tick(price: int) -> int:
    """Round ``price`` down to a valid tick (at least one tick)."""
    tick = tick_size(price)
    return max(tick, price - price % tick)


class Bar(NamedTuple):
    """One step of market data for one symbol at ``at_ms`` (milliseconds into the simulation).

    ``volume`` is what traded in the step: the most the project's resting orders on each side
    can get filled. A tick is a bar whose four prices are equal (:meth:`tick`). A bar is a
    plain tuple, cheap to make by the hundred thousand; :meth:`problem` says what is wrong with
    one, and the exchange refuses such a bar.
    """

    stk_cd: str
    at_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int

    @classmethod
    def tick(cls, stk_cd: str, at_ms: int, price: int, volume: int) -> Bar:
        """Return a single trade of ``volume`` shares at ``price``."""
        return cls(stk_cd, at_ms, price, price, price, price, volume)

    def problem(self) -> str:
        """Return what is wrong with this bar, or ``""`` when it is well formed."""
        if type(self.at_ms) is not int or self.at_ms < 0:
            return f"bar time must be a non-negative int of ms, not {self.at_ms!r}"
        prices = (self.open, self.high, self.low, self.close)
        if any(type(p) is not int for p in prices):
            return f"bar prices must be ints (KRW): {self!r}"
        if (
            not 0
            < self.low
            <= min(self.open, self.close)
            <= max(self.open, self.close)
            <= self.high
        ):
            return f"bar prices out of order (0 < low <= open, close <= high): {self!r}"
        if type(self.volume) is not int or self.volume < 0:
            return f"bar volume must be a non-negative int, not {self.volume!r}"
        return ""


class _CheckedStep(list[Bar]):
    """One step of bars made by :func:`_walk` itself: well formed by construction.

    Only :func:`adapters.sim.session.run_session` feeds these to the harness (which then skips
    :meth:`SimExchange.check_bars`); :func:`random_walk` hands its callers plain lists.
    """

    __slots__ = ()


def random_walk(
    symbols: Sequence[str],
    *,
    steps: int | None,
    seed: int,
    step_ms: int = 200,
    max_volume: int = 200,
    start_prices: dict[str, int] | None = None,
) -> Iterator[list[Bar]]:
    """Yield one list of bars (one per symbol) per step: a seeded, mean-reverting walk in ticks.

    ``steps`` None walks forever. Each step the price moves one tick up or down with a chance
    of 15% each, tilted back toward the starting price as it strays, so that a whole day stays
    well inside the daily band; each bar trades between 0 and ``max_volume`` shares and may
    reach one tick beyond its open and close. The walk has its own ``random.Random(seed)``.
    """
    return _walk(symbols, steps, seed, step_ms, max_volume, start_prices, list)


def _walk(
    symbols: Sequence[str],
    steps: int | None,
    seed: int,
    step_ms: int,
    max_volume: int,
    start_prices: dict[str, int] | None,
    kind: Callable[[], list[Bar]],
) -> Iterator[list[Bar]]:
    """The walk of :func:`random_walk`, each step a new ``kind()`` list (checked eagerly)."""
    if not symbols:
        raise ValueError("at least one symbol is needed")
    if type(seed) is not int:
        raise ValueError(f"seed must be an int, not {seed!r}")
    known = start_prices or START_PRICES
    # One state per symbol: [code, price, what is known of that price, the table of those per
    # price]. The chance of a move depends on the price alone, so it is worked out once per
    # price (the same floats as computing it every step).
    # A symbol named twice walks once (both bars share its price), as a dict of prices did.
    state: dict[str, list[Any]] = {}
    for stk_cd in symbols:
        start = known.get(stk_cd, 50_000)
        table = _PriceTable(start)
        state.setdefault(stk_cd, [stk_cd, start, table[start], table])
    walkers = [state[stk_cd] for stk_cd in symbols]
    limit = 1 << 62 if steps is None else steps
    return _steps(walkers, limit, random.Random(seed).random, step_ms, max_volume + 1, kind)


def _steps(
    walkers: list[list[Any]],
    limit: int,
    rand: Callable[[], float],
    step_ms: int,
    volumes: int,
    kind: Callable[[], list[Bar]],
) -> Iterator[list[Bar]]:
    new = tuple.__new__  # a Bar without the Python-level constructor: a third of the cost
    step = 0
    while step < limit:
        at = step * step_ms
        bars = kind()
        append = bars.append
        for walker in walkers:
            stk_cd, last, info, table = walker
            up, down_at, tick, lower = info
            roll = rand()
            reach = rand()  # one draw for both: 20% a tick higher, 20% a tick lower
            if roll < up:  # a tick up
                close = high = last + tick
                low = last
            elif roll > down_at:  # a tick down (never below one tick)
                close = low = lower
                high = last
            else:
                close = high = low = last
            if close != last:
                walker[1] = close
                walker[2] = info = table[close]
                tick = info[2]
            if reach < 0.2:
                high += tick
            elif reach > 0.8 and low > tick:
                # the tick below the low (at the close's tick: known unless the price rose)
                low = info[3] if low == close else round_to_tick(low - tick)
            append(new(Bar, (stk_cd, at, last, high, low, close, int(rand() * volumes))))
        yield bars
        step += 1


class _PriceTable(dict[int, tuple[float, float, int, int]]):
    """Per price of one walk: (chance of a tick up, the roll above which it moves down, the
    tick, the price one tick below), computed on first use."""

    __slots__ = ("start",)

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = start

    def __missing__(self, price: int) -> tuple[float, float, int, int]:
        start = self.start
        up = 0.15 * (1 - 10 * (price - start) / start)
        up = 0.0 if up < 0.0 else 0.3 if up > 0.3 else up
        tick = tick_size(price)
        down_at = 0.7 + up if price > tick else 2.0  # a roll is below 1: no move down
        info = self[price] = (up, down_at, tick, round_to_tick(price - tick))
        return info
