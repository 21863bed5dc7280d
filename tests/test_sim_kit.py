"""The simulation test kit (adapters.sim.testing): the engine against the simulated exchange.

The main property: whatever the market, the latency, the seed and the strategy's actions, the
engine's view of every order ends equal to the exchange's truth. The rest pins the kit itself:
its strategies draw valid inputs, a run is reproducible, zero latency has no races, and a broken
invariant or a broken engine is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from adapters.broker import Ticket, TicketStatus
from adapters.sim import (
    DEFAULT_START,
    Bar,
    Delay,
    ExampleStrategy,
    Harness,
    Latency,
    Race,
    Report,
    SimExchange,
    Strategy,
    round_to_tick,
    tick_size,
)
from adapters.sim import testing as ss
from engine import Order, OrderBook, OrderState, Side
from engine import events as ev

SYMBOLS = ("005930", "000660")

# Every test follows the profile of tests/conftest.py (``ci`` by default, the file then takes
# about 20 s); the main property gets twice its examples, the slower runs a fraction of them,
# and HYPOTHESIS_PROFILE=deep scales all of them up.
MAIN = settings(settings.default, max_examples=settings.default.max_examples * 2)
HALF = settings(settings.default, max_examples=max(10, settings.default.max_examples // 2))
# Runs that must fail: no example database (a saved failure would be replayed first and prove
# nothing), and no shrinking where the test only needs the failure to be reported.
FAILING = settings(settings.default, max_examples=100, database=None)
UNSHRUNK = settings(FAILING, phases=[Phase.explicit, Phase.generate])


# -- the strategies draw valid inputs -----------------------------------------------------------
@given(ss.market_paths(symbols=SYMBOLS, step_ms=st.integers(1, 5_000)))
def test_market_paths_are_steps_of_valid_bars_on_krx_ticks(path: list[list[Bar]]) -> None:
    last = -1
    for bars in path:
        assert [b.stk_cd for b in bars] == list(SYMBOLS)
        assert len({b.at_ms for b in bars}) == 1
        assert bars[0].at_ms > last
        last = bars[0].at_ms
        for b in bars:
            assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
            assert b.volume >= 0
            for price in (b.open, b.high, b.low, b.close):
                assert 0 < price <= ss.MAX_PRICE
                assert price % tick_size(price) == 0, (price, b)
    assert 1 <= len(path) <= 30


@given(ss.market_paths(min_steps=2, max_steps=2, max_jump_pct=0, start_prices={"005930": 71_000}))
def test_without_jumps_a_bar_opens_within_three_ticks_of_the_last_close(
    path: list[list[Bar]],
) -> None:
    first, second = path[0][0], path[1][0]
    assert first.open == 71_000
    assert abs(second.open - first.close) <= 3 * tick_size(max(second.open, first.close))


@given(st.sampled_from(ss.BOUNDARY_PRICES), st.integers(-40, 40))
def test_ticks_away_stays_on_valid_ticks_and_walks_back(price: int, ticks: int) -> None:
    moved = ss.ticks_away(price, ticks)
    assert moved % tick_size(moved) == 0
    assert (moved > price) == (ticks > 0) or moved == 1
    if moved > 1:
        assert ss.ticks_away(moved, -ticks) == price


def test_ticks_away_crosses_tick_bands_one_tick_at_a_time() -> None:
    assert ss.ticks_away(49_950, 1) == 50_000
    assert ss.ticks_away(50_000, -1) == 49_950
    assert ss.ticks_away(199_900, 2) == 200_500
    assert ss.ticks_away(2, -5) == 1
    assert round_to_tick(ss.ticks_away(71_000, 3)) == 71_300


@given(ss.latency_profiles(reorder=False), ss.latency_profiles(max_ms=10, reorder=True))
def test_latency_profiles_keep_the_bounds_and_the_reorder_asked_for(
    ordered: Latency, shuffled: Latency
) -> None:
    assert not ordered.reorder and shuffled.reorder
    for channel in (shuffled.request, shuffled.venue, shuffled.delivery):
        assert isinstance(channel, Delay) and 0 <= channel.low <= channel.high <= 10


@given(ss.action_sequences(min_size=1, max_size=5, max_qty=7))
def test_action_sequences_are_small_frozen_values(actions: list[ss.Action]) -> None:
    assert 1 <= len(actions) <= 5
    for action in actions:
        assert action == type(action)(**attrs.asdict(action, recurse=False))
        if isinstance(action, ss.Place):
            assert 1 <= action.qty <= 7 and action.kind in ss.ORDER_KINDS
        with pytest.raises(AttributeError):
            action.foo = 1  # type: ignore[union-attr]


# -- the engine against the exchange ------------------------------------------------------------
@MAIN
@given(
    market=ss.market_paths(symbols=SYMBOLS, max_steps=25, max_volume=30),
    latency=ss.latency_profiles(),
    actions=ss.action_sequences(max_size=25),
    seed=ss.seeds(),
)
def test_engine_view_equals_exchange_truth_for_any_script(
    market: list[list[Bar]], latency: Latency, actions: list[ss.Action], seed: int
) -> None:
    strategy = ss.ScriptedStrategy(actions)
    harness, report = ss.run_strategy(strategy, market, latency, seed)
    ss.assert_engine_matches_exchange(report)
    assert report.ok and report.mismatches == [] and report.invariant_violations == []
    assert len(strategy.outcomes) == min(len(actions), len(market))
    assert not harness.exchange.busy
    for order in harness.book.orders.values():
        assert order.is_terminal  # the session closed: everything ended somehow
        assert order.filled_qty + order.cancelled_qty + order.replaced_qty == order.qty


@given(
    market=ss.market_paths(symbols=SYMBOLS, min_steps=20, max_steps=60),
    latency=ss.latency_profiles(),
    seed=ss.seeds(),
    orders=st.integers(0, 40),
)
def test_engine_view_equals_exchange_truth_for_the_example_strategy(
    market: list[list[Bar]], latency: Latency, seed: int, orders: int
) -> None:
    strategy = ExampleStrategy(orders=orders, seed=seed, steps=len(market))
    _, report = ss.run_strategy(strategy, market, latency, seed)
    ss.assert_engine_matches_exchange(report)
    assert report.placements["sent"] <= orders


@given(
    market=ss.market_paths(symbols=SYMBOLS, max_steps=25, max_volume=30),
    latency=st.sampled_from([Latency(), Latency(reorder=True)]),
    actions=ss.action_sequences(max_size=25),
    seed=ss.seeds(),
)
def test_with_zero_latency_no_race_is_ever_counted(
    market: list[list[Bar]], latency: Latency, actions: list[ss.Action], seed: int
) -> None:
    _, report = ss.run_strategy(ss.ScriptedStrategy(actions), market, latency, seed)
    assert report.races == {}
    assert report.anomalies == {}
    ss.assert_engine_matches_exchange(report)


@HALF
@given(
    market=ss.market_paths(symbols=SYMBOLS, max_steps=25, max_volume=30),
    latency=ss.latency_profiles(),
    actions=ss.action_sequences(max_size=25),
    seed=ss.seeds(),
)
def test_the_same_inputs_give_the_same_event_stream(
    market: list[list[Bar]], latency: Latency, actions: list[ss.Action], seed: int
) -> None:
    runs = []
    for _ in range(2):
        journal: list[ev.Event] = []
        strategy = ss.ScriptedStrategy(actions)
        harness, report = ss.run_strategy(
            strategy, market, latency, seed, book=OrderBook(journal=journal.append)
        )
        assert len(harness.book.events) == 0  # the journal went to our list instead
        runs.append(([e.to_dict() for e in journal], report.to_dict(), strategy.outcomes))
    assert runs[0] == runs[1]
    replayed = OrderBook.replay(ev.from_dict(d) for d in runs[0][0])
    assert replayed.snapshot() == harness.book.snapshot()


def test_the_example_strategy_places_valid_prices_at_the_lowest_tick() -> None:
    harness = Harness(
        SimExchange(seed=0, start=DEFAULT_START), ExampleStrategy(orders=10, seed=2, steps=1)
    )
    report = harness.run([[Bar.tick("000660", 0, 1, 0)]])
    assert report.placements["sent"] == 10


def test_a_cancel_racing_a_fill_is_counted_with_latency_and_not_without() -> None:
    """The zero-latency property is not vacuous: the same script races once the venue is slow."""
    market = [[Bar.tick("005930", 0, 71_000, 0)], [Bar.tick("005930", 200, 71_000, 0)]]
    market += [[Bar.tick("005930", 400 + 200 * i, 70_900, 50 if i == 0 else 0)] for i in range(5)]
    script = [ss.Place(Side.BUY, qty=10, offset=1), ss.Cancel(0, "0")]
    # Zero latency: the cancel (sent at 200 ms) takes everything before the bar at 400 ms.
    harness, report = ss.run_strategy(ss.ScriptedStrategy(script), market)
    assert report.races == {} and report.ok
    assert harness.book.get("0000001").state is OrderState.CANCELLED
    # A slow venue: the cancel reaches it at 450 ms; the bar at 400 ms filled the order first.
    slow = Latency(venue=Delay(250))
    harness, report = ss.run_strategy(ss.ScriptedStrategy(script), market, slow)
    assert report.ok
    assert harness.book.get("0000001").state is OrderState.FILLED
    assert report.races == {Race.CANCEL_ALL_TOO_LATE: 1, Race.FILL_DURING_CANCEL: 1}


def test_scripted_actions_refer_to_the_kth_numbered_order() -> None:
    market = [[Bar.tick("005930", 200 * i, 71_000, 0)] for i in range(6)]
    script = [
        ss.Place(Side.BUY, qty=5, offset=2),
        ss.Place(Side.SELL, qty=3, offset=2),
        ss.Cancel(1, 2),  # the second order: a partial cancel
        ss.Cancel(2, "0"),  # 2 modulo 2: the first order, all of it
        ss.Cancel(0, "x"),
        ss.CancelUnknown(),
    ]
    strategy = ss.ScriptedStrategy(script)
    harness, report = ss.run_strategy(strategy, market)
    assert strategy.outcomes == [
        "placed",
        "placed",
        "cancel sent",
        "cancel sent",
        "refused INVALID_QUANTITY",
        "refused UNKNOWN_ORDER",
    ]
    first, second = harness.book.get("0000001"), harness.book.get("0000002")
    assert (first.side, first.price, second.side, second.price) == (
        Side.BUY,
        70_800,
        Side.SELL,
        71_200,
    )
    confirmed = [
        (e.orig_ord_no, e.qty) for e in harness.book.events if isinstance(e, ev.CancelConfirmed)
    ]
    assert confirmed == [("0000002", 2), ("0000001", 5)]
    assert report.ok


def test_a_modify_follows_the_market_and_its_successor_can_be_cancelled() -> None:
    market = [[Bar.tick("005930", 200 * i, 71_000 + 100 * i, 0)] for i in range(5)]
    script = [ss.Place(qty=4, offset=3), ss.Modify(0, 0, offset=1), ss.Cancel(1, "0")]
    strategy = ss.ScriptedStrategy(script)
    harness, report = ss.run_strategy(strategy, market)
    assert strategy.outcomes == ["placed", "modify sent", "cancel sent"]
    original, successor = harness.book.get("0000001"), harness.book.get("0000002")
    assert original.state is OrderState.REPLACED and original.successor == "0000002"
    assert successor.price == 71_000 and successor.state is OrderState.CANCELLED
    assert report.ok


def test_actions_before_any_number_are_skipped_and_a_short_market_ends_the_script() -> None:
    market = [[Bar.tick("005930", 0, 71_000, 0)]]
    strategy = ss.ScriptedStrategy([ss.Cancel(), ss.Place(), ss.Place()])
    _, report = ss.run_strategy(strategy, market)
    assert strategy.outcomes == ["skipped: no numbered order yet"]
    assert report.placements["sent"] == 0 and report.ok


class _TwoModifies(Strategy):
    """Modifies one order twice at once: one share, then the rest."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        if not self.tickets:
            self.tickets.append(harness.place("005930", Side.BUY, 3, 70_900))
        elif len(self.tickets) == 1:
            ord_no = self.tickets[0].ord_no
            self.tickets.append(harness.modify(ord_no, 1, 70_800))
            self.tickets.append(harness.modify(ord_no, 0, 70_700))


