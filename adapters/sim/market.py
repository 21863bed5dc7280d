"""Market data for the simulated exchange: bars with volume, KRX tick sizes, seeded price paths."""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
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

#: (open, high, low, close, volume) of one symbol in one step.
_Row = tuple[int, int, int, int, int]


class _Ladder:
    """The prices one symbol can walk: valid KRX ticks from 10% below its start to 10% above,
    one rung a tick (and one more rung at each end, for a bar's reach), with the byte
    thresholds of a move up or down on each rung.

    A move draws one random byte ``b``: up when ``b < up_below[rung]`` (a chance of
    ``0.15 * (1 - 10 * (price - start) / start)``, kept between 0 and 0.3), down when
    ``b > down_above[rung]`` (0.3 less the chance up; never from the lowest price).
    """

    __slots__ = ("down_above", "prices", "start_rung", "up_below")

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
        self.prices = below[::-1] + above
        self.start_rung = len(below)
        self.up_below: list[int] = []
        self.down_above: list[int] = []
        for rung, price in enumerate(self.prices):
            up = 0.15 * (1 - 10 * (price - start) / start)
            up = 0.0 if up < 0.0 else 0.3 if up > 0.3 else up
            lowest = rung == 0 or price <= 1
            self.up_below.append(math.ceil(up * 256) if rung + 1 < len(self.prices) else 0)
            self.down_above.append(255 if lowest else math.floor((0.7 + up) * 256))


