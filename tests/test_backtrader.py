"""The backtrader broker: a real Cerebro trades through the engine and the simulated exchange."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import backtrader as bt
import pytest

from adapters.broker import CancelOutcome, CancelStatus
from adapters.sim import Bar, Latency, random_walk, tick_size
from adapters.sim.backtrader_broker import BarFeed, EngineBroker
from adapters.sim.session import DEFAULT_START
from engine import OrderState, Refusal, Side

ROOT = Path(__file__).resolve().parent.parent

#: backtrader's terminal status for each terminal engine state.
TERMINAL = {
    OrderState.FILLED: "Completed",
    OrderState.CANCELLED: "Canceled",
    OrderState.REJECTED: "Rejected",
}


def walk(code: str, *, steps: int, seed: int, step_ms: int = 1_000) -> list[Bar]:
    """Return one symbol's seeded random-walk bars."""
    return [bars[0] for bars in random_walk([code], steps=steps, seed=seed, step_ms=step_ms)]


def run(
    strategy: type[Any],
    feeds: list[Any],
    broker: EngineBroker,
    **params: Any,
) -> Any:
    """Run a real Cerebro with ``broker`` and return the strategy instance."""
    cerebro = bt.Cerebro(stdstats=False)
    for feed in feeds:
        cerebro.adddata(feed)
    cerebro.setbroker(broker)
    cerebro.addstrategy(strategy, **params)
    (strat,) = cerebro.run()
    return strat


def assert_agrees_with_engine(broker: EngineBroker, order: Any) -> None:
    """The backtrader order ended where the engine's order did, share for share."""
    mine = broker.engine_order(order)
    assert mine is not None, order.info
    assert mine.is_terminal
    assert order.getstatusname() == TERMINAL[mine.state], (order.info, mine)
    sign = 1 if mine.side is Side.BUY else -1
    assert order.executed.size == sign * mine.filled_qty
    if mine.filled_qty:
        assert order.executed.price == pytest.approx(float(mine.avg_fill_price or 0))


def assert_books_balance(broker: EngineBroker, feeds: list[Any], cash: float) -> None:
    """Positions and cash are exactly what the engine's fills imply (no commission)."""
    spent: dict[str, int] = {}
    held: dict[str, int] = {}
    for mine in broker.book.orders.values():
        sign = 1 if mine.side is Side.BUY else -1
        spent[mine.stk_cd] = spent.get(mine.stk_cd, 0) + sign * mine.fill_notional
        held[mine.stk_cd] = held.get(mine.stk_cd, 0) + sign * mine.filled_qty
    assert broker.getcash() == cash - sum(spent.values())
    value = broker.getcash()
    for feed in feeds:
        position = broker.getposition(feed)
        assert position.size == held.get(broker.code_of(feed), 0)
        value += position.size * feed.close[0]
    assert broker.getvalue() == pytest.approx(value)