def test_two_modifies_of_one_order_delivered_out_of_order_keep_the_successor() -> None:
    market = [[Bar.tick("005930", 200 * i, 71_000, 0)] for i in range(4)]
    latency = Latency(delivery=Delay(0, 1), reorder=True)
    reversed_seen = 0
    for seed in range(40):
        harness, report = ss.run_strategy(_TwoModifies(), market, latency, seed)
        ss.assert_engine_matches_exchange(report)
        amended = [e.ord_no for e in harness.book.events if isinstance(e, ev.OrderAmended)]
        reversed_seen += amended == ["0000003", "0000002"]
        assert harness.book.get("0000001").successor == "0000003"
    assert reversed_seen  # some seeds really delivered the second modify first


# -- the kit reports what is broken ---------------------------------------------------------------
class _LosesFills(OrderBook):
    """A broken engine: it never hears of a fill."""

    def apply(self, event: ev.Event) -> Order | None:
        return None if isinstance(event, ev.OrderFilled) else super().apply(event)


def test_a_broken_engine_is_caught_and_shrunk_to_one_placement() -> None:
    found: list[Any] = []

    @FAILING
    @given(
        market=ss.market_paths(max_steps=10),
        actions=ss.action_sequences(max_size=10),
        seed=ss.seeds(),
    )
    def engine_matches(market: list[list[Bar]], actions: list[ss.Action], seed: int) -> None:
        found[:] = [actions, market]
        strategy = ss.ScriptedStrategy(actions)
        _, report = ss.run_strategy(strategy, market, None, seed, book=_LosesFills())
        ss.assert_engine_matches_exchange(report)

    with pytest.raises(AssertionError, match=r"filled_qty engine=0 exchange=[1-9]"):
        engine_matches()
    # Hypothesis reran the smallest failure it found last: one placement is all it takes.
    actions, market = found
    assert len(actions) == 1 and isinstance(actions[0], ss.Place)
    assert 1 <= len(market) <= 10