class _Walk:
    """The walk of :func:`random_walk`: an iterator of steps, each a new ``kind()`` list.

    Each bar takes 4 random bytes (its move, its reach, its volume), drawn from
    ``random.Random(seed)`` a chunk of steps at a time. :meth:`skip` passes over steps without
    making their bars: the harness's idle steps, in which no bar reaches a resting order.
    """

    __slots__ = (
        "_bytes",
        "_kind",
        "_ladders",
        "_limit",
        "_names",
        "_offset",
        "_rng",
        "_rungs",
        "_tables",
        "_twice",
        "_volumes",
        "position",
        "step_ms",
        "symbols",
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
        self._names = [(code, index[code]) for code in symbols]
        self._ladders = [_Ladder(known.get(code, 50_000)) for code in self.symbols]
        self._rungs = [ladder.start_rung for ladder in self._ladders]
        self._tables = [
            (code, ladder.prices, ladder.up_below, ladder.down_above)
            for code, ladder in zip(self.symbols, self._ladders, strict=True)
        ]
        self._twice = len(self.symbols) < len(self._names)  # a symbol named twice
        self._limit = _NEVER if steps is None else steps
        self._rng = random.Random(seed)
        self._kind = kind
        self._volumes = max_volume + 1
        self._bytes = b""
        self._offset = 0
        #: The index of the next step (its bars are stamped ``position * step_ms``).
        self.position = 0
        self.step_ms = step_ms

    def __iter__(self) -> _Walk:
        return self

    def __next__(self) -> list[Bar]:
        position = self.position
        if position >= self._limit:
            raise StopIteration
        self.position = position + 1
        if self._twice:
            return self._bars(self._advance(), position * self.step_ms)
        # _advance and _bars in one loop (the hot path of a busy day): the same bars.
        data = self._chunk()
        at = self._offset
        self._offset = at + 4 * len(self._tables)
        ms = position * self.step_ms
        rungs = self._rungs
        volumes = self._volumes
        new = tuple.__new__  # a Bar without the Python-level constructor: a third of the cost
        bars = self._kind()
        append = bars.append
        for i, (code, prices, up_below, down_above) in enumerate(self._tables):
            rung = rungs[i]
            move = data[at]
            if move < up_below[rung]:
                rungs[i] = top = to = rung + 1
                bottom = rung
            elif move > down_above[rung]:
                rungs[i] = bottom = to = rung - 1
                top = rung
            else:
                top = bottom = to = rung
            reach = data[at + 1]
            if reach < 52:
                top += 1
            elif reach > 204 and bottom:
                bottom -= 1
            volume = ((data[at + 2] << 8) | data[at + 3]) * volumes >> 16
            append(
                new(Bar, (code, ms, prices[rung], prices[top], prices[bottom], prices[to], volume))
            )
            at += 4
        return bars

    def _bars(self, rows: list[_Row], at: int) -> list[Bar]:
        new = tuple.__new__  # a Bar without the Python-level constructor: a third of the cost
        bars = self._kind()
        append = bars.append
        for code, i in self._names:
            first, high, low, close, volume = rows[i]
            append(new(Bar, (code, at, first, high, low, close, volume)))
        return bars

    def _chunk(self) -> bytes:
        """Return the random bytes with the next step's at ``_offset`` (drawing a new chunk)."""
        data = self._bytes
        if self._offset >= len(data):
            self._bytes = data = self._rng.randbytes(4 * len(self._ladders) * _CHUNK)
            self._offset = 0
        return data

    def _row(self, i: int, rung: int, to: int, at: int) -> _Row:
        """Return the bar of symbol ``i`` whose close moved from ``rung`` to ``to``, with the
        reach and volume bytes at ``at + 1`` to ``at + 3``."""
        data = self._bytes
        prices = self._ladders[i].prices
        top, bottom = (rung, to) if to < rung else (to, rung)
        reach = data[at + 1]
        if reach < 52:  # 20% of bars trade a tick above the higher of open and close
            top += 1
        elif reach > 204 and bottom:  # 20% a tick below the lower (if there is one)
            bottom -= 1
        volume = ((data[at + 2] << 8) | data[at + 3]) * self._volumes >> 16
        return prices[rung], prices[top], prices[bottom], prices[to], volume

    def _advance(self) -> list[_Row]:
        """Walk one step: return each distinct symbol's (open, high, low, close, volume)."""
        data = self._chunk()
        at = self._offset
        self._offset = at + 4 * len(self._ladders)
        rungs = self._rungs
        rows = []
        for i, ladder in enumerate(self._ladders):
            rung = rungs[i]
            move = data[at]
            to = (
                rung + 1
                if move < ladder.up_below[rung]
                else rung - 1
                if move > ladder.down_above[rung]
                else rung
            )
            rungs[i] = to
            rows.append(self._row(i, rung, to, at))
            at += 4
        return rows

    def skip(self, count: int, bounds: dict[str, tuple[int, int]]) -> list[Bar] | None:
        """Pass over up to ``count`` steps in which no bar reaches a resting order.

        ``bounds`` maps a symbol to (the highest price a resting buy takes, the lowest a resting
        sell takes); a bar with volume reaches them when its low is at or below the first or
        its high at or above the second. It stops before the first step that does (which the
        next ``next()`` makes), and at the end of the chunk of random bytes. Return the bars
        of the last step passed over (None when none was).
        """
        data = self._chunk()
        start = self._offset
        stride = 4 * len(self._ladders)
        count = min(count, self._limit - self.position, (len(data) - start) // stride)
        paths = []
        for i, ladder in enumerate(self._ladders):
            prices = ladder.prices
            buy, sell = bounds.get(self.symbols[i], (0, _NEVER))
            # The rungs at or below a resting buy's limit, at or above a resting sell's.
            buy_rung = bisect_right(prices, buy) - 1
            sell_rung = bisect_left(prices, sell)
            up_below = ladder.up_below
            down_above = ladder.down_above
            rung = self._rungs[i]
            path = [rung]  # the symbol's rung before each step
            append = path.append
            at = start + 4 * i
            for n in range(count):
                move = data[at]
                to = (
                    rung + 1
                    if move < up_below[rung]
                    else rung - 1
                    if move > down_above[rung]
                    else rung
                )
                # A bar reaches one rung beyond its open and close at most.
                if (to if to < rung else rung) <= buy_rung + 1 or (
                    rung if to < rung else to
                ) >= sell_rung - 1:
                    _, high, low, _, volume = self._row(i, rung, to, at)
                    if volume and (low <= buy or high >= sell):
                        count = n  # this step is made in full, by the next next()
                        break
                append(to)
                rung = to
                at += stride
            paths.append(path)
        if count <= 0:
            return None
        last = start + (count - 1) * stride
        rows = [self._row(i, p[count - 1], p[count], last + 4 * i) for i, p in enumerate(paths)]
        for i, path in enumerate(paths):
            self._rungs[i] = path[count]
        self._offset = start + count * stride
        self.position += count
        return self._bars(rows, (self.position - 1) * self.step_ms)
