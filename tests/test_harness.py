"""The harness: the engine's view equals the exchange's truth, races are counted, replays match."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from adapters.broker import CancelOutcome, CancelStatus, Ticket, TicketStatus
from adapters.sim import (
    Bar,
    Delay,
    Harness,
    Latency,
    Race,
    Report,
    SimError,
    SimExchange,
    Strategy,
    compare,
    run_session,
)
from adapters.sim.session import DEFAULT_START
from engine import OrderBook, OrderState, Refusal, Side
from engine import events as ev
from engine.sessions import KST, KoreaSessions

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
    # fills beat cancels in every way docs/policies.md describes (scenarios 9, 10 and 11)
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

    def __init__(self) -> None:
        self.outcomes: list[CancelOutcome] = []

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        step = bars[0].at_ms // 200
        if step == 0:
            harness.place("005930", Side.BUY, 10, 69_000)
        elif step == 1:
            ord_no = next(iter(harness.book.orders))
            harness.modify(ord_no, 0, 68_900)
            self.outcomes.append(harness.cancel(ord_no, "0"))


def test_a_cancel_of_shares_a_pending_modify_reserved_is_refused_instead_of_racing_it() -> None:
    exchange = SimExchange(seed=1, start=DEFAULT_START)  # no latency at all
    strategy = ModifyThenCancel()
    harness = Harness(exchange, strategy)
    for step in range(3):
        harness.step([Bar.tick("005930", step * 200, 70_000, 0)])
    report = harness.finish()
    assert report.ok
    [outcome] = strategy.outcomes
    assert outcome.refused and outcome.decision.reason is Refusal.NOTHING_CANCELLABLE
    assert report.cancels["rejected"] == {} and report.races == {}  # no MODIFY_TOOK_SHARES
    first = harness.book.get("0000001")
    assert first.state is OrderState.REPLACED and not first.modify_all_pending


# -- race labels follow what really took the shares --------------------------------------------
class Scripted(Strategy):
    """Runs ``script[t](harness)`` at bar time t."""

    def __init__(self, script: dict[int, Callable[[Harness], object]]) -> None:
        self.script = script

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        action = self.script.get(bars[0].at_ms)
        if action is not None:
            action(harness)


def _run(
    script: dict[int, Callable[[Harness], object]],
    latency: Latency,
    bars: list[list[Bar]],
    **kw: Any,
) -> tuple[Harness, Report]:
    harness = Harness(SimExchange(seed=1, latency=latency, **kw), Scripted(script))
    return harness, harness.run(bars)


def _flat(until: int, *, step: int = 200, price: int = 71_000) -> list[list[Bar]]:
    return [[Bar.tick("005930", t, price, 0)] for t in range(0, until, step)]


def test_a_cancel_of_shares_a_modify_on_its_way_reserved_is_refused_not_raced() -> None:
    script = {
        0: lambda h: h.place("005930", Side.BUY, 100, 70_000),  # never fills: no volume
        1_000: lambda h: h.modify("0000001", 50, 69_900),
        1_200: lambda h: h.cancel("0000001", 80),  # 50 are reserved by the modify
        1_400: lambda h: h.cancel("0000001", 50),  # the other 50: allowed
    }
    _, report = _run(
        script, Latency(Delay(10), Delay(0), Delay(300)), _flat(2_000), start=DEFAULT_START
    )
    assert report.ok and report.shares["filled"] == 0
    assert report.cancels["refused"] == {"EXCEEDS_CANCELLABLE": 1}
    assert report.cancels["rejected"] == {} and report.races == {}
    assert (report.shares["replaced"], report.shares["cancelled"]) == (50, 100)


def test_a_modify_that_moved_nothing_is_answered_and_the_fills_get_the_blame() -> None:
    tickets: list[Ticket] = []
    script = {
        0: lambda h: h.place("005930", Side.BUY, 100, 70_000),
        1_000: lambda h: (tickets.append(h.modify("0000001", 30, 69_900)), h.cancel("0000001", 30)),
    }
    bars = [
        [Bar.tick("005930", t, 71_000 if t < 1_200 else 70_000, 0 if t < 1_200 else 500)]
        for t in range(0, 2_000, 200)
    ]
    _, report = _run(script, Latency(Delay(10), Delay(300), Delay(10)), bars, start=DEFAULT_START)
    (modify,) = tickets
    assert (modify.status, modify.code, modify.ord_no) == (TicketStatus.REJECTED, "RC4033", "")
    assert report.ok and report.shares["replaced"] == 0
    assert Race.MODIFY_TOOK_SHARES not in report.races
    assert report.races[Race.PARTIAL_CANCEL_TOO_LATE] == 1


def test_a_cancel_refused_because_the_market_closed_is_no_race() -> None:
    calendar = KoreaSessions()
    script = {
        0: lambda h: h.place("005930", Side.BUY, 100, 70_000),
        9_500: lambda h: h.cancel("0000001", "0"),  # allowed just before the 10 s guard
    }
    harness = Harness(
        SimExchange(
            seed=1,
            start=datetime(2026, 11, 25, 15, 29, 40, tzinfo=KST),
            sessions=calendar,
            latency=Latency(Delay(1_000), Delay(0), Delay(0)),
        ),
        Scripted(script),
        book=OrderBook(calendar=calendar),
    )
    report = harness.run(_flat(12_000, step=500))
    assert report.cancels["rejected"] == {"RC4058": 1}
    assert report.races == {}
    assert report.ok


def test_modifies_outside_the_daily_band_are_rejected() -> None:
    tickets: list[Ticket] = []
    script = {
        0: lambda h: h.place("005930", Side.BUY, 10, 70_000),
        200: lambda h: tickets.append(h.modify("0000001", 0, 140_000)),
    }
    harness, report = _run(script, Latency(), _flat(600), start=DEFAULT_START)
    assert (tickets[0].status, tickets[0].code) == (TicketStatus.REJECTED, "RC4000")
    assert harness.book.get("0000001").replaced_qty == 0 and report.ok


# -- bad input changes nothing -------------------------------------------------------------------
def test_refused_requests_count_nothing() -> None:
    harness = Harness(SimExchange(seed=1, start=DEFAULT_START), Strategy())
    harness.step([Bar.tick("005930", 0, 71_000, 100)])
    with pytest.raises(SimError):
        harness.place("005930", Side.BUY, 0, 71_000)
    with pytest.raises(SimError):
        harness.place("KRX:005930", Side.BUY, 10, 71_000)
    with pytest.raises(KeyError):
        harness.modify("0000099", 0, 71_000)
    assert harness.report().placements == {
        "sent": 0,
        "modifies": 0,
        "modifies_refused": {},
        "modifies_rejected": {},
        "rejected": {},
    }
    assert harness.exchange.requests == 0


def test_a_step_with_one_bad_bar_changes_nothing() -> None:
    exchange = SimExchange(seed=1, start=DEFAULT_START)
    harness = Harness(exchange, Strategy())
    harness.step([Bar.tick("005930", 0, 71_000, 100)])
    harness.place("005930", Side.BUY, 50, 70_900)
    exchange.advance(0)
    before = (repr(exchange.orders["0000001"]), exchange.now_ms, harness.steps, harness.events)
    for bad in (
        [Bar.tick("005930", 200, 70_900, 100), Bar("000660", 200, 0, 0, 0, 0, 5)],
        [Bar.tick("005930", 200, 70_900, 100), Bar.tick("000660", 400, 100, 5)],
        [Bar.tick("005930", 200, 70_900, 100), Bar.tick("KRX:00", 200, 100, 5)],
    ):
        with pytest.raises(SimError):
            harness.step(bad)
        after = (repr(exchange.orders["0000001"]), exchange.now_ms, harness.steps, harness.events)
        assert after == before


def test_seeds_must_be_ints_and_a_request_past_midnight_is_refused_when_sent() -> None:
    with pytest.raises(SimError):
        SimExchange(seed=None, start=DEFAULT_START)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_session(seed="7", orders=1)  # type: ignore[arg-type]
    late = datetime(2026, 11, 25, 23, 59, 59, tzinfo=KST)  # midnight is 1,000 ms away
    exchange = SimExchange(seed=1, start=late, latency=Latency.uniform("0-300"))
    exchange.place(stk_cd="005930", side=Side.BUY, qty=1, price=70_000)
    exchange.drain()  # served, at the venue and delivered within 900 ms
    exchange.advance(800)
    assert list(exchange.orders) == ["0000001"]
    with pytest.raises(SimError, match="after midnight"):
        exchange.place(stk_cd="005930", side=Side.BUY, qty=1, price=70_000)  # could be served late
    assert exchange.requests == 1 and not exchange.busy
