"""The cancel decision: quantity parsing, totality, refusal precedence, clamping, CancelRefused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from engine import (
    CancelDecision,
    CancelRefused,
    EngineError,
    InvalidEvent,
    InvalidTime,
    OrderBook,
    OrderState,
    Refusal,
    Side,
    parse_cancel_qty,
)
from engine import events as ev
from engine.decision import MAX_QTY_DIGITS

NO = "0000001"
AT = datetime(2024, 6, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))


class _Fixed:
    """A session calendar that always gives the same answer."""

    def __init__(self, open_: bool) -> None:
        self.open = open_
        self.asked: list[tuple[str, datetime]] = []

    def accepts_cancel(self, exchange: str, at: datetime) -> bool:
        self.asked.append((exchange, at))
        return self.open


def _book(calendar: _Fixed | None = None) -> OrderBook:
    book = OrderBook(calendar=calendar)
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, 10, 70_000))
    book.apply(ev.OrderConfirmed(NO))
    return book


# -- parse_cancel_qty --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0),
        (1, 1),
        (5, 5),
        (10**12 - 1, 10**12 - 1),
        ("0", 0),
        ("5", 5),
        ("000000000005", 5),  # 12 characters: kt10003's padded form
        ("000000000000", 0),
        ("999999999999", 10**12 - 1),
    ],
)
def test_parse_cancel_qty_accepts_whole_numbers_of_up_to_12_digits(
    raw: object, expected: int
) -> None:
    assert MAX_QTY_DIGITS == 12
    parsed = parse_cancel_qty(raw)
    assert parsed == expected
    assert type(parsed) is int


@pytest.mark.parametrize(
    "raw",
    [
        10**12,  # 13 digits
        "0000000000005",  # 13 characters
        "1000000000000",  # 13 digits
        -1,
        "-1",
        -(10**12),
        2.5,
        5.0,
        0.0,
        True,
        False,
        "",
        " 5",
        "5 ",
        "+5",
        "x",
        "5x",
        "2.5",
        "5.0",
        "1e3",
        "0x5",
        "1_000",
        "５",  # fullwidth digit: not ASCII
        "٥",  # Arabic-Indic digit: not ASCII
        None,
        b"5",
        [5],
    ],
)
def test_parse_cancel_qty_refuses_everything_else(raw: object) -> None:
    assert parse_cancel_qty(raw) is None


# -- totality ----------------------------------------------------------------------------------


def _received() -> OrderBook:
    book = OrderBook()
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, 10, 70_000))
    return book


def _confirmed() -> OrderBook:
    return _book()


def _partial() -> OrderBook:
    book = _book()
    book.apply(ev.OrderFilled(NO, "F1", 4, 70_000))
    return book


def _partial_pending() -> OrderBook:
    book = _partial()
    book.request_cancel(NO, 2)
    return book


def _all_pending() -> OrderBook:
    book = _partial()
    book.request_cancel(NO, 0)
    return book


def _nothing_cancellable() -> OrderBook:
    book = _partial()
    book.request_cancel(NO, 6)
    return book


def _overtaken() -> OrderBook:
    """P above L: a reservation made before fills took the shares."""
    book = _book()
    book.request_cancel(NO, 5)
    book.apply(ev.OrderFilled(NO, "F1", 8, 70_000))
    return book


def _filled() -> OrderBook:
    book = _book()
    book.apply(ev.OrderFilled(NO, "F1", 10, 70_000))
    return book


def _filled_with_cancel_all_pending() -> OrderBook:
    book = _book()
    book.request_cancel(NO, 0)
    book.apply(ev.OrderFilled(NO, "F1", 10, 70_000))
    return book


def _cancelled() -> OrderBook:
    book = _partial()
    book.apply(ev.OrderExpired(NO))
    return book


def _replaced() -> OrderBook:
    book = _book()
    book.apply(ev.OrderAmended("0000002", NO, 0, 71_000))
    return book


def _rejected() -> OrderBook:
    book = _received()
    book.apply(ev.OrderRejected(NO, code="RC4007"))
    return book


BUILDERS: dict[str, Callable[[], OrderBook]] = {
    "received": _received,
    "confirmed": _confirmed,
    "partial": _partial,
    "partial_pending": _partial_pending,
    "all_pending": _all_pending,
    "nothing_cancellable": _nothing_cancellable,
    "overtaken": _overtaken,
    "filled": _filled,
    "filled_with_cancel_all_pending": _filled_with_cancel_all_pending,
    "cancelled": _cancelled,
    "replaced": _replaced,
    "rejected": _rejected,
}

QUANTITIES: list[object] = [
    0,
    "0",
    1,
    "1",
    3,
    "000000000004",
    5,
    6,
    7,
    10,
    11,
    10**12 - 1,
    10**12,
    -1,
    2.5,
    5.0,
    True,
    "",
    " 5",
    "+5",
    "x",
    None,
]


def test_the_builders_cover_every_state() -> None:
    states = {builder().get(NO).state for builder in BUILDERS.values()}
    assert states == set(OrderState)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_decide_cancel_is_total_and_changes_nothing(name: str) -> None:
    book = BUILDERS[name]()
    order = book.get(NO)
    for ord_no in (NO, "0000999"):
        for qty in QUANTITIES:
            before = book.snapshot()
            n_events = len(book.events)
            decision = book.decide_cancel(ord_no, qty)  # type: ignore[arg-type]
            assert book.snapshot() == before
            assert len(book.events) == n_events
            assert isinstance(decision, CancelDecision)
            assert decision.ord_no == ord_no
            assert decision.requested is qty
            if decision.allowed:
                assert decision.reason is None
                assert decision.successor is None
                assert 0 < decision.qty <= order.cancellable_qty
                n = parse_cancel_qty(qty)
                assert n is not None
                if n == 0:
                    assert decision.cancel_all
                    assert decision.qty == order.cancellable_qty
                else:
                    assert not decision.cancel_all
                    assert decision.qty == n
            else:
                assert isinstance(decision.reason, Refusal)
                assert decision.qty == 0
                assert decision.describe().startswith(f"refused: {decision.reason.name}")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_request_cancel_reserves_exactly_what_the_decision_allows(name: str) -> None:
    for qty in QUANTITIES:
        book = BUILDERS[name]()
        decision = book.decide_cancel(NO, qty)  # type: ignore[arg-type]
        before = book.snapshot()
        n_events = len(book.events)
        order = book.get(NO)
        if decision.allowed:
            p, all_pending = order.pending_cancel_qty, order.cancel_all_pending
            request = book.request_cancel(NO, qty)  # type: ignore[arg-type]
            assert request.cancel_all == decision.cancel_all
            assert request.qty == (0 if decision.cancel_all else decision.qty)
            assert len(book.events) == n_events + 1
            assert isinstance(book.events[-1], ev.CancelRequested)
            if decision.cancel_all:
                assert order.cancel_all_pending and order.pending_cancel_qty == p
            else:
                assert order.pending_cancel_qty == p + decision.qty
                assert order.cancel_all_pending == all_pending
            assert order.pending_requests[-1] == request.request_id
        else:
            with pytest.raises(CancelRefused) as info:
                book.request_cancel(NO, qty)  # type: ignore[arg-type]
            assert info.value.decision.reason is decision.reason
            assert book.snapshot() == before
            assert len(book.events) == n_events


def test_expected_reasons_per_state() -> None:
    cases = {
        "received": None,
        "confirmed": None,
        "partial": None,
        "partial_pending": None,
        "all_pending": Refusal.CANCEL_ALL_PENDING,
        "nothing_cancellable": Refusal.NOTHING_CANCELLABLE,
        "overtaken": Refusal.NOTHING_CANCELLABLE,
        "filled": Refusal.FULLY_FILLED,
        "filled_with_cancel_all_pending": Refusal.FULLY_FILLED,
        "cancelled": Refusal.ALREADY_CANCELLED,
        "replaced": Refusal.REPLACED,
        "rejected": Refusal.REJECTED,
    }
    assert set(cases) == set(BUILDERS)
    for name, reason in cases.items():
        decision = BUILDERS[name]().decide_cancel(NO, "0")
        assert decision.reason is reason, name
        assert decision.allowed is (reason is None), name


# -- precedence --------------------------------------------------------------------------------


def test_invalid_quantity_comes_before_unknown_order() -> None:
    book = OrderBook()
    assert book.decide_cancel("0000999", -1).reason is Refusal.INVALID_QUANTITY
    assert book.decide_cancel("0000999", 1).reason is Refusal.UNKNOWN_ORDER


def test_invalid_quantity_comes_before_terminal_states() -> None:
    for builder in (_filled, _cancelled, _replaced, _rejected):
        assert builder().decide_cancel(NO, "x").reason is Refusal.INVALID_QUANTITY


def test_unknown_order_comes_before_everything_but_invalid_quantity() -> None:
    book = OrderBook(calendar=_Fixed(False))  # closed, but the order is not known
    decision = book.decide_cancel("0000999", 10**6, at=AT)
    assert decision.reason is Refusal.UNKNOWN_ORDER
    assert book.decide_cancel(12345, 1, at=AT).reason is Refusal.UNKNOWN_ORDER  # type: ignore[arg-type]


def test_terminal_states_come_before_cancel_all_pending_and_market_closed() -> None:
    book = _filled_with_cancel_all_pending()
    assert book.get(NO).cancel_all_pending
    assert book.decide_cancel(NO, 1).reason is Refusal.FULLY_FILLED
    closed = _Fixed(False)
    for builder, reason in (
        (_filled, Refusal.FULLY_FILLED),
        (_cancelled, Refusal.ALREADY_CANCELLED),
        (_replaced, Refusal.REPLACED),
        (_rejected, Refusal.REJECTED),
    ):
        book = builder()
        book.calendar = closed
        assert book.decide_cancel(NO, 1, at=AT).reason is reason


def test_cancel_all_pending_comes_before_market_closed() -> None:
    book = _all_pending()
    book.calendar = _Fixed(False)
    assert book.decide_cancel(NO, 1, at=AT).reason is Refusal.CANCEL_ALL_PENDING


def test_market_closed_comes_before_nothing_cancellable_and_exceeds() -> None:
    book = _nothing_cancellable()
    book.calendar = _Fixed(False)
    assert book.decide_cancel(NO, 1, at=AT).reason is Refusal.MARKET_CLOSED
    book.calendar = _Fixed(True)
    assert book.decide_cancel(NO, 1, at=AT).reason is Refusal.NOTHING_CANCELLABLE
    book = _partial()
    book.calendar = _Fixed(False)
    assert book.decide_cancel(NO, 8, at=AT).reason is Refusal.MARKET_CLOSED
    book.calendar = _Fixed(True)
    assert book.decide_cancel(NO, 8, at=AT).reason is Refusal.EXCEEDS_CANCELLABLE


def test_a_book_with_a_calendar_refuses_to_decide_without_a_time() -> None:
    calendar = _Fixed(False)
    book = _book(calendar)
    before = book.snapshot()
    for call in (
        lambda: book.decide_cancel(NO, 1),
        lambda: book.request_cancel(NO, 1),
        lambda: book.decide_modify(NO, 1),
        lambda: book.request_modify(NO, 1, 69_000),
    ):
        with pytest.raises(InvalidTime, match="pass at="):
            call()
    assert calendar.asked == [] and book.snapshot() == before  # nothing checked, nothing kept
    # a recorded request is replayed without a time: it was decided when it was made
    book.calendar = _Fixed(True)
    request = book.request_cancel(NO, 1, at=AT)
    replayed = OrderBook.replay(book.events, calendar=calendar)  # closed now: still replayed
    assert replayed.get(NO).pending_cancel_qty == 1 and request.qty == 1


def test_market_closed_needs_both_a_calendar_and_a_time() -> None:
    calendar = _Fixed(False)
    book = _book(calendar)
    assert book.decide_cancel(NO, 1, at=AT).reason is Refusal.MARKET_CLOSED
    assert calendar.asked == [("KRX", AT)]
    assert _book().decide_cancel(NO, 1, at=AT).allowed  # no calendar
    assert _book(_Fixed(True)).decide_cancel(NO, 1, at=AT).allowed


def test_nothing_cancellable_comes_before_exceeds_cancellable() -> None:
    book = _nothing_cancellable()
    assert book.decide_cancel(NO, 100).reason is Refusal.NOTHING_CANCELLABLE
    assert book.decide_cancel(NO, "0").reason is Refusal.NOTHING_CANCELLABLE
    book = _partial_pending()  # L 6, P 2: cancellable 4
    assert book.decide_cancel(NO, 5).reason is Refusal.EXCEEDS_CANCELLABLE
    assert book.decide_cancel(NO, 4).allowed


# -- clamping ----------------------------------------------------------------------------------


def test_clamp_reduces_a_quantity_above_cancellable() -> None:
    book = _partial()  # L 6
    decision = book.decide_cancel(NO, 8, clamp=True)
    assert (decision.allowed, decision.qty, decision.cancel_all, decision.reason) == (
        True,
        6,
        False,
        None,
    )
    assert book.decide_cancel(NO, "000000000009", clamp=True).qty == 6
    assert book.decide_cancel(NO, 5, clamp=True).qty == 5  # within: unchanged
    everything = book.decide_cancel(NO, 0, clamp=True)
    assert everything.cancel_all and everything.qty == 6


def test_clamp_does_not_override_other_refusals() -> None:
    assert _partial().decide_cancel(NO, -1, clamp=True).reason is Refusal.INVALID_QUANTITY
    assert _partial().decide_cancel(NO, 2.5, clamp=True).reason is Refusal.INVALID_QUANTITY  # type: ignore[arg-type]
    assert _nothing_cancellable().decide_cancel(NO, 8, clamp=True).reason is (
        Refusal.NOTHING_CANCELLABLE
    )
    assert _all_pending().decide_cancel(NO, 8, clamp=True).reason is Refusal.CANCEL_ALL_PENDING
    assert _filled().decide_cancel(NO, 8, clamp=True).reason is Refusal.FULLY_FILLED


def test_request_cancel_with_clamp_reserves_the_clamped_quantity() -> None:
    book = _partial_pending()  # L 6, P 2: cancellable 4
    request = book.request_cancel(NO, 9, clamp=True)
    assert (request.qty, request.cancel_all, request.cncl_qty) == (4, False, "4")
    order = book.get(NO)
    assert order.pending_cancel_qty == 6
    assert not order.cancel_all_pending
    assert order.cancellable_qty == 0
    assert book.events[-1] == ev.CancelRequested(NO, request.request_id, 4)


# -- CancelRefused -----------------------------------------------------------------------------


def test_cancel_refused_carries_the_decision() -> None:
    book = _partial()
    with pytest.raises(CancelRefused) as info:
        book.request_cancel(NO, 8)
    err = info.value
    assert isinstance(err, InvalidEvent)
    assert isinstance(err, EngineError)
    assert isinstance(err, ValueError)
    assert err.decision == book.decide_cancel(NO, 8)
    assert err.decision.reason is Refusal.EXCEEDS_CANCELLABLE
    assert err.ord_no == NO
    assert "EXCEEDS_CANCELLABLE" in str(err)


@pytest.mark.parametrize(
    ("builder", "qty", "reason"),
    [
        (_partial, "x", Refusal.INVALID_QUANTITY),
        (_filled, 1, Refusal.FULLY_FILLED),
        (_cancelled, 0, Refusal.ALREADY_CANCELLED),
        (_rejected, "0", Refusal.REJECTED),
        (_all_pending, 1, Refusal.CANCEL_ALL_PENDING),
        (_nothing_cancellable, 1, Refusal.NOTHING_CANCELLABLE),
    ],
)
def test_cancel_refused_carries_the_reason_and_reserves_nothing(
    builder: Callable[[], OrderBook], qty: int | str, reason: Refusal
) -> None:
    book = builder()
    before = book.snapshot()
    n_events = len(book.events)
    with pytest.raises(CancelRefused) as info:
        book.request_cancel(NO, qty)
    assert info.value.decision.reason is reason
    assert not info.value.decision.allowed
    assert info.value.decision.ord_no == NO
    assert reason.name in str(info.value)
    assert book.snapshot() == before
    assert len(book.events) == n_events


def test_cancel_refused_for_an_unknown_order() -> None:
    book = _book()
    before = book.snapshot()
    with pytest.raises(CancelRefused) as info:
        book.request_cancel("0000999", 1)
    assert info.value.decision.reason is Refusal.UNKNOWN_ORDER
    assert info.value.ord_no == "0000999"
    assert book.snapshot() == before


def test_cancel_refused_for_a_replaced_order_names_the_successor() -> None:
    book = _replaced()
    with pytest.raises(CancelRefused) as info:
        book.request_cancel(NO, 0)
    assert info.value.decision.reason is Refusal.REPLACED
    assert info.value.decision.successor == "0000002"
    assert "cancel 0000002 instead" in str(info.value)


def test_a_modify_chain_names_the_last_successor() -> None:
    book = _replaced()
    book.apply(ev.OrderAmended("0000003", "0000002", 0, 72_000))
    assert book.decide_cancel(NO, 0).successor == "0000003"
    assert book.decide_cancel("0000002", 0).successor == "0000003"
    assert book.decide_cancel("0000003", 0).allowed


def test_describe_of_decisions() -> None:
    book = _partial()
    assert book.decide_cancel(NO, 1).describe() == "allowed, 1 share"
    assert book.decide_cancel(NO, 3).describe() == "allowed, 3 shares"
    assert book.decide_cancel(NO, 0).describe() == "allowed, 6 shares (cancel all that is open)"
    refused = book.decide_cancel(NO, 7).describe()
    assert refused.startswith("refused: EXCEEDS_CANCELLABLE (")