# -- the state machine ----------------------------------------------------------------------------


class OneAtATime(Strategy):
    """A user's strategy: keep one buy resting a tick under the market, chase it when it drifts.

    It tells its own orders apart by the tickets it sent: beside it, the machine's hand places
    orders too, and the strategy sees their answers and events.
    """

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []

    def mine(self) -> list[str]:
        return [t.ord_no for t in self.tickets if t.ord_no]

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        bar = bars[0]
        last = self.tickets[-1] if self.tickets else None
        if last is not None and last.status is TicketStatus.PENDING:
            return  # wait for the broker's answer
        order = harness.book.orders.get(last.ord_no) if last is not None else None
        if last is None or last.status is TicketStatus.REJECTED or (order and order.is_terminal):
            price = ss.ticks_away(bar.close, -1)
            self.tickets.append(harness.place(bar.stk_cd, Side.BUY, 5, price))
        elif order and order.cancellable_qty and order.price < ss.ticks_away(bar.close, -3):
            harness.cancel(order.ord_no, "0")


class OneAtATimeMachine(ss.SimulationMachine):
    symbols = ("005930",)

    def make_strategy(self) -> Strategy:
        self.strategy = OneAtATime()
        return self.strategy

    def check(self, harness: Harness) -> None:
        orders = harness.book.orders
        live = [no for no in self.strategy.mine() if no in orders and not orders[no].is_terminal]
        assert len(live) <= 1, live

    def check_report(self, harness: Harness, report: Report) -> None:
        mine = [harness.book.get(no) for no in self.strategy.mine()]
        assert all(o.qty == 5 and o.side is Side.BUY and o.is_terminal for o in mine)
        assert sum(o.filled_qty for o in mine) <= report.shares["filled"]