class Scripted(bt.Strategy):  # type: ignore[misc]
    """Places, cancels and part-cancels on fixed bars; records what backtrader tells it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, float]] = []  # (ref, status, executed size)
        self.outcomes: dict[str, CancelOutcome | None] = {}
        self.requests: dict[str, tuple[int, int]] = {}  # exchange.requests before/after
        self.big = self.far = self.rest = self.exit = None

    def notify_order(self, order: Any) -> None:
        self.seen.append((order.ref, order.getstatusname(), order.executed.size))

    def _cancel(self, key: str, call: Callable[[], CancelOutcome | None]) -> None:
        before = self.broker.exchange.requests
        self.outcomes[key] = call()
        self.requests[key] = (before, self.broker.exchange.requests)

    def next(self) -> None:
        n = len(self.data0)
        close = int(self.data0.close[0])
        if n == 2:
            tick = tick_size(close)
            self.big = self.buy(size=500, price=close + tick, exectype=bt.Order.Limit)
            self.far = self.buy(size=10, price=close - 10 * tick, exectype=bt.Order.Limit)
            close1 = int(self.data1.close[0])
            self.rest = self.buy(
                data=self.data1,
                size=10,
                price=close1 - 10 * tick_size(close1),
                exectype=bt.Order.Limit,
            )
        elif n == 6:
            self._cancel("far", lambda: self.broker.cancel(self.far))
            self._cancel("far again", lambda: self.broker.cancel(self.far))
            self._cancel("rest 4", lambda: self.broker.cancel_shares(self.rest, 4))
            self._cancel("rest 100", lambda: self.broker.cancel_shares(self.rest, 100))
        elif n == 40:
            self.exit = self.sell(size=200)
        if (
            self.big is not None
            and self.big.status == bt.Order.Completed
            and "big" not in self.outcomes
        ):
            # backtrader's Strategy.cancel drops the outcome; the order's info keeps it
            self._cancel("big", lambda: self.cancel(self.big) or self.big.info.cancel_outcome)


def test_a_cerebro_gets_partial_fills_cancels_and_refusals_with_reasons() -> None:
    feeds = [BarFeed(walk("005930", steps=60, seed=3)), BarFeed(walk("000660", steps=60, seed=4))]
    broker = EngineBroker(cash=100_000_000, seed=11, latency="5-150")
    strat = run(Scripted, feeds, broker)
    big, far, rest, exit_ = strat.big, strat.far, strat.rest, strat.exit

    # the marketable buy of 500 fills over several bars (each bar trades at most 200)
    sizes = [size for ref, status, size in strat.seen if ref == big.ref and status == "Partial"]
    assert len(sizes) >= 2 and sizes == sorted(sizes) and sizes[-1] < 500
    assert big.status == bt.Order.Completed and big.executed.size == 500
    statuses = [status for ref, status, _ in strat.seen if ref == big.ref]
    assert statuses[:2] == ["Submitted", "Accepted"] and statuses[-1] == "Completed"

    # a cancel the engine allows reaches the exchange and ends the order
    allowed = strat.outcomes["far"]
    assert allowed is not None and allowed.status is CancelStatus.SENT
    assert strat.requests["far"][1] == strat.requests["far"][0] + 1
    assert far.status == bt.Order.Canceled and far.executed.size == 0
    assert broker.engine_order(far).cancelled_qty == 10  # type: ignore[union-attr]

    # refused cancels carry their reason and send nothing
    for key, reason in (
        ("far again", Refusal.CANCEL_ALL_PENDING),
        ("rest 100", Refusal.EXCEEDS_CANCELLABLE),
        ("big", Refusal.FULLY_FILLED),
    ):
        outcome = strat.outcomes[key]
        assert outcome is not None and outcome.refused, key
        assert outcome.decision.reason is reason
        before, after = strat.requests[key]
        assert after == before, key
    assert big.info.cancel_refusal is Refusal.FULLY_FILLED
    assert "FULLY_FILLED" in big.info.cancel_refusal_text
    assert [r.reason for r in broker.refusals] == [
        Refusal.CANCEL_ALL_PENDING,
        Refusal.EXCEEDS_CANCELLABLE,
        Refusal.FULLY_FILLED,
    ]
    assert broker.refusals[-1].order_ref == big.ref
    assert big.status == bt.Order.Completed  # the refusal changed nothing

    # a partial cancel of 4 leaves 6 open; the end of the day expires them
    mine = broker.engine_order(rest)
    assert mine is not None and mine.cancelled_qty == 10 and mine.filled_qty == 0
    assert rest.status == bt.Order.Canceled and rest.info.expired is True
    assert mine.stk_cd == "000660"

    assert exit_.status == bt.Order.Completed and exit_.executed.size == -200
    for order in broker.orders:
        assert_agrees_with_engine(broker, order)
    assert_books_balance(broker, feeds, 100_000_000)
    assert broker.getposition(feeds[0]).size == 300

    report = broker.report
    assert report is not None
    assert report.ok, report.mismatches
    assert report.cancels["refused"] == {
        "CANCEL_ALL_PENDING": 1,
        "EXCEEDS_CANCELLABLE": 1,
        "FULLY_FILLED": 1,
    }
    assert report.cancels["allowed"] == 2


class CancelAtOnce(bt.Strategy):  # type: ignore[misc]
    """Places a marketable buy every third bar and cancels it before its number is known."""

    def __init__(self) -> None:
        self.placed: list[Any] = []
        self.answers: list[CancelOutcome | None] = []

    def next(self) -> None:
        if len(self.data) % 3 == 1 and len(self.data) < 280:
            order = self.buy(size=300, price=self.data.close[0], exectype=bt.Order.Limit)
            self.placed.append(order)
            self.answers.append(self.broker.cancel(order))


@pytest.mark.parametrize("reorder", [False, True])
def test_fills_that_beat_a_cancel_leave_the_order_where_the_engine_says(reorder: bool) -> None:
    feeds = [BarFeed(walk("005930", steps=300, seed=0, step_ms=200))]
    latency = Latency.uniform("20-300", reorder=reorder)
    broker = EngineBroker(cash=10**12, seed=0, latency=latency)
    strat = run(CancelAtOnce, feeds, broker)

    # no number yet: the cancel waits for it, then goes through the engine
    assert strat.answers and all(answer is None for answer in strat.answers)
    assert all(order.info.cancel_deferred for order in strat.placed)
    ends = {(o.getstatusname(), o.executed.size > 0) for o in strat.placed}
    # cancelled clean, cancelled after some fills, and filled in full despite the cancel
    assert ends == {("Canceled", False), ("Canceled", True), ("Completed", True)}
    beaten = [o for o in strat.placed if o.status == bt.Order.Completed]
    assert any(o.info.get("cancel_rejected") == "RC4033" for o in beaten)
    for order in strat.placed:
        assert_agrees_with_engine(broker, order)
    assert_books_balance(broker, feeds, 10**12)
    report = broker.report
    assert report is not None
    assert report.ok, report.mismatches
    assert report.races["CANCEL_ALL_TOO_LATE"] and report.races["CANCEL_ALL_AFTER_FILL"]


class ImmediateOrCancel(bt.Strategy):  # type: ignore[misc]
    """Sends an IOC buy every other bar; records the notifications of late fills."""

    def __init__(self) -> None:
        self.placed: list[Any] = []
        self.late: list[tuple[int, str, float]] = []
        self.statuses: dict[int, list[str]] = {}

    def notify_order(self, order: Any) -> None:
        self.statuses.setdefault(order.ref, []).append(order.getstatusname())
        if order.info.get("late_fill") and order.status == bt.Order.Canceled:
            self.late.append((order.ref, order.getstatusname(), order.executed.size))

    def next(self) -> None:
        if len(self.data) % 2:
            price = self.data.close[0]
            self.placed.append(self.buy(size=300, price=price, exectype=bt.Order.Limit, tif="IOC"))


def test_ioc_remainders_expire_as_canceled_and_late_fills_still_count() -> None:
    feeds = [BarFeed(walk("005930", steps=150, seed=0, step_ms=200))]
    latency = Latency.uniform("0-400", reorder=True)  # an expiry can overtake its fills
    broker = EngineBroker(cash=10**12, seed=0, latency=latency)
    strat = run(ImmediateOrCancel, feeds, broker)

    assert all(o.status in (bt.Order.Canceled, bt.Order.Completed) for o in strat.placed)
    expired = [o for o in strat.placed if o.status == bt.Order.Canceled]
    assert expired and all(o.info.expired is True for o in expired)
    # a fill that arrives after the expiry takes shares back from the cancelled ones: the
    # order stays Canceled, its executed size, the position and the cash grow
    late = [o for o in strat.placed if o.info.get("late_fill")]
    assert late and all(o.status == bt.Order.Canceled for o in late)
    assert any(size > 0 for _, _, size in strat.late)
    for ref, _, _ in strat.late:  # an ended order never comes back to life
        seen = strat.statuses[ref]
        assert set(seen[seen.index("Canceled") :]) == {"Canceled"}, seen
    for order in strat.placed:
        assert_agrees_with_engine(broker, order)
    assert_books_balance(broker, feeds, 10**12)
    report = broker.report
    assert report is not None
    assert report.ok, report.mismatches
    assert report.anomalies["LATE_FILL"] >= len(late)


class Awkward(bt.Strategy):  # type: ignore[misc]
    """Sends what the broker must refuse, an order the venue rejects, and an IOC order."""

    def __init__(self) -> None:
        self.orders: dict[str, Any] = {}
        self.unknown: CancelOutcome | None = None

    def next(self) -> None:
        if len(self.data) != 2:
            return
        close = int(self.data.close[0])
        limit = bt.Order.Limit
        self.orders = {
            "stop": self.buy(size=1, price=close, exectype=bt.Order.Stop),
            "fraction": self.buy(size=1.5, price=close, exectype=limit),
            "off tick": self.buy(size=1, price=close + 1, exectype=limit),
            "no price": self.buy(size=1, exectype=limit),
            "valid": self.buy(size=1, price=close, exectype=limit, valid=datetime(2026, 12, 1)),
            "cash": self.buy(size=100_000, price=close, exectype=limit),
            "band": self.buy(size=1, price=close * 2, exectype=limit),
            "ioc": self.buy(size=10_000, price=close, exectype=limit, tif="IOC"),
        }
        self.unknown = self.broker.cancel(self.orders["stop"])


def test_unsupported_orders_are_refused_with_reasons_and_the_venue_rejects_with_codes() -> None:
    feeds = [BarFeed(walk("005930", steps=20, seed=5))]
    broker = EngineBroker(cash=1_000_000_000, seed=2, latency="10-50")
    strat = run(Awkward, feeds, broker)
    orders = strat.orders

    for key, words in (
        ("stop", "Stop"),
        ("fraction", "whole number"),
        ("off tick", "tick"),
        ("no price", "price"),
        ("valid", "day order"),
    ):
        assert orders[key].status == bt.Order.Rejected, key
        assert words in orders[key].info.reject_reason, key
    assert orders["cash"].status == bt.Order.Margin
    assert "not enough cash" in orders["cash"].info.reject_reason
    assert broker.exchange.requests == 2  # only the band and IOC orders were sent
    assert len(broker.book) == 2

    band = orders["band"]
    assert band.status == bt.Order.Rejected and band.info.code == "RC4000" and band.info.message
    ioc = orders["ioc"]
    assert ioc.status == bt.Order.Canceled and ioc.info.expired is True
    assert 0 < ioc.executed.size < 10_000
    for key in ("band", "ioc"):
        assert_agrees_with_engine(broker, orders[key])

    # a cancel of an order the exchange never saw: the engine does not know it
    assert strat.unknown is not None and strat.unknown.decision.reason is Refusal.UNKNOWN_ORDER
    assert orders["stop"].info.cancel_refusal is Refusal.UNKNOWN_ORDER
    assert broker.report is not None and broker.report.ok


class OffTick(bt.Strategy):  # type: ignore[misc]
    def next(self) -> None:
        if len(self.data) == 2:
            close = int(self.data.close[0])
            self.order = self.buy(size=5, price=close + 1.0, exectype=bt.Order.Limit)
            self.market = self.sell(size=5)


def test_round_prices_and_market_orders_map_to_kiwoom_terms() -> None:
    bars = walk("005930", steps=10, seed=1)
    broker = EngineBroker(seed=1, round_prices=True)
    strat = run(OffTick, [BarFeed(bars)], broker)
    limit = broker.engine_order(strat.order)
    market = broker.engine_order(strat.market)
    assert limit is not None and limit.price == bars[1].close  # moved down to the tick
    assert market is not None and market.price == 0 and market.side is Side.SELL
    assert strat.market.status == bt.Order.Completed and strat.market.executed.size == -5


class BuyOnce(bt.Strategy):  # type: ignore[misc]
    def next(self) -> None:
        if len(self.data) == 1:
            self.buy(size=1)


def test_feeds_map_to_stock_codes_and_every_bar_steps_the_exchange() -> None:
    bars = walk("005930", steps=15, seed=9)
    feed = BarFeed(bars, start=DEFAULT_START, name="samsung")
    broker = EngineBroker(seed=3, codes={"samsung": "005930"})
    run(BuyOnce, [feed], broker)
    assert broker.harness.steps == len(bars)
    assert broker.exchange.last_price("005930") == bars[-1].close
    assert [o.stk_cd for o in broker.book.orders.values()] == ["005930"]

    with pytest.raises(ValueError, match="6-digit stock code"):
        run(BuyOnce, [BarFeed(bars, name="samsung")], EngineBroker(seed=3))


def test_the_example_script_runs_and_its_report_matches() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "backtrader_example.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "engine matches the exchange: True" in done.stdout
    assert "FULLY_FILLED" in done.stdout
