"""The simulated exchange: matching, Kiwoom's rejection codes, numbering, latency, determinism."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from adapters.broker import Ticket, TicketStatus
from adapters.sim import Bar, Delay, Latency, SimError, SimExchange
from engine import OrderState, Side
from engine import events as ev
from engine.sessions import KST, KoreaSessions

START = datetime(2026, 11, 25, 9, 0, tzinfo=KST)  # a Wednesday
CODE = "005930"


class Tape:
    """Collects what the exchange delivers."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.answers: list[Ticket] = []

    def of(self, cls: type) -> list[ev.Event]:
        return [e for e in self.events if type(e) is cls]


def make(
    latency: Latency | None = None, *, seed: int = 1, start: datetime = START, **kw: object
) -> tuple[SimExchange, Tape]:
    tape = Tape()
    x = SimExchange(
        seed=seed,
        start=start,
        latency=latency,
        sink=tape.events.append,
        on_answer=tape.answers.append,
        **kw,  # type: ignore[arg-type]
    )
    return x, tape


def bar(at: int, price: int, volume: int, *, code: str = CODE) -> Bar:
    return Bar.tick(code, at, price, volume)


def rest(x: SimExchange, qty: int = 10, price: int = 70_000, side: Side = Side.BUY) -> str:
    """Place a limit order at zero latency and return its number."""
    ticket = x.place(stk_cd=CODE, side=side, qty=qty, price=price)
    x.advance(x.now_ms)
    assert ticket.status is TicketStatus.ACCEPTED, ticket
    return ticket.ord_no


# -- numbering -----------------------------------------------------------------------------------
def test_order_numbers_are_seven_digits_increasing_from_one_each_trading_day() -> None:
    x, _ = make(start=datetime(2026, 11, 25, 23, 59, 58, tzinfo=KST))
    assert (rest(x), rest(x)) == ("0000001", "0000002")
    x.advance(5_000)  # past midnight in Korea time: numbers would restart and collide
    with pytest.raises(SimError, match="one SimExchange"):
        x.place(stk_cd=CODE, side=Side.BUY, qty=1, price=70_000)
    assert (x.requests, len(x.orders)) == (2, 2)
    fresh, _ = make(start=datetime(2026, 11, 25, 23, 59, 58, tzinfo=KST))
    fresh.advance(5_000)  # an exchange with no orders yet simply starts the new day
    assert rest(fresh) == "0000001"


def test_cancels_and_modifies_take_their_own_numbers() -> None:
    x, tape = make()
    x.on_bar(bar(0, 71_000, 0))
    no = rest(x, qty=10, price=70_000)
    cancel = x.cancel(orig_ord_no=no, qty=3)
    modify = x.modify(orig_ord_no=no, qty=0, price=70_100)
    x.advance(0)
    assert (no, cancel.ord_no, modify.ord_no) == ("0000001", "0000002", "0000003")
    amended = tape.of(ev.OrderAmended)
    assert amended == [ev.OrderAmended("0000003", no, 7, 70_100, ts=START)]


# -- matching ------------------------------------------------------------------------------------
def test_a_resting_limit_fills_partially_up_to_the_bar_volume_then_completes() -> None:
    x, tape = make()
    no = rest(x, qty=100, price=70_000)
    x.advance(200)
    x.on_bar(Bar(CODE, 200, 70_200, 70_300, 69_900, 70_100, 30))  # touched 70,000: 30 shares
    x.advance(200)
    truth = x.orders[no]
    assert (truth.filled, truth.leaves, truth.state) == (30, 70, OrderState.PARTIALLY_FILLED)
    x.advance(400)
    x.on_bar(Bar(CODE, 400, 69_800, 69_900, 69_700, 69_800, 500))  # opened below the limit
    x.advance(400)
    fills = tape.of(ev.OrderFilled)
    assert [(f.qty, f.price) for f in fills] == [(30, 70_000), (70, 69_800)]  # type: ignore[attr-defined]
    assert x.orders[no].state is OrderState.FILLED
    assert x.orders[no].notional == 30 * 70_000 + 70 * 69_800


def test_price_time_priority_shares_the_volume() -> None:
    x, tape = make()
    early = rest(x, qty=10, price=70_000)
    better = rest(x, qty=10, price=70_100)
    late = rest(x, qty=10, price=70_000)
    x.advance(200)
    x.on_bar(bar(200, 70_000, 15))
    x.advance(200)
    filled = {f.ord_no: f.qty for f in tape.of(ev.OrderFilled)}  # type: ignore[attr-defined]
    assert filled == {better: 10, early: 5}
    assert x.orders[late].filled == 0


