"""Market data for the simulated exchange: bars with volume, KRX tick sizes, seeded price paths."""

from __future__ import annotations

import math
import random
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Final, NamedTuple

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
    of 15% each, tilted back toward the starting price as it strays (no move up from 10% above
    it, none down from 10% below), so that a whole day stays well inside the daily band; each
    bar trades between 0 and ``max_volume`` (at most 65,535) shares and may reach one tick
    beyond its open and close. The walk has its own ``random.Random(seed)``.
    """
    return _Walk(symbols, steps, seed, step_ms, max_volume, start_prices, list)


#: Steps whose random bytes are drawn at once (4 bytes per symbol and step).
_CHUNK: Final = 2048
_NEVER: Final = 1 << 62

#: (open, high, low, close, the rung after) of one bar, before its volume.
_Outcome = tuple[int, int, int, int, int]

#: One symbol's part of a chunk of the walk: (its code, each step's outcome, each step's volume
#: as 16 random bits, scaled by ``max_volume + 1`` and shifted right 16 bits).
_Column = tuple[str, list[_Outcome], "array[int]"]

#: A bar's reach byte: 20% of bars trade a tick above the higher of open and close (1), 20% a
#: tick below the lower (2, when there is one), the rest neither (0).
_REACH: Final = bytes(1 if b < 52 else 2 if b > 204 else 0 for b in range(256))


class _Ladder:
    """The prices one symbol can walk: valid KRX ticks from 10% below its start to 10% above,
    one rung a tick (and one more rung at each end, for a bar's reach), and per rung the
    outcome of each bar.

    A move draws one random byte ``b``: up when ``b < up_below[rung]`` (a chance of
    ``0.15 * (1 - 10 * (price - start) / start)``, kept between 0 and 0.3), down when
    ``b > down_above[rung]`` (0.3 less the chance up; never from the lowest price). ``moves``
    turns the byte into 0 (no move), 3 (up) or 6 (down) per rung, and ``outcomes[rung][move +
    reach]`` is the bar (see ``_REACH``): so a step costs two lookups.
    """

    __slots__ = ("down_above", "moves", "outcomes", "prices", "start_rung", "up_below")

    def __init__(self, start: int) -> None:
        if type(start) is not int or start <= 0:
            raise ValueError(f"a start price is a positive int of KRW, not {start!r}")
        above = [start]
        while above[-1] * 10 < start * 11:
            above.append(above[-1] + tick_size(above[-1]))
        above.append(above[-1] + tick_size(above[-1]))  # the reach above the highest close
        below: list[int] = []
        price = start
        while price * 10 > start * 9 and price > 1:
            price = round_to_tick(price - tick_size(price - 1))
            below.append(price)
        if price > 1:
            below.append(round_to_tick(price - tick_size(price - 1)))  # the reach below
        self.prices = prices = below[::-1] + above
        self.start_rung = len(below)
        self.up_below: list[int] = []
        self.down_above: list[int] = []
        self.moves: list[bytes] = []
        self.outcomes: list[tuple[_Outcome, ...]] = []
        for rung, price in enumerate(prices):
            up = 0.15 * (1 - 10 * (price - start) / start)
            up = 0.0 if up < 0.0 else 0.3 if up > 0.3 else up
            lowest = rung == 0 or price <= 1
            up_below = math.ceil(up * 256) if rung + 1 < len(prices) else 0
            down_above = 255 if lowest else min(255, math.floor((0.7 + up) * 256))
            self.up_below.append(up_below)
            self.down_above.append(down_above)
            self.moves.append(  # up below up_below, down above down_above (up_below <= 77)
                b"\x03" * up_below
                + b"\x00" * (down_above + 1 - up_below)
                + b"\x06" * (255 - down_above)
            )
            outcomes = []
            for to in (rung, rung + 1, rung - 1):  # no move, up, down
                for reach in (0, 1, 2):
                    top, bottom = (to, rung) if to > rung else (rung, to)
                    if reach == 1 and top + 1 < len(prices):
                        top += 1
                    elif reach == 2 and bottom > 0:
                        bottom -= 1
                    valid = 0 <= to < len(prices)
                    outcomes.append(
                        (price, prices[top], prices[bottom], prices[to], to)
                        if valid
                        else (price, price, price, price, rung)  # never drawn
                    )
            self.outcomes.append(tuple(outcomes))


@lru_cache(maxsize=16)
def _ladder(start: int) -> _Ladder:
    """Return the ladder of a start price (made once: ladders are never changed)."""
    return _Ladder(start)


class _Walk:
    """The walk of :func:`random_walk`: an iterable of steps, each a ``kind(bars)`` list.

    The walk is drawn a chunk of steps at a time, symbol by symbol: 4 random bytes a bar (its
    move, its reach, two for its volume) from ``random.Random(seed)``, turned by the ladder's
    tables into each bar's prices (shared tuples: nothing is made per bar). A step's bars are
    made when the step is taken; :meth:`skip` passes over steps without making theirs, as far as
    its caller allows (the harness: up to the first step whose bars reach a resting order).
    """

    __slots__ = (
        "_kind",
        "_limit",
        "_named",
        "_names",
        "_next",
        "_ready",
        "_rng",
        "_rungs",
        "_steps",
        "columns",
        "position",
        "step_ms",
        "symbols",
        "volumes",
    )

    def __init__(
        self,
        symbols: Sequence[str],
        steps: int | None,
        seed: int,
        step_ms: int,
        max_volume: int,
        start_prices: dict[str, int] | None,
        kind: Callable[[], list[Bar]],
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if type(seed) is not int:
            raise ValueError(f"seed must be an int, not {seed!r}")
        if type(max_volume) is not int or not 0 <= max_volume < 1 << 16:
            raise ValueError(f"max_volume must be an int from 0 to 65535, not {max_volume!r}")
        known = start_prices or START_PRICES
        #: The distinct symbols, each walking once (a symbol named twice gets the same bar twice).
        self.symbols = list(dict.fromkeys(symbols))
        index = {code: i for i, code in enumerate(self.symbols)}
        self._names = [index[code] for code in symbols]
        ladders = [_ladder(known.get(code, 50_000)) for code in self.symbols]
        self._named = [
            (code, ladder.moves, ladder.outcomes)
            for code, ladder in zip(self.symbols, ladders, strict=True)
        ]
        self._rungs = [ladder.start_rung for ladder in ladders]
        self._limit = _NEVER if steps is None else steps
        self._rng = random.Random(seed)
        self._kind = kind
        #: What a column's volume bits are scaled by: ``max_volume + 1``.
        self.volumes = max_volume + 1
        #: Per symbol named, its column of the chunk drawn (see :meth:`take`).
        self.columns: list[_Column] = []
        self._ready = 0  # the steps drawn in the chunk...
        self._next = 0  # ... and the next one to take
        #: The index of the next step (its bars are stamped ``position * step_ms``).
        self.position = 0
        self.step_ms = step_ms
        self._steps = self._generate()

    def __iter__(self) -> Iterator[list[Bar]]:
        return self._steps

    def __next__(self) -> list[Bar]:
        return next(self._steps)

    def _generate(self) -> Iterator[list[Bar]]:
        """Yield the steps (a generator: resuming one costs less than a ``__next__`` call)."""
        take = self.take
        bars = self.bars
        while (k := take()) >= 0:
            yield bars(k)

    def take(self) -> int:
        """Take the next step (drawing a chunk when needed): return its index ``k`` in
        :attr:`columns`, or -1 at the end of the walk. Its bars are stamped
        ``(position - 1) * step_ms``; :meth:`bars` makes them."""
        k = self._next
        if k >= self._ready and (k := self._fresh()) < 0:
            return -1
        self._next = k + 1
        self.position += 1
        return k

    def _fresh(self) -> int:
        """Draw the next chunk: return 0, its first step, or -1 at the end of the walk."""
        if self.position >= self._limit:
            return -1
        self._draw()
        return 0

    def bars(self, k: int) -> list[Bar]:
        """Make the bars of step ``k`` of the chunk (the step ``position - 1``)."""
        new = tuple.__new__  # a Bar without the Python-level constructor: a third of the cost
        ms = (self.position - 1) * self.step_ms
        volumes = self.volumes
        bars = self._kind()
        append = bars.append
        for code, outs, sizes in self.columns:
            first, high, low, close, _ = outs[k]
            append(new(Bar, (code, ms, first, high, low, close, sizes[k] * volumes >> 16)))
        return bars

    def _draw(self) -> None:
        """Draw the next chunk of steps (at most ``_CHUNK``, never past the end)."""
        n = min(_CHUNK, self._limit - self.position)
        data = self._rng.randbytes(4 * n * len(self._named))
        columns = []
        for i, (code, moves, outcomes) in enumerate(self._named):
            block = data[4 * n * i : 4 * n * (i + 1)]
            sizes = array("H", block[2 * n :])
            if sys.byteorder == "big":  # the bytes are read little-endian everywhere
                sizes.byteswap()
            rung = self._rungs[i]
            outs: list[_Outcome] = []
            append = outs.append
            for move, reach in zip(block[:n], block[n : 2 * n].translate(_REACH), strict=True):
                outcome = outcomes[rung][moves[rung][move] + reach]
                append(outcome)
                rung = outcome[4]
            self._rungs[i] = rung
            columns.append((code, outs, sizes))
        self.columns = (
            columns if len(self._names) == len(columns) else [columns[i] for i in self._names]
        )
        self._ready = n
        self._next = 0

    def skip(self, count: int, until: Callable[[Sequence[_Column], int, int], int]) -> int:
        """Pass over up to ``count`` steps, stopping where ``until`` says.

        ``until(columns, k, end)`` returns the first of the chunk's steps ``k`` to ``end - 1``
        that must not be passed over (``end``: none); the exchange's answer is the first step
        whose bars reach a resting order (:meth:`SimExchange._first_reach`). The walk stops
        there (the next step is then that one) and at the end of the chunk drawn. Return the
        index in :attr:`columns` of the last step passed over (-1 when none was).
        """
        k = self._next
        if k >= self._ready and (k := self._fresh()) < 0:
            return -1
        end = until(self.columns, k, min(self._ready, k + count))
        if end <= k:
            return -1
        self._next = end
        self.position += end - k
        return end - 1