TestOneAtATime = OneAtATimeMachine.TestCase
TestOneAtATime.settings = settings.default


class NeverFilled(ss.SimulationMachine):
    """A user invariant that is false: "no order of mine is ever filled"."""

    def check(self, harness: Harness) -> None:
        assert all(o.filled_qty == 0 for o in harness.book.orders.values()), "filled!"


def test_a_failing_user_invariant_is_reported_by_the_machine() -> None:
    with pytest.raises(AssertionError, match="filled!"):
        run_state_machine_as_test(NeverFilled, settings=UNSHRUNK)


class ReportsEveryRun(ss.SimulationMachine):
    """Counts what the rules did, to show the machine exercises the engine."""

    runs: ClassVar[list[dict[str, Any]]] = []

    def check_report(self, harness: Harness, report: Report) -> None:
        ReportsEveryRun.runs.append(report.to_dict())


def test_the_machine_places_cancels_and_settles_and_each_run_ends_ok() -> None:
    ReportsEveryRun.runs.clear()
    run_state_machine_as_test(ReportsEveryRun, settings=HALF)
    runs = ReportsEveryRun.runs
    assert len(runs) >= 10 and all(r["ok"] for r in runs)
    assert sum(r["placements"]["sent"] for r in runs) > 0
    # modifies were asked for: sent, or refused by the engine (their shares were reserved)
    asked = sum(
        r["placements"]["modifies"] + sum(r["placements"]["modifies_refused"].values())
        for r in runs
    )
    assert asked > 0
    assert sum(r["cancels"]["confirmed"] for r in runs) > 0
    assert any(r["states"].get("FILLED") for r in runs)
