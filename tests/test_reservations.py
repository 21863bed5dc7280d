"""Unknown cancel outcomes (OUTCOME_UNKNOWN) and modify reservations (ModifyRequested)."""

from __future__ import annotations

import pytest

from engine import InvalidEvent, ModifyRefused, OrderBook, OrderState, Refusal, Side
from engine import events as ev

NO = "0000001"


def _book(qty: int = 10, filled: int = 0) -> OrderBook:
    book = OrderBook()
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, qty, 70_000))
    book.apply(ev.OrderConfirmed(NO))
    if filled:
        book.apply(ev.OrderFilled(NO, "f0", filled, 70_000))
    return book


def _same_after_replay(book: OrderBook) -> None:
    assert OrderBook.replay(book.events).snapshot() == book.snapshot()


# -- OUTCOME_UNKNOWN ---------------------------------------------------------------------------
def test_an_unanswered_cancel_in_flight_still_allows_a_cancel_of_other_shares() -> None:
    book = _book()
    book.request_cancel(NO, 4)
    assert book.decide_cancel(NO, 6).allowed  # the answer may simply not have come yet
    assert book.decide_cancel(NO, 7).reason is Refusal.EXCEEDS_CANCELLABLE


def test_a_lost_answer_refuses_every_new_cancel_of_the_order_until_it_is_settled() -> None:
    book = _book()
    request = book.request_cancel(NO, 4)
    book.apply(ev.CancelOutcomeUnknown(NO, request.request_id))
    for qty in (4, 1, "0", 6):
        decision = book.decide_cancel(NO, qty)
        assert not decision.allowed and decision.reason is Refusal.OUTCOME_UNKNOWN, qty
    assert book.get(NO).outcome_unknown
    assert book.get(NO).pending_cancel_qty == 4  # the reservation stays
    _same_after_replay(book)
    # Evidence: the broker numbered it (reconciliation found it) -> known again.
    book.apply(ev.CancelAccepted("0000009", NO, 4, request_id=request.request_id))
    assert not book.get(NO).outcome_unknown
    assert book.decide_cancel(NO, 6).allowed
    _same_after_replay(book)


def test_a_release_on_evidence_ends_the_unknown_outcome() -> None:
    book = _book()
    request = book.request_cancel(NO, "0")
    book.apply(ev.CancelOutcomeUnknown(NO, request.request_id))
    assert book.decide_cancel(NO, 1).reason is Refusal.CANCEL_ALL_PENDING  # the more specific
    book.apply(ev.CancelRejected(NO, "NOT_RECEIVED", request_id=request.request_id))
    assert book.decide_cancel(NO, "0").allowed


def test_an_unknown_mark_after_the_answer_or_twice_changes_nothing() -> None:
    book = _book()
    request = book.request_cancel(NO, 3)
    book.apply(ev.CancelAccepted("0000009", NO, 3, request_id=request.request_id))
    before = book.snapshot()
    events = len(book.events)
    book.apply(ev.CancelOutcomeUnknown(NO, request.request_id))  # answered already: stale
    assert book.snapshot() == before and len(book.events) == events
    other = book.request_cancel(NO, 2)
    book.apply(ev.CancelOutcomeUnknown(NO, other.request_id))
    events = len(book.events)
    book.apply(ev.CancelOutcomeUnknown(NO, other.request_id))
    assert len(book.events) == events


def test_an_unknown_mark_for_a_request_the_book_never_made_is_refused_and_changes_nothing() -> None:
    book = _book()
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelOutcomeUnknown(NO, "R9999999"))
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelOutcomeUnknown("0000404", "R0000001"))
    assert book.snapshot() == before


# -- modify reservations -----------------------------------------------------------------------
def test_a_pending_modify_reserves_its_shares_against_cancels() -> None:
    book = _book(filled=2)  # L 8
    request = book.request_modify(NO, 5, 69_900)
    assert (request.qty, request.price, request.mdfy_qty) == (5, 69_900, "5")
    order = book.get(NO)
    assert order.pending_modify_qty == 5 and order.cancellable_qty == 3
    assert book.decide_cancel(NO, 4).reason is Refusal.EXCEEDS_CANCELLABLE
    cancel_all = book.decide_cancel(NO, "0")
    assert cancel_all.allowed and cancel_all.qty == 3
    _same_after_replay(book)
    # The modify is done: 5 shares move to the successor, the reservation is released.
    book.apply(ev.OrderAmended("0000002", NO, 5, 69_900))
    assert order.pending_modify_qty == 0 and order.leaves_qty == 3 and order.cancellable_qty == 3
    assert [m.status for m in order.modifies] == ["confirmed"]
    _same_after_replay(book)


def test_a_pending_modify_of_all_leaves_nothing_cancellable() -> None:
    book = _book()
    book.request_modify(NO, "0", 69_000)
    assert book.get(NO).modify_all_pending
    assert book.decide_cancel(NO, "0").reason is Refusal.NOTHING_CANCELLABLE
    assert book.decide_modify(NO, 1).reason is Refusal.NOTHING_CANCELLABLE


def test_a_rejected_modify_gives_its_shares_back() -> None:
    book = _book()
    request = book.request_modify(NO, 6, 69_000)
    book.apply(ev.ModifyRejected(NO, "RC4033", request_id=request.request_id))
    assert book.get(NO).cancellable_qty == 10
    assert [m.status for m in book.get(NO).modifies] == ["rejected"]
    _same_after_replay(book)


def test_a_numbered_modify_is_matched_by_its_number_whatever_the_sizes() -> None:
    book = _book()
    first = book.request_modify(NO, 3, 69_000)
    second = book.request_modify(NO, 3, 68_000)
    book.apply(ev.ModifyAccepted("0000005", NO, 3, request_id=second.request_id))
    book.apply(ev.OrderAmended("0000005", NO, 3, 68_000))
    statuses = {m.request_id: m.status for m in book.get(NO).modifies}
    assert statuses == {first.request_id: "pending", second.request_id: "confirmed"}
    assert book.get(NO).pending_modify_qty == 3
    _same_after_replay(book)


def test_a_modify_the_engine_refuses_reserves_nothing() -> None:
    book = _book(filled=10)
    before = book.snapshot()
    with pytest.raises(ModifyRefused) as refused:
        book.request_modify(NO, 1, 69_000)
    assert refused.value.decision.reason is Refusal.FULLY_FILLED
    assert book.snapshot() == before
    with pytest.raises(ModifyRefused):
        _book().request_modify(NO, 11, 69_000)


def test_a_modify_with_a_bad_price_changes_nothing() -> None:
    book = _book()
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.request_modify(NO, 1, -5)
    assert book.snapshot() == before


def test_a_fill_racing_a_modify_of_all_ends_both_cleanly() -> None:
    book = _book()
    book.request_modify(NO, "0", 69_000)
    book.apply(ev.OrderFilled(NO, "f1", 4, 70_000))
    order = book.apply(ev.OrderAmended("0000002", NO, 6, 69_000))
    original = book.get(NO)
    assert original.state is OrderState.REPLACED and not original.modify_all_pending
    assert order is not None and order.qty == 6
    _same_after_replay(book)