def test_a_market_order_takes_the_last_price_and_rests_its_remainder() -> None:
    x, tape = make()
    x.on_bar(bar(0, 71_000, 40))
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=100, price=0, trde_tp="3")
    x.advance(0)
    no = ticket.ord_no
    assert x.orders[no].filled == 40
    x.advance(200)
    x.on_bar(Bar(CODE, 200, 71_100, 71_200, 71_000, 71_200, 100))
    x.advance(200)
    fills = [(f.qty, f.price) for f in tape.of(ev.OrderFilled)]  # type: ignore[attr-defined]
    assert fills == [(40, 71_000), (60, 71_100)]  # then at the next bar's open


def test_ioc_remainder_is_cancelled_by_the_venue() -> None:
    x, tape = make()
    x.on_bar(bar(0, 71_000, 30))
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=100, price=71_000, trde_tp="10")
    x.advance(0)
    truth = x.orders[ticket.ord_no]
    assert (truth.filled, truth.cancelled, truth.state) == (30, 70, OrderState.CANCELLED)
    assert tape.of(ev.OrderExpired) == [ev.OrderExpired(ticket.ord_no, ts=START)]


def test_fok_fills_all_or_nothing() -> None:
    x, _ = make()
    x.on_bar(bar(0, 71_000, 50))
    short = x.place(stk_cd=CODE, side=Side.SELL, qty=60, price=71_000, trde_tp="20")
    fits = x.place(stk_cd=CODE, side=Side.SELL, qty=50, price=71_000, trde_tp="20")
    x.advance(0)
    assert x.orders[short.ord_no].state is OrderState.CANCELLED
    assert x.orders[short.ord_no].filled == 0
    assert x.orders[fits.ord_no].state is OrderState.FILLED


def test_a_limit_outside_the_daily_band_is_rejected_by_the_venue() -> None:
    x, tape = make()
    x.on_bar(bar(0, 70_000, 10))
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=10, price=100_000)
    x.advance(0)
    assert x.orders[ticket.ord_no].state is OrderState.REJECTED
    assert [type(e) for e in tape.events] == [ev.OrderAccepted, ev.OrderRejected]


# -- cancels and Kiwoom's codes -------------------------------------------------------------------
def test_partial_and_full_cancels_take_only_what_is_open() -> None:
    x, tape = make()
    no = rest(x, qty=10)
    x.cancel(orig_ord_no=no, qty=4, request_id="R1")
    x.advance(0)
    x.cancel(orig_ord_no=no, qty=0, request_id="R2")
    x.advance(0)
    confirmed = tape.of(ev.CancelConfirmed)
    assert [(c.qty, c.request_id) for c in confirmed] == [(4, "R1"), (6, "R2")]  # type: ignore[attr-defined]
    truth = x.orders[no]
    assert (truth.cancelled, truth.leaves, truth.state) == (10, 0, OrderState.CANCELLED)


@pytest.mark.parametrize(
    ("setup", "qty", "code"),
    [
        ("filled", 0, "RC4033"),  # nothing left to cancel
        ("unknown", 0, "RC4032"),  # no such order
        ("open", 11, "RC4042"),  # more than is open
        ("modified", 0, "RC4033"),  # the old number of a modified order
    ],
)
def test_order_server_rejections_use_kiwoom_codes(setup: str, qty: int, code: str) -> None:
    x, tape = make()
    x.on_bar(bar(0, 70_000, 0))
    no = rest(x, qty=10, price=70_000)
    if setup == "filled":
        x.advance(200)
        x.on_bar(bar(200, 70_000, 10))
    elif setup == "unknown":
        no = "0000999"
    elif setup == "modified":
        x.modify(orig_ord_no=no, qty=0, price=69_900)
    x.advance(x.now_ms)
    ticket = x.cancel(orig_ord_no=no, qty=qty, request_id="R9")
    x.advance(x.now_ms)
    assert (ticket.status, ticket.code) == (TicketStatus.REJECTED, code)
    assert ticket.message
    rejections = tape.of(ev.CancelRejected)
    if setup == "unknown":
        assert rejections == []  # the engine has no order to tell
    else:
        assert [(r.code, r.request_id) for r in rejections] == [(code, "R9")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (datetime(2026, 11, 25, 7, 0, tzinfo=KST), "RC4057"),  # not yet open
        (datetime(2026, 11, 25, 19, 0, tzinfo=KST), "RC4058"),  # closed
        (datetime(2026, 11, 28, 10, 0, tzinfo=KST), "RC4010"),  # a Saturday
    ],
)
def test_sessions_when_enforced(at: datetime, code: str) -> None:
    x, _ = make(start=at, sessions=KoreaSessions())
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=1, price=70_000)
    x.advance(0)
    assert (ticket.status, ticket.code, ticket.ord_no) == (TicketStatus.REJECTED, code, "")
    assert not x.orders


