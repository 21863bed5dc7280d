"""The 26 numbered scenarios of ``docs/policies.md``, one test each.

Q = 10 and the order starts CONFIRMED unless a scenario says otherwise. Everything is driven
through the public API; every refusal is checked to leave the book exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from engine import (
    AnomalyKind,
    CancelRefused,
    InvalidEvent,
    Order,
    OrderBook,
    OrderState,
    Refusal,
    Side,
    UnknownOrder,
)
from engine import events as ev

Q = 10
NO = "0000001"
PRICE = 70_000
KST = timezone(timedelta(hours=9))


def _accept(ord_no: str = NO, qty: int = Q, **kwargs: Any) -> ev.OrderAccepted:
    return ev.OrderAccepted(ord_no, "005930", Side.BUY, qty, PRICE, **kwargs)


def _book(*nos: str, qty: int = Q) -> OrderBook:
    """Return a book with one CONFIRMED order of ``qty`` shares per number (default: NO)."""
    book = OrderBook()
    for no in nos or (NO,):
        book.apply(_accept(no, qty))
        book.apply(ev.OrderConfirmed(no))
        assert book.get(no).state is OrderState.CONFIRMED
    return book


def _fill(fill_id: str, qty: int, ord_no: str = NO, price: int = PRICE) -> ev.OrderFilled:
    return ev.OrderFilled(ord_no, fill_id, qty, price)


def _conserved(order: Order) -> None:
    """F + C + M + L == Q, every quantity >= 0, and P within [0, L] when nothing is odd."""
    f, c, m, leaves = order.filled_qty, order.cancelled_qty, order.replaced_qty, order.leaves_qty
    assert f + c + m + leaves == order.qty
    assert min(f, c, m, leaves, order.pending_cancel_qty) >= 0


def _qty(order: Order) -> tuple[int, int, int, int, int, bool]:
    """Return (F, C, M, L, P, cancel_all_pending) after checking conservation."""
    _conserved(order)
    return (
        order.filled_qty,
        order.cancelled_qty,
        order.replaced_qty,
        order.leaves_qty,
        order.pending_cancel_qty,
        order.cancel_all_pending,
    )


def _unchanged(book: OrderBook, action: Callable[[], object], exc: type[Exception]) -> Any:
    """Run ``action``, expect ``exc``; assert the book (and its journal) did not change."""
    before = book.snapshot()
    n_events = len(book.events)
    n_anomalies = len(book.anomalies)
    with pytest.raises(exc) as info:
        action()
    assert book.snapshot() == before
    assert len(book.events) == n_events
    assert len(book.anomalies) == n_anomalies
    return info.value


def _refused_cancel(book: OrderBook, ord_no: str, qty: int | str, reason: Refusal) -> None:
    """The decision refuses with ``reason`` and request_cancel raises without reserving."""
    decision = book.decide_cancel(ord_no, qty)
    assert not decision.allowed
    assert decision.qty == 0
    assert decision.reason is reason
    err = _unchanged(book, lambda: book.request_cancel(ord_no, qty), CancelRefused)
    assert err.decision.reason is reason
    assert not err.decision.allowed


def test_fills_take_a_confirmed_order_to_filled_and_a_further_cancel_is_fully_filled() -> None:
    """Scenario 1: 접수 → 확인 → fill 3 (PARTIALLY_FILLED, L 7) → fill 7 (FILLED).

    A further cancel: FULLY_FILLED.
    """
    book = OrderBook()
    order = book.apply(_accept())
    assert order is not None
    assert order.state is OrderState.RECEIVED
    assert _qty(order) == (0, 0, 0, 10, 0, False)
    book.apply(ev.OrderConfirmed(NO))
    assert order.state is OrderState.CONFIRMED
    book.apply(_fill("F1", 3))
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (3, 0, 0, 7, 0, False)
    book.apply(_fill("F2", 7))
    assert order.state is OrderState.FILLED
    assert _qty(order) == (10, 0, 0, 0, 0, False)
    for qty in (0, "0", 1, 7):
        _refused_cancel(book, NO, qty, Refusal.FULLY_FILLED)


def test_cancel_all_without_fills_cancels_everything_at_confirmation() -> None:
    """Scenario 2: Cancel-all with no fills → confirmed → C 10, CANCELLED."""
    book = _book()
    decision = book.decide_cancel(NO, "0")
    assert (decision.allowed, decision.qty, decision.cancel_all, decision.reason) == (
        True,
        10,
        True,
        None,
    )
    request = book.request_cancel(NO, "0")
    assert request.cancel_all and request.qty == 0 and request.cncl_qty == "0"
    order = book.get(NO)
    assert _qty(order) == (0, 0, 0, 10, 0, True)
    assert order.state is OrderState.CONFIRMED  # a pending cancel is an overlay, not a state
    book.apply(ev.CancelConfirmed("0000101", NO, 0, request_id=request.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (0, 10, 0, 0, 0, False)
    assert book.anomalies == ()


def test_cancel_all_after_a_partial_fill_cancels_the_unfilled_rest() -> None:
    """Scenario 3: Fill 4, cancel-all allowed for 6 → confirmed → C 6, F 4, CANCELLED."""
    book = _book()
    book.apply(_fill("F1", 4))
    decision = book.decide_cancel(NO, 0)
    assert (decision.allowed, decision.qty, decision.cancel_all, decision.reason) == (
        True,
        6,
        True,
        None,
    )
    request = book.request_cancel(NO, 0)
    order = book.get(NO)
    assert _qty(order) == (4, 0, 0, 6, 0, True)
    book.apply(ev.CancelConfirmed("0000101", NO, 0, request_id=request.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (4, 6, 0, 0, 0, False)
    assert book.anomalies == ()


def test_partial_cancel_after_a_fill_leaves_the_order_partially_filled_and_fillable() -> None:
    """Scenario 4: Fill 4, cancel 3 → confirmed → C 3, L 3; still PARTIALLY_FILLED and fillable."""
    book = _book()
    book.apply(_fill("F1", 4))
    request = book.request_cancel(NO, 3)
    assert (request.qty, request.cancel_all, request.cncl_qty) == (3, False, "3")
    order = book.get(NO)
    assert _qty(order) == (4, 0, 0, 6, 3, False)
    assert order.cancellable_qty == 3
    book.apply(ev.CancelConfirmed("0000101", NO, 3, request_id=request.request_id))
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (4, 3, 0, 3, 0, False)
    assert book.decide_cancel(NO, 3).allowed
    book.apply(_fill("F2", 2))  # still fillable
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (6, 3, 0, 1, 0, False)
    book.apply(_fill("F3", 1))  # the last open share: L 0 with C > 0 is CANCELLED
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (7, 3, 0, 0, 0, False)
    assert book.anomalies == ()


def test_cancel_above_cancellable_is_refused_and_all_means_what_is_cancellable() -> None:
    """Scenario 5: Fill 4, cancel 8 → EXCEEDS_CANCELLABLE; cancel 6 → allowed;

    `"0"` → allowed for 6.
    """
    book = _book()
    book.apply(_fill("F1", 4))
    _refused_cancel(book, NO, 8, Refusal.EXCEEDS_CANCELLABLE)
    _refused_cancel(book, NO, "7", Refusal.EXCEEDS_CANCELLABLE)
    six = book.decide_cancel(NO, 6)
    assert (six.allowed, six.qty, six.cancel_all, six.reason) == (True, 6, False, None)
    everything = book.decide_cancel(NO, "0")
    assert (everything.allowed, everything.qty, everything.cancel_all, everything.reason) == (
        True,
        6,
        True,
        None,
    )
    assert _qty(book.get(NO)) == (4, 0, 0, 6, 0, False)


def test_invalid_cancel_quantities_are_refused_and_zero_string_always_means_all() -> None:
    """Scenario 6: Cancel `-1`, `2.5`, `"x"`, `""` → INVALID_QUANTITY.

    `"0"` always means all, never a no-op.
    """
    book = _book()
    for bad in (-1, 2.5, "x", ""):
        _refused_cancel(book, NO, bad, Refusal.INVALID_QUANTITY)  # type: ignore[arg-type]
    # "0" on an untouched order: all 10.
    everything = book.decide_cancel(NO, "0")
    assert (everything.allowed, everything.qty, everything.cancel_all) == (True, 10, True)
    # "0" with 3 shares already reserved: all that is cancellable (7), still a cancel-all.
    book.request_cancel(NO, 3)
    everything = book.decide_cancel(NO, "0")
    assert (everything.allowed, everything.qty, everything.cancel_all) == (True, 7, True)
    request = book.request_cancel(NO, "0")
    assert request.cancel_all and request.qty == 0
    order = book.get(NO)
    assert _qty(order) == (0, 0, 0, 10, 3, True)
    # "0" when nothing is cancellable is refused, never an allowed no-op.
    other = _book("0000002")
    other.request_cancel("0000002", 10)
    _refused_cancel(other, "0000002", "0", Refusal.NOTHING_CANCELLABLE)
    assert not other.decide_cancel("0000002", "0").allowed


def test_cancel_of_a_terminal_order_is_refused_with_the_terminal_reason() -> None:
    """Scenario 7: Cancel on FILLED / CANCELLED / REJECTED / REPLACED orders

    → refused with that reason.
    """
    book = _book("0000001", "0000002", "0000003", "0000004")
    book.apply(_fill("F1", 10, "0000001"))
    book.apply(ev.OrderExpired("0000002"))
    book.apply(ev.OrderRejected("0000003", code="RC4007", message="restricted"))
    book.apply(ev.OrderAmended("0000005", "0000004", 0, 71_000))
    expected = {
        "0000001": (OrderState.FILLED, Refusal.FULLY_FILLED),
        "0000002": (OrderState.CANCELLED, Refusal.ALREADY_CANCELLED),
        "0000003": (OrderState.REJECTED, Refusal.REJECTED),
        "0000004": (OrderState.REPLACED, Refusal.REPLACED),
    }
    for ord_no, (state, reason) in expected.items():
        order = book.get(ord_no)
        assert order.state is state
        assert order.leaves_qty == 0
        _conserved(order)
        for qty in (0, "0", 1, "5", 10):
            _refused_cancel(book, ord_no, qty, reason)
    assert book.decide_cancel("0000004", 0).successor == "0000005"
    assert book.decide_cancel("0000001", 0).successor is None


def test_any_cancel_while_a_cancel_all_is_pending_is_refused() -> None:
    """Scenario 8: Cancel-all pending: any further cancel → CANCEL_ALL_PENDING."""
    book = _book()
    book.apply(_fill("F1", 2))
    book.request_cancel(NO, "0")
    order = book.get(NO)
    assert _qty(order) == (2, 0, 0, 8, 0, True)
    assert order.cancellable_qty == 0
    for qty in (0, "0", 1, "3", 8, 9):
        _refused_cancel(book, NO, qty, Refusal.CANCEL_ALL_PENDING)
    assert _qty(order) == (2, 0, 0, 8, 0, True)


def test_fills_before_a_partial_cancel_confirmation_shrink_what_it_cancels() -> None:
    """Scenario 9: Cancel 5, then fill 8 before the confirmation

    → the confirmation cancels 2: F 8, C 2, L 0.
    """
    # The broker reports what it really cancelled (2).
    book = _book()
    request = book.request_cancel(NO, 5)
    book.apply(_fill("F1", 8))
    order = book.get(NO)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (8, 0, 0, 2, 5, False)
    book.apply(ev.CancelConfirmed("0000101", NO, 2, request_id=request.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (8, 2, 0, 0, 0, False)
    assert book.anomalies == ()
    # The confirmation echoes the requested 5: clamped to L (2), an anomaly recorded.
    echoed = _book()
    request = echoed.request_cancel(NO, 5)
    echoed.apply(_fill("F1", 8))
    echoed.apply(ev.CancelConfirmed("0000101", NO, 5, request_id=request.request_id))
    order = echoed.get(NO)
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (8, 2, 0, 0, 0, False)
    assert [a.kind for a in echoed.anomalies] == [AnomalyKind.CANCEL_CLAMPED]


def test_cancel_all_overtaken_by_a_full_fill_is_cleared_by_the_rc4033_rejection() -> None:
    """Scenario 10: Cancel-all pending, fill 10 arrives → FILLED.

    The later RC4033 rejection clears the pending flag, state stays FILLED.
    """
    book = _book()
    request = book.request_cancel(NO, "0")
    book.apply(_fill("F1", 10))
    order = book.get(NO)
    assert order.state is OrderState.FILLED
    assert _qty(order) == (10, 0, 0, 0, 0, True)
    book.apply(
        ev.CancelRejected(
            NO,
            code="RC4033",
            message="nothing left to cancel",
            ord_no="0000101",
            request_id=request.request_id,
        )
    )
    assert order.state is OrderState.FILLED
    assert _qty(order) == (10, 0, 0, 0, 0, False)
    assert order.pending_requests == ()
    assert book.anomalies == ()
    _refused_cancel(book, NO, 0, Refusal.FULLY_FILLED)


def test_cancel_all_resolves_to_leaves_at_confirmation() -> None:
    """Scenario 11: Cancel-all pending, fill 4, then confirmation → C 6."""
    book = _book()
    request = book.request_cancel(NO, "0")
    book.apply(_fill("F1", 4))
    order = book.get(NO)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (4, 0, 0, 6, 0, True)
    book.apply(ev.CancelConfirmed("0000101", NO, 0, request_id=request.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (4, 6, 0, 0, 0, False)
    assert book.anomalies == ()


def test_confirmation_above_leaves_is_clamped_with_an_anomaly() -> None:
    """Scenario 12: Confirmation reports 6 while L is 4 → C += 4, anomaly recorded."""
    book = _book()
    request = book.request_cancel(NO, 6)
    book.apply(_fill("F1", 6))
    order = book.get(NO)
    assert _qty(order) == (6, 0, 0, 4, 6, False)
    book.apply(ev.CancelConfirmed("0000101", NO, 6, request_id=request.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (6, 4, 0, 0, 0, False)
    assert [(a.kind, a.ord_no) for a in book.anomalies] == [(AnomalyKind.CANCEL_CLAMPED, NO)]


def test_late_fill_after_cancel_moves_shares_from_cancelled_to_filled() -> None:
    """Scenario 13: CANCELLED with F 4, C 6; a late fill of 2

    → F 6, C 4, still CANCELLED, anomaly recorded.
    """
    book = _book()
    book.apply(_fill("F1", 4))
    request = book.request_cancel(NO, "0")
    book.apply(ev.CancelConfirmed("0000101", NO, 0, request_id=request.request_id))
    order = book.get(NO)
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (4, 6, 0, 0, 0, False)
    assert book.anomalies == ()
    late = _fill("F2", 2)
    book.apply(late)
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (6, 4, 0, 0, 0, False)
    assert [(a.kind, a.ord_no, a.event) for a in book.anomalies] == [
        (AnomalyKind.LATE_FILL, NO, late)
    ]
    _refused_cancel(book, NO, 0, Refusal.ALREADY_CANCELLED)


def test_overfill_is_refused_and_changes_nothing() -> None:
    """Scenario 14: F 8, a new fill of 5 → overfill refused, nothing changes."""
    book = _book()
    book.apply(_fill("F1", 8))
    order = book.get(NO)
    assert _qty(order) == (8, 0, 0, 2, 0, False)
    _unchanged(book, lambda: book.apply(_fill("F2", 5)), InvalidEvent)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (8, 0, 0, 2, 0, False)
    assert order.fill_ids == ("F1",)


def test_a_fill_delivered_twice_counts_once() -> None:
    """Scenario 15: The same fill delivered twice → one fill."""
    book = _book()
    fill = _fill("F1", 3)
    book.apply(fill)
    before = book.snapshot()
    n_events = len(book.events)
    order = book.apply(fill)
    assert order is book.get(NO)
    assert book.snapshot() == before
    assert len(book.events) == n_events
    assert _qty(order) == (3, 0, 0, 7, 0, False)
    assert order.fill_ids == ("F1",)
    assert order.state is OrderState.PARTIALLY_FILLED


def test_same_fill_id_with_a_different_quantity_is_a_conflict() -> None:
    """Scenario 16: Same fill id, different quantity → refused as a conflict."""
    book = _book()
    book.apply(_fill("F1", 3))
    _unchanged(book, lambda: book.apply(_fill("F1", 4)), InvalidEvent)
    _unchanged(book, lambda: book.apply(_fill("F1", 3, price=70_100)), InvalidEvent)
    order = book.get(NO)
    assert _qty(order) == (3, 0, 0, 7, 0, False)
    assert order.avg_fill_price == Decimal(PRICE)


def test_a_fill_before_its_order_is_parked_then_applied() -> None:
    """Scenario 17: A fill arrives before the order's 접수 → parked, applied when 접수 arrives."""
    book = OrderBook()
    fill = _fill("F1", 3)
    assert book.apply(fill) is None
    assert book.parked == (fill,)
    assert NO not in book
    with pytest.raises(UnknownOrder):
        book.get(NO)
    assert book.decide_cancel(NO, 0).reason is Refusal.UNKNOWN_ORDER
    order = book.apply(_accept())
    assert order is not None
    assert book.parked == ()
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (3, 0, 0, 7, 0, False)
    assert order.fill_ids == ("F1",)
    book.apply(ev.OrderConfirmed(NO))
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (3, 0, 0, 7, 0, False)


