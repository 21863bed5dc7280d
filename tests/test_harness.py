"""The harness: the engine's view equals the exchange's truth, races are counted, replays match."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from adapters.broker import CancelStatus
from adapters.sim import (
    Bar,
    Harness,
    Latency,
    Race,
    SimExchange,
    Strategy,
    compare,
    run_session,
)
from adapters.sim.session import DEFAULT_START
from engine import OrderBook, OrderState, Refusal, Side
from engine import events as ev

SEEDS = range(12)


@pytest.mark.parametrize("latency", ["0", "0-40", "5-150", "100-400"])
@pytest.mark.parametrize("reorder", [False, True])
def test_engine_view_equals_exchange_truth_over_many_seeds(latency: str, reorder: bool) -> None:
    for seed in SEEDS:
        harness, report = run_session(
            seed=seed, orders=120, latency=Latency.uniform(latency, reorder=reorder), max_steps=600
        )
        assert report.mismatches == [], (seed, report.mismatches[:5])
        assert report.invariant_violations == []
        assert report.ok
        assert report.orders == len(harness.exchange.orders) >= 120
        assert all(o.is_terminal for o in harness.book.orders.values())  # the day closed


def test_races_happen_with_latency_and_never_without() -> None:
    seen: set[str] = set()
    for seed in SEEDS:
        _, slow = run_session(seed=seed, orders=300, latency="20-300", max_steps=1_500)
        _, instant = run_session(seed=seed, orders=300, latency=0, max_steps=1_500)
        assert slow.races, seed
        assert instant.races == {}, (seed, instant.races)
        seen |= set(slow.races)
    # fills beat cancels in every way the lifecycle spec describes (scenarios 9, 10 and 11)
    assert {
        Race.FILL_DURING_CANCEL,
        Race.PARTIAL_CANCEL_SHRUNK,
        Race.CANCEL_ALL_TOO_LATE,
        Race.CANCEL_ALL_AFTER_FILL,
    } <= seen


def test_reordered_deliveries_park_events_and_take_late_fills_back() -> None:
    races: set[str] = set()
    for seed in SEEDS:
        _, report = run_session(
            seed=seed, orders=300, latency=Latency.uniform("0-400", reorder=True), max_steps=1_500
        )
        assert report.ok
        races |= set(report.races)
    assert {Race.EARLY_EVENT, Race.LATE_FILL} <= races


def test_the_same_seed_gives_the_same_events_and_another_seed_does_not() -> None:
    def stream(seed: int) -> list[str]:
        harness, _ = run_session(seed=seed, orders=200, latency="0-200", max_steps=800)
        return [json.dumps(e.to_dict(), ensure_ascii=False) for e in harness.book.events]

    first = stream(3)
    assert first == stream(3)
    assert first != stream(4)


def test_the_journal_replays_into_an_identical_book() -> None:
    lines: list[str] = []
    harness, report = run_session(
        seed=9,
        orders=300,
        latency=Latency.uniform("0-300", reorder=True),
        max_steps=1_200,
        journal=lambda e: lines.append(json.dumps(e.to_dict())),
    )
    assert report.ok and lines
    assert len(harness.book.events) == 0  # the events went to the sink, not to memory
    replayed = OrderBook.replay(ev.from_dict(json.loads(line)) for line in lines)
    assert replayed.snapshot() == harness.book.snapshot()


# -- compare really compares ---------------------------------------------------------------------
def _finished() -> Harness:
    harness, report = run_session(seed=2, orders=150, latency="0-100", max_steps=600)
    assert report.ok
    return harness


def test_compare_reports_a_fill_the_exchange_never_made() -> None:
    harness = _finished()
    book = harness.book
    victim = next(
        o for o in book.orders.values() if o.state is OrderState.CANCELLED and not o.filled_qty
    )
    book.apply(ev.OrderFilled(victim.ord_no, "forged", 1, victim.price or 70_000))  # a late fill
    fields = {m.field for m in compare(book, harness.exchange) if m.ord_no == victim.ord_no}
    assert {"filled_qty", "cancelled_qty", "fill_notional"} <= fields


def test_compare_reports_orders_only_one_side_knows_and_parked_events() -> None:
    harness = _finished()
    book = harness.book
    book.apply(ev.OrderAccepted("0999999", "005930", Side.BUY, 5, 70_000))
    book.apply(ev.OrderConfirmed("0888888"))  # parked: its order never came
    found = {(m.ord_no, m.field) for m in compare(book, harness.exchange)}
    assert ("0999999", "order") in found
    assert ("0888888", "parked") in found
    assert not harness.report().ok


# -- cancels through the engine's decision ---------------------------------------------------------
class OneShot(Strategy):
    """Buys once; then tries cancels the engine must refuse, and one it allows."""

    def __init__(self) -> None:
        self.ord_no = ""
        self.outcomes: list[tuple[str, CancelStatus, Refusal | None]] = []

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        step = bars[0].at_ms // 200
        if step == 0:
            harness.place("005930", Side.BUY, 10, 69_000)
        elif step == 1:
            self.ord_no = next(iter(harness.book.orders))
            for qty in ("2.5", 11, 3, "0", 1):
                outcome = harness.cancel(self.ord_no, qty)
                self.outcomes.append((str(qty), outcome.status, outcome.decision.reason))


def test_refused_cancels_never_reach_the_exchange() -> None:
    exchange = SimExchange(seed=1, start=DEFAULT_START)
    strategy = OneShot()
    harness = Harness(exchange, strategy)
    harness.step([Bar.tick("005930", 0, 70_000, 0)])
    harness.step([Bar.tick("005930", 200, 70_000, 0)])
    report = harness.finish()
    assert strategy.outcomes == [
        ("2.5", CancelStatus.REFUSED, Refusal.INVALID_QUANTITY),
        ("11", CancelStatus.REFUSED, Refusal.EXCEEDS_CANCELLABLE),
        ("3", CancelStatus.SENT, None),
        ("0", CancelStatus.SENT, None),  # the 7 still cancellable
        ("1", CancelStatus.REFUSED, Refusal.CANCEL_ALL_PENDING),
    ]
    assert exchange.requests == 3  # one order, two cancels: refusals sent nothing
    assert report.ok
    assert report.cancels["refused"] == {
        "CANCEL_ALL_PENDING": 1,
        "EXCEEDS_CANCELLABLE": 1,
        "INVALID_QUANTITY": 1,
    }
    order = harness.book.get(strategy.ord_no)
    assert (order.state, order.cancelled_qty) == (OrderState.CANCELLED, 10)


def test_a_finished_harness_refuses_more_steps() -> None:
    harness = _finished()
    with pytest.raises(RuntimeError):
        harness.step([Bar.tick("005930", 10**9, 70_000, 1)])
    assert harness.finish() is harness.finish()  # the final report is kept


class ModifyThenCancel(Strategy):
    """Modifies all of its order to a new price and, in the same step, cancels all of it."""

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        step = bars[0].at_ms // 200
        if step == 0:
            harness.place("005930", Side.BUY, 10, 69_000)
        elif step == 1:
            ord_no = next(iter(harness.book.orders))
            harness.modify(ord_no, 0, 68_900)
            assert harness.cancel(ord_no, "0").request is not None  # the engine cannot know


def test_a_cancel_beaten_by_the_strategys_own_modify_is_not_called_a_fill_race() -> None:
    exchange = SimExchange(seed=1, start=DEFAULT_START)  # no latency at all
    harness = Harness(exchange, ModifyThenCancel())
    for step in range(3):
        harness.step([Bar.tick("005930", step * 200, 70_000, 0)])
    report = harness.finish()
    assert report.ok
    assert report.cancels["rejected"] == {"RC4033": 1}
    assert report.races == {Race.MODIFY_TOOK_SHARES: 1}