def test_after_close_everything_open_expires_and_requests_get_rc4058() -> None:
    x, tape = make()
    no = rest(x, qty=10)
    x.close()
    x.advance(0)
    assert x.orders[no].state is OrderState.CANCELLED
    assert tape.of(ev.OrderExpired) == [ev.OrderExpired(no, ts=START)]
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=1, price=70_000)
    x.advance(0)
    assert ticket.code == "RC4058"


# -- latency: fills beat cancels ---------------------------------------------------------------
def _race(qty: int, volume: int) -> tuple[SimExchange, Tape, str]:
    """A cancel accepted at 10 ms reaches the venue at 310 ms; a bar at 200 ms fills first."""
    x, tape = make(Latency(Delay(10), Delay(300), Delay(0)))
    ticket = x.place(stk_cd=CODE, side=Side.BUY, qty=10, price=70_000)
    x.advance(0)
    x.advance(400)  # the order reached the venue at 310 ms
    no = ticket.ord_no
    x.cancel(orig_ord_no=no, qty=qty, request_id="R1")
    x.advance(600)
    x.on_bar(bar(600, 70_000, volume))  # the cancel is still on its way to the venue
    x.advance(2_000)
    return x, tape, no


def test_scenario_9_partial_cancel_shrinks_when_fills_win() -> None:
    x, tape, no = _race(qty=5, volume=8)
    assert tape.of(ev.CancelAccepted)[0].qty == 5  # type: ignore[attr-defined]
    assert tape.of(ev.CancelConfirmed)[0].qty == 2  # type: ignore[attr-defined]
    truth = x.orders[no]
    assert (truth.filled, truth.cancelled, truth.leaves) == (8, 2, 0)


def test_scenario_10_cancel_all_finds_nothing_left() -> None:
    x, tape, no = _race(qty=0, volume=10)
    assert [r.code for r in tape.of(ev.CancelRejected)] == ["RC4033"]  # type: ignore[attr-defined]
    assert x.orders[no].state is OrderState.FILLED


def test_scenario_11_cancel_all_takes_what_fills_left() -> None:
    x, tape, no = _race(qty=0, volume=4)
    assert tape.of(ev.CancelConfirmed)[0].qty == 6  # type: ignore[attr-defined]
    assert x.orders[no].state is OrderState.CANCELLED


def test_with_zero_latency_the_cancel_wins() -> None:
    x, tape = make()
    no = rest(x, qty=10)
    x.cancel(orig_ord_no=no, qty=0)
    x.advance(0)
    x.advance(200)
    x.on_bar(bar(200, 70_000, 10))
    x.advance(200)
    assert tape.of(ev.OrderFilled) == []
    assert x.orders[no].cancelled == 10


def test_deliveries_keep_their_order_unless_reordering_is_asked() -> None:
    def stream(reorder: bool) -> list[tuple[str, int]]:
        x, tape = make(Latency(Delay(0), Delay(0), Delay(0, 300), reorder), seed=3)
        x.on_bar(bar(0, 70_000, 5))
        for _ in range(30):
            x.place(stk_cd=CODE, side=Side.BUY, qty=10, price=70_000)
        x.drain()
        return [(type(e).__name__, int(e.ord_no)) for e in tape.events]  # type: ignore[union-attr]

    facts = stream(False)
    numbers = [n for kind, n in facts if kind == "OrderAccepted"]
    assert numbers == sorted(numbers)
    shuffled = stream(True)
    assert sorted(shuffled) == sorted(facts)
    assert shuffled != facts