def test_a_confirmation_after_the_end_is_ignored() -> None:
    """Scenario 18: A 확인 or an "open" status report after the order is terminal

    → ignored, L stays 0.
    """
    book = _book("0000001", "0000002")
    book.apply(_fill("F1", 10, "0000001"))
    book.apply(_accept("0000003"))  # never confirmed before it expired
    book.apply(ev.OrderExpired("0000003"))
    request = book.request_cancel("0000002", 0)
    book.apply(ev.CancelConfirmed("0000101", "0000002", 0, request_id=request.request_id))
    states = {
        "0000001": OrderState.FILLED,
        "0000002": OrderState.CANCELLED,
        "0000003": OrderState.CANCELLED,
    }
    before = book.snapshot()
    for ord_no, state in states.items():
        book.apply(ev.OrderConfirmed(ord_no))
        order = book.get(ord_no)
        assert order.state is state
        assert order.leaves_qty == 0
        _conserved(order)
    assert book.snapshot() == before


def test_fills_out_of_order_give_the_same_quantity_and_average_price() -> None:
    """Scenario 19: Fills delivered out of order → same F and the same average price."""
    fills = [
        _fill("F1", 3, price=70_000),
        _fill("F2", 5, price=70_100),
        _fill("F3", 2, price=69_900),
    ]
    in_order = _book()
    for fill in fills:
        in_order.apply(fill)
    reversed_ = _book()
    for fill in reversed(fills):
        reversed_.apply(fill)
    a, b = in_order.get(NO), reversed_.get(NO)
    assert _qty(a) == _qty(b) == (10, 0, 0, 0, 0, False)
    assert a.state is b.state is OrderState.FILLED
    assert a.avg_fill_price == b.avg_fill_price == Decimal(70_030)
    assert a.fill_notional == b.fill_notional == 700_300


