"""Idle steps: the harness passes over steps where nothing can happen, and nothing changes.

A run that skips (the default for the built-in strategy on its own walk) must be the same
session, event for event, as one that steps through every bar; the walk's ``skip`` must leave
the walk exactly where stepping would, and the exchange must never let it pass over a bar that
reaches a resting order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sim import (
    DEFAULT_START,
    Bar,
    Harness,
    Latency,
    SimExchange,
    Strategy,
    random_walk,
    round_to_tick,
    run_session,
)
from adapters.sim.example import ExampleStrategy
from adapters.sim.market import _REACH, START_PRICES, _Ladder, _Walk, tick_size
from engine import Order, Side
from engine import events as ev


def _step_through(harness: Harness) -> None:
    harness.skip_idle = False


@pytest.mark.parametrize(
    ("orders", "seed", "latency"),
    [(300, 7, "5-150"), (400, 3, "0"), (300, 11, "0-400"), (200, 5, "300-900")],
)
def test_skipping_idle_steps_gives_the_same_session_as_stepping_through(
    orders: int, seed: int, latency: str
) -> None:
    fast, fast_report = run_session(orders=orders, seed=seed, latency=latency)
    slow, slow_report = run_session(
        orders=orders, seed=seed, latency=latency, on_start=_step_through
    )
    assert fast_report.ok
    assert fast_report.to_dict() == slow_report.to_dict()
    assert list(fast.book.events) == list(slow.book.events)
    assert fast.steps == slow.steps
    assert fast.exchange.now == slow.exchange.now
    for code in ("005930", "000660", "035420"):
        fast_book, slow_book = fast.exchange._books[code], slow.exchange._books[code]
        assert (fast_book.close, fast_book.left) == (slow_book.close, slow_book.left)


def test_idle_steps_are_really_skipped_and_counted() -> None:
    calls: list[int] = []

    def count(harness: Harness) -> None:
        calls.append(harness.steps)

    harness, _ = run_session(orders=50, seed=7, on_step=count)
    # on_step is called once per step run and once per run of skipped steps: far fewer calls
    # than steps, yet the steps count every bar of the day up to the end.
    assert harness.steps > 100_000
    assert len(calls) < harness.steps // 10
    assert calls == sorted(calls) and calls[-1] == harness.steps


class _Watching(ExampleStrategy):
    """The example strategy, noting the last price of every symbol each time it hears of an
    event and each time it sees a step (a walk's step nobody looks at is written lazily)."""

    event_types = None  # every event

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.prices: list[tuple[int, str, tuple[int | None, ...]]] = []

    def _note(self, harness: Harness, what: str) -> None:
        codes = ("005930", "000660", "035420")
        self.prices.append((harness.steps, what, tuple(harness.last_price(c) for c in codes)))

    def on_event(self, harness: Harness, event: ev.Event, order: Order | None) -> None:
        self._note(harness, type(event).__name__)
        if isinstance(event, (ev.OrderAccepted, ev.OrderAmended)):
            super().on_event(harness, event, order)

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        self._note(harness, "bars")
        super().on_bars(harness, bars)


@pytest.mark.parametrize(("seed", "latency"), [(7, "5-150"), (2, "0")])
def test_prices_read_between_steps_are_the_same_as_when_stepping_through(
    seed: int, latency: str
) -> None:
    fast = _Watching(orders=300, seed=seed, steps=20_000)
    slow = _Watching(orders=300, seed=seed, steps=20_000)
    _, fast_report = run_session(seed=seed, latency=latency, strategy=fast, max_steps=20_000)
    _, slow_report = run_session(
        seed=seed, latency=latency, strategy=slow, max_steps=20_000, on_start=_step_through
    )
    assert fast_report.to_dict() == slow_report.to_dict()
    # What the strategy heard, and the prices it read then, event by event; the steps it saw
    # are a subset (it promised to do nothing in the others).
    heard = [p for p in fast.prices if p[1] != "bars"]
    assert heard == [p for p in slow.prices if p[1] != "bars"]
    assert len(heard) > 1_000
    seen = [p for p in fast.prices if p[1] == "bars"]
    assert set(seen) <= {p for p in slow.prices if p[1] == "bars"}
    assert len(seen) < len(slow.prices) - len(heard)


class _EveryStep(Strategy):
    """A strategy that does not declare idle steps: it must see every one."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        self.seen.append(bars[0].at_ms)
        if len(self.seen) == 3:
            harness.place("005930", Side.BUY, 10, 60_000)


def test_a_strategy_without_idle_steps_sees_every_step() -> None:
    strategy = _EveryStep()
    harness, report = run_session(orders=0, seed=1, strategy=strategy, max_steps=500)
    assert strategy.seen == [i * 200 for i in range(500)]
    assert harness.steps == 500 and report.orders == 1


def _walk(seed: int, steps: int | None = None) -> _Walk:
    return _Walk(["005930", "000660", "035420"], steps, seed, 200, 200, None, list)


def _stop_at_reach(bounds: dict[str, tuple[int, int]]) -> Callable[..., int]:
    """An ``until`` for ``_Walk.skip``: the first step with a bar at or beyond a symbol's
    bounds (a highest buy, a lowest sell), worked out bar by bar."""

    def until(columns: Sequence[tuple[str, list[Any], Any]], k: int, end: int) -> int:
        for j in range(k, end):
            for code, outcomes, _ in columns:
                _, high, low, _, _ = outcomes[j]
                buy, sell = bounds.get(code, (0, 1 << 62))
                if low <= buy or high >= sell:
                    return j
        return end

    return until


@given(
    seed=st.integers(0, 2**32),
    plan=st.lists(
        st.tuples(st.integers(0, 3_000), st.integers(-3, 3), st.integers(-3, 3)), max_size=8
    ),
)
def test_skip_leaves_the_walk_where_stepping_would_and_stops_where_it_is_told(
    seed: int, plan: list[tuple[int, int, int]]
) -> None:
    walk = _walk(seed)
    reference = _walk(seed)
    for count, buy_ticks, sell_ticks in plan:
        price = START_PRICES["005930"]
        bounds = {"005930": (price + 100 * buy_ticks, price + 100 * (5 + sell_ticks))}
        before = walk.position
        last = walk.skip(count, _stop_at_reach(bounds))
        passed = walk.position - before
        assert passed <= count
        assert (last < 0) == (passed == 0)
        stepped = [next(reference) for _ in range(passed)]
        if stepped:
            assert walk.bars(last) == stepped[-1]
        for bars in stepped:  # none of the bars passed over is at or beyond a bound
            for bar in bars:
                buy, sell = bounds.get(bar.stk_cd, (0, 1 << 62))
                assert not (bar.low <= buy or bar.high >= sell)
        assert next(walk) == next(reference)  # and the next step is the same bar
    assert walk.position == reference.position


def test_skip_stops_at_the_end_of_the_walk() -> None:
    walk = _walk(3, steps=10)
    last = walk.skip(1_000, lambda _columns, _k, end: end)
    assert walk.position == 10 and last == 9 and walk.bars(last)[0].at_ms == 9 * 200
    assert list(walk) == []
    assert walk.skip(5, lambda _columns, _k, end: end) == -1


@given(
    seed=st.integers(0, 2**32),
    orders=st.lists(
        st.tuples(
            st.sampled_from(["005930", "000660"]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(-6, 6),
            st.booleans(),
        ),
        max_size=6,
    ),
)
def test_the_first_reach_is_the_first_step_that_would_fill_a_resting_order(
    seed: int, orders: list[tuple[str, Side, int, bool]]
) -> None:
    exchange = SimExchange(seed=1, start=DEFAULT_START, latency=Latency.uniform(0))
    walk = _Walk(["005930", "000660", "035420"], None, seed, 200, 200, None, list)
    k = walk.take()
    exchange._match_walk(walk.columns, k, walk.volumes)  # the first bars open the books
    for code, side, ticks, market in orders:
        close = exchange.last_price(code)
        assert close is not None
        price = 0 if market else round_to_tick(close + ticks * tick_size(close))
        exchange.place(
            stk_cd=code, side=side, qty=10**9, price=price, trde_tp="3" if market else "0"
        )
    exchange.advance(0)  # no latency: every order is on the book (or filled, or expired)

    def reaches(j: int) -> bool:  # a bar at or through the limit of a live order (any: market)
        for code, outcomes, _ in walk.columns:
            _, high, low, _, _ = outcomes[j]
            for o in exchange.orders.values():
                if (o.stk_cd == code and o.leaves) and (
                    o.market or (low <= o.price if o.side is Side.BUY else high >= o.price)
                ):
                    return True
        return False

    first = exchange._first_reach(walk.columns, k + 1, k + 400)
    assert k + 1 <= first <= k + 400
    assert not any(reaches(j) for j in range(k + 1, first))  # nothing skipped could fill
    if first < k + 400:
        assert reaches(first)  # and the step it names could


@pytest.mark.parametrize("start", [71_000, 182_000, 201_500, 1_000, 3, 1_999_000])
def test_a_ladder_is_valid_ticks_within_ten_percent_of_the_start(start: int) -> None:
    ladder = _Ladder(start)
    prices = ladder.prices
    assert prices[ladder.start_rung] == start
    assert prices == sorted(set(prices)) and prices[0] >= 1
    for price in prices:
        if price != start:
            assert round_to_tick(price) == price
    # A close moves up only from below 10% over the start, down only from above 10% under it
    # (and never below one tick): a bar reaches at most one more rung, which the ladder has.
    for rung, price in enumerate(prices):
        if ladder.up_below[rung]:
            assert price * 10 < start * 11 and rung + 2 < len(prices)
        if ladder.down_above[rung] < 255:
            assert (price * 10 > start * 9 and rung >= 2) or (rung >= 1 and prices[0] == 1)
    assert ladder.up_below[-1] == 0 and ladder.down_above[0] == 255
    # The tables give each bar by the rule: a move by the byte's thresholds, then a reach of
    # one rung above (a reach byte under 52) or below (over 204, when there is a rung below).
    for rung in range(1, len(prices) - 1):
        assert len(ladder.moves[rung]) == 256
        for move in range(256):
            to = (
                rung + 1
                if move < ladder.up_below[rung]
                else rung - 1
                if move > ladder.down_above[rung]
                else rung
            )
            for reach in (0, 51, 52, 128, 204, 205, 255):
                top, bottom = max(rung, to), min(rung, to)
                if reach < 52:
                    top += 1
                elif reach > 204 and bottom:
                    bottom -= 1
                outcome = ladder.outcomes[rung][ladder.moves[rung][move] + _REACH[reach]]
                assert outcome == (prices[rung], prices[top], prices[bottom], prices[to], to)


def test_the_walk_is_reproducible_stays_in_the_band_and_moves_like_before() -> None:
    steps = 20_000
    path = list(random_walk(["005930"], steps=steps, seed=42))
    assert path == list(random_walk(["005930"], steps=steps, seed=42))
    assert path != list(random_walk(["005930"], steps=steps, seed=43))
    closes = [bars[0].close for bars in path]
    start = START_PRICES["005930"]
    assert all(0.89 * start <= c <= 1.11 * start for c in closes)
    moves = sum(1 for a, b in pairwise(closes) if a != b) / steps
    assert 0.2 < moves < 0.35  # about 30% of steps move a tick
    volumes = [bars[0].volume for bars in path]
    assert min(volumes) == 0 and max(volumes) == 200


def test_a_bad_max_volume_or_start_price_is_refused() -> None:
    with pytest.raises(ValueError, match="max_volume"):
        random_walk(["005930"], steps=1, seed=1, max_volume=1 << 16)
    with pytest.raises(ValueError, match="start price"):
        random_walk(["005930"], steps=1, seed=1, start_prices={"005930": 0})


class _Sleepy(_EveryStep):
    """Declares itself idle for the next 99 steps after each step it sees."""

    def idle_steps(self, harness: Harness) -> int:
        return 99


def test_only_a_walk_that_can_skip_is_skipped() -> None:
    listed = _Sleepy()
    Harness(SimExchange(seed=1, start=DEFAULT_START), listed).run(
        list(random_walk(["005930"], steps=500, seed=1))
    )
    assert len(listed.seen) == 500  # a plain list of steps is stepped through
    walked = _Sleepy()
    harness = Harness(SimExchange(seed=1, start=DEFAULT_START), walked)
    harness.run(_Walk(["005930"], 500, 1, 200, 200, None, list))
    # One step in a hundred is run; the order it places (no latency) rests out of reach and
    # expires at the close.
    assert walked.seen == [0, 100 * 200, 200 * 200, 300 * 200, 400 * 200]
    order = harness.book.get("0000001")
    assert harness.steps == 500 and order.filled_qty == 0 and order.cancelled_qty == 10


def test_a_symbol_named_twice_walks_once_and_gets_the_same_bar_twice() -> None:
    twice = list(random_walk(["005930", "005930"], steps=300, seed=9))
    once = list(random_walk(["005930"], steps=300, seed=9))
    assert [bars[0] for bars in twice] == [bars[0] for bars in once]
    assert all(bars[0] == bars[1] for bars in twice)


def test_each_books_reach_bounds_always_cover_its_best_live_orders() -> None:
    checked = []

    def check(harness: Harness) -> None:
        for book in harness.exchange._books.values():
            buys, sells = book.resting
            best_buy = next((o for o in buys if o.leaves), None)
            best_sell = next((o for o in sells if o.leaves), None)
            if best_buy is not None:
                assert book.bid >= (1 << 62 if best_buy.market else best_buy.price)
            if best_sell is not None:
                assert book.ask <= (0 if best_sell.market else best_sell.price)
            checked.append(best_buy is not None or best_sell is not None)

    for latency in ("0", "5-150"):
        run_session(orders=400, seed=5, latency=latency, on_step=check)
    assert sum(checked) > 1_000  # resting orders were there to check, often