def test_same_seed_same_events_byte_for_byte() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        x, tape = make(Latency.uniform("0-200", reorder=True), seed=seed)
        for step in range(50):
            x.advance(step * 100)
            x.on_bar(bar(step * 100, 70_000 + (step % 3) * 100, 7))
            ticket = x.place(stk_cd=CODE, side=Side.SELL, qty=5, price=70_100)
            if step % 4 == 0 and ticket.ord_no:
                x.cancel(orig_ord_no=ticket.ord_no, qty=0)
        x.drain()
        return [e.to_dict() for e in tape.events]

    assert run(5) == run(5)
    assert run(5) != run(6)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"qty": 0},
        {"qty": 2.5},
        {"price": -1},
        {"price": 0},  # 0 is for market orders only
        {"trde_tp": "99"},
        {"stk_cd": "KRX:005930"},
        {"side": "BUY"},
        {"exchange": "NYSE"},
    ],
)
def test_malformed_orders_are_refused_and_change_nothing(kwargs: dict[str, object]) -> None:
    x, tape = make()
    args: dict[str, object] = {
        "stk_cd": CODE,
        "side": Side.BUY,
        "qty": 1,
        "price": 70_000,
        "trde_tp": "0",
    }
    args.update(kwargs)
    with pytest.raises(SimError):
        x.place(**args)  # type: ignore[arg-type]
    x.drain()
    assert (x.requests, dict(x.orders), tape.events) == (0, {}, [])


@pytest.mark.parametrize("target", [("140", 0), ("0000140", -1), (140, 0), ("0000140", "0")])
def test_malformed_cancels_are_refused(target: tuple[object, object]) -> None:
    x, _ = make()
    with pytest.raises(SimError):
        x.cancel(orig_ord_no=target[0], qty=target[1])  # type: ignore[arg-type]
    assert x.requests == 0


def test_the_clock_never_goes_back_and_bars_must_be_on_time() -> None:
    x, _ = make()
    x.advance(500)
    with pytest.raises(SimError):
        x.advance(400)
    with pytest.raises(SimError):
        x.on_bar(bar(300, 70_000, 1))
    with pytest.raises(SimError):
        SimExchange(seed=1, start=datetime(2026, 11, 25, 9, 0))  # naive


@pytest.mark.parametrize(
    "bad",
    [
        Bar(CODE, 0, 100, 90, 95, 100, 1),  # high below open
        Bar(CODE, 0, 100, 100, 100, 100, -1),  # negative volume
        Bar(CODE, 0, 0, 0, 0, 0, 1),  # no price
        Bar(CODE, 0, 100, 100.5, 100, 100, 1),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_bar_is_refused_and_changes_nothing(bad: Bar) -> None:
    x, tape = make()
    no = rest(x, qty=10, price=100)
    assert bad.problem()
    with pytest.raises(SimError):
        x.on_bar(bad)
    assert (x.orders[no].filled, x.last_price(CODE), tape.of(ev.OrderFilled)) == (0, None, [])


def test_delays_validate_themselves() -> None:
    assert Bar.tick(CODE, 0, 100, 1).problem() == ""
    with pytest.raises(ValueError):
        Delay(5, 3)
    with pytest.raises(ValueError):
        Delay.parse("fast")
    assert Delay.parse("10-300") == Delay(10, 300)
    assert Delay.parse("25") == Delay(25, 25)
    assert str(Delay(0)) == "0 ms"


def test_event_times_are_exchange_times() -> None:
    x, tape = make(Latency(Delay(30), Delay(20), Delay(100)))
    x.place(stk_cd=CODE, side=Side.BUY, qty=1, price=70_000)
    x.drain()
    accepted, confirmed = tape.events
    assert accepted.ts == START + timedelta(milliseconds=30)  # processed by the order server
    assert confirmed.ts == START + timedelta(milliseconds=50)  # reached the venue
    assert x.now == START + timedelta(milliseconds=150)  # delivered 100 ms later


def test_resting_market_orders_come_before_every_limit() -> None:
    x, tape = make()
    x.on_bar(bar(0, 70_000, 0))  # no volume left: both orders rest
    limit = rest(x, qty=10, price=70_500)
    market = x.place(stk_cd=CODE, side=Side.BUY, qty=10, price=0, trde_tp="3")
    x.advance(0)
    x.advance(200)
    x.on_bar(bar(200, 70_000, 10))
    x.advance(200)
    filled = {f.ord_no: f.qty for f in tape.of(ev.OrderFilled)}  # type: ignore[attr-defined]
    assert filled == {market.ord_no: 10}
    assert x.orders[limit].leaves == 10