def test_two_pending_partial_cancels_overtaken_by_a_fill() -> None:
    """Scenario 20: F 4, L 6; cancels of 3 and of 2 pending (P 5); fill 4 (F 8, L 2).

    → the first confirmation cancels 2 (CANCELLED), the second cancels nothing;
    F 8 + C 2 = 10 and P is back to 0.
    """
    book = _book()
    book.apply(_fill("F1", 4))
    first = book.request_cancel(NO, 3)
    second = book.request_cancel(NO, 2)
    order = book.get(NO)
    assert _qty(order) == (4, 0, 0, 6, 5, False)
    assert order.pending_requests == (first.request_id, second.request_id)
    book.apply(_fill("F2", 4))
    assert order.state is OrderState.PARTIALLY_FILLED
    assert _qty(order) == (8, 0, 0, 2, 5, False)
    assert order.cancellable_qty == 0
    book.apply(ev.CancelConfirmed("0000101", NO, 3, request_id=first.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (8, 2, 0, 0, 2, False)
    book.apply(ev.CancelConfirmed("0000102", NO, 2, request_id=second.request_id))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (8, 2, 0, 0, 0, False)
    assert order.filled_qty + order.cancelled_qty == Q
    assert order.pending_requests == ()
    # Both confirmations reported more than was open: clamped, flagged for reconciliation.
    assert [a.kind for a in book.anomalies] == [AnomalyKind.CANCEL_CLAMPED] * 2


def test_a_rejected_cancel_all_allows_a_partial_cancel_again() -> None:
    """Scenario 21: Cancel-all rejected (e.g. market closed) → a partial cancel is allowed again."""
    book = _book()
    request = book.request_cancel(NO, "0")
    _refused_cancel(book, NO, 3, Refusal.CANCEL_ALL_PENDING)
    book.apply(
        ev.CancelRejected(NO, code="RC4058", message="market closed", request_id=request.request_id)
    )
    order = book.get(NO)
    assert order.state is OrderState.CONFIRMED
    assert _qty(order) == (0, 0, 0, 10, 0, False)
    decision = book.decide_cancel(NO, 3)
    assert (decision.allowed, decision.qty, decision.cancel_all, decision.reason) == (
        True,
        3,
        False,
        None,
    )
    again = book.request_cancel(NO, 3)
    assert again.request_id != request.request_id
    assert _qty(order) == (0, 0, 0, 10, 3, False)


def test_modify_of_all_remaining_replaces_the_order_and_names_the_successor() -> None:
    """Scenario 22: Modify (정정) of all remaining into a new order → old order REPLACED.

    A cancel of the old number is refused with REPLACED and names the new number.
    """
    book = _book()
    new = book.apply(ev.OrderAmended("0000002", NO, 0, 71_000))
    old = book.get(NO)
    assert old.state is OrderState.REPLACED
    assert _qty(old) == (0, 0, 10, 0, 0, False)
    assert old.successor == "0000002"
    assert new is book.get("0000002")
    assert new.origin == NO
    assert (new.qty, new.price, new.state) == (10, 71_000, OrderState.CONFIRMED)
    _conserved(new)
    decision = book.decide_cancel(NO, 0)
    assert (decision.allowed, decision.reason, decision.successor) == (
        False,
        Refusal.REPLACED,
        "0000002",
    )
    err = _unchanged(book, lambda: book.request_cancel(NO, 0), CancelRefused)
    assert err.decision.reason is Refusal.REPLACED
    assert err.decision.successor == "0000002"
    assert "0000002" in str(err)
    assert book.decide_cancel("0000002", 0).allowed


def test_zero_or_negative_fills_are_refused() -> None:
    """Scenario 23: A zero-quantity or negative fill → refused, nothing changes."""
    book = _book()
    book.apply(_fill("F1", 4))
    for qty in (0, -1, -4):
        _unchanged(book, lambda qty=qty: book.apply(_fill("F2", qty)), InvalidEvent)
    order = book.get(NO)
    assert _qty(order) == (4, 0, 0, 6, 0, False)
    assert order.fill_ids == ("F1",)
    # The same fill id with a valid quantity is still free.
    book.apply(_fill("F2", 1))
    assert _qty(order) == (5, 0, 0, 5, 0, False)


def test_venue_side_cancel_of_the_rest_cancels_all_that_is_open() -> None:
    """Scenario 24: Venue-side cancel of the rest (IOC/FOK remainder, expiry)

    → C += L, CANCELLED.
    """
    book = _book()
    book.apply(_fill("F1", 4))
    book.apply(ev.OrderExpired(NO))
    order = book.get(NO)
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (4, 6, 0, 0, 0, False)
    untouched = _book()
    untouched.apply(ev.OrderExpired(NO))
    assert untouched.get(NO).state is OrderState.CANCELLED
    assert _qty(untouched.get(NO)) == (0, 10, 0, 0, 0, False)


def test_an_unanswered_cancel_stays_pending_until_reconciliation_settles_it() -> None:
    """Scenario 25: A cancel whose answer never came (timeout) → stays pending.

    A second cancel of the same shares is refused; reconciliation then settles it.
    """
    books = (_book(), _book())
    for book in books:
        request = book.request_cancel(NO, 10)
        order = book.get(NO)
        # No answer: the reservation stays, nothing moved.
        assert _qty(order) == (0, 0, 0, 10, 10, False)
        assert order.pending_requests == (request.request_id,)
        assert order.state is OrderState.CONFIRMED
        for qty in (10, 1, "0"):
            _refused_cancel(book, NO, qty, Refusal.NOTHING_CANCELLABLE)
        assert order.pending_requests == (request.request_id,)
    # Reconciliation learnt the cancel went through.
    confirmed, rejected = books
    order = confirmed.get(NO)
    rid = order.pending_requests[0]
    confirmed.apply(ev.CancelConfirmed("0000101", NO, 10, request_id=rid))
    assert order.state is OrderState.CANCELLED
    assert _qty(order) == (0, 10, 0, 0, 0, False)
    assert order.pending_requests == ()
    # Reconciliation learnt the cancel was refused: the reservation is released, nothing moved.
    order = rejected.get(NO)
    rid = order.pending_requests[0]
    rejected.apply(ev.CancelRejected(NO, code="RC4058", request_id=rid))
    assert order.state is OrderState.CONFIRMED
    assert _qty(order) == (0, 0, 0, 10, 0, False)
    assert order.pending_requests == ()
    assert rejected.decide_cancel(NO, 10).allowed


def test_replaying_the_recorded_events_rebuilds_an_identical_book() -> None:
    """Scenario 26: Replaying every recorded event into a new book

    → identical orders, pending reservations included.
    """
    t0 = datetime(2024, 6, 3, 9, 0, tzinfo=KST)
    book = OrderBook()
    for i, no in enumerate(("0000001", "0000002", "0000003", "0000004")):
        book.apply(_accept(no, ts=t0 + timedelta(seconds=i)))
        book.apply(ev.OrderConfirmed(no, ts=t0 + timedelta(seconds=i, milliseconds=500)))
    # 0000001: fills and a pending partial cancel.
    book.apply(ev.OrderFilled("0000001", "A1", 3, 70_100, ts=t0 + timedelta(minutes=1)))
    book.apply(ev.OrderFilled("0000001", "A2", 1, 69_900, ts=t0 + timedelta(minutes=2)))
    partial = book.request_cancel("0000001", 4, ts=t0 + timedelta(minutes=3))
    book.apply(ev.CancelAccepted("0000101", "0000001", 4, request_id=partial.request_id))
    # 0000002: a pending cancel-all.
    book.request_cancel("0000002", "0", ts=t0 + timedelta(minutes=4))
    # 0000009: an event for an order the book does not know yet.
    book.apply(ev.OrderFilled("0000009", "Z1", 2, 70_000, ts=t0 + timedelta(minutes=5)))
    # 0000003: cancelled, then a late fill.
    cancel = book.request_cancel("0000003", 0)
    book.apply(ev.CancelConfirmed("0000103", "0000003", 0, request_id=cancel.request_id))
    book.apply(ev.OrderFilled("0000003", "C1", 2, 70_000, ts=t0 + timedelta(minutes=6)))
    # 0000004: a fill then a modify of the rest into 0000005, which gets a fill.
    book.apply(ev.OrderFilled("0000004", "D1", 2, 70_000))
    book.apply(ev.OrderAmended("0000005", "0000004", 0, 71_000, ts=t0 + timedelta(minutes=7)))
    book.apply(ev.OrderFilled("0000005", "E1", 1, 71_000))

    # The book is as rich as intended.
    assert _qty(book.get("0000001")) == (4, 0, 0, 6, 4, False)
    assert book.get("0000001").pending_requests == (partial.request_id,)
    assert _qty(book.get("0000002")) == (0, 0, 0, 10, 0, True)
    assert [e.ord_no for e in book.parked] == ["0000009"]  # type: ignore[union-attr]
    assert _qty(book.get("0000003")) == (2, 8, 0, 0, 0, False)
    assert [a.kind for a in book.anomalies] == [AnomalyKind.LATE_FILL]
    assert book.get("0000004").state is OrderState.REPLACED
    assert _qty(book.get("0000004")) == (2, 0, 8, 0, 0, False)
    assert _qty(book.get("0000005")) == (1, 0, 0, 7, 0, False)

    snapshot = book.snapshot()
    replayed = OrderBook.replay(book.events)
    assert replayed.snapshot() == snapshot
    assert list(replayed.events) == list(book.events)
    assert replayed.parked == book.parked

    wire = json.loads(json.dumps([e.to_dict() for e in book.events]))
    decoded = [ev.from_dict(d) for d in wire]
    assert decoded == list(book.events)
    assert OrderBook.replay(decoded).snapshot() == snapshot

    # The rebuilt book keeps working like the original: the pending reservation holds.
    assert replayed.decide_cancel("0000001", 6).reason is Refusal.EXCEEDS_CANCELLABLE
    assert replayed.decide_cancel("0000002", 1).reason is Refusal.CANCEL_ALL_PENDING
    nxt = replayed.request_cancel("0000001", 2)
    assert nxt.request_id == book.request_cancel("0000001", 2).request_id
