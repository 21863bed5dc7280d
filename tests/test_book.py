"""Book behaviours beyond the spec's scenarios: views, bounds, matching of unnamed answers."""

from __future__ import annotations

import pytest

from engine import (
    AnomalyKind,
    EngineError,
    InvalidEvent,
    OrderBook,
    OrderState,
    ParkingFull,
    Refusal,
    Side,
    UnknownOrder,
)
from engine import events as ev


def _book(*nos: str, qty: int = 10, **kwargs: object) -> OrderBook:
    book = OrderBook(**kwargs)  # type: ignore[arg-type]
    for no in nos:
        book.apply(ev.OrderAccepted(no, "005930", Side.BUY, qty, 70_000))
        book.apply(ev.OrderConfirmed(no))
    return book


def test_get_unknown_order_raises_a_key_error_that_is_an_engine_error() -> None:
    book = _book()
    with pytest.raises(KeyError):
        book.get("0000999")
    with pytest.raises(EngineError) as info:
        book.get("0000999")
    assert isinstance(info.value, UnknownOrder) and info.value.ord_no == "0000999"


def test_views_are_read_only() -> None:
    book = _book("0000001")
    with pytest.raises(TypeError):
        book.orders["0000002"] = book.get("0000001")  # type: ignore[index]
    with pytest.raises(TypeError):
        book.events[0] = ev.OrderConfirmed("0000001")  # type: ignore[index]
    order = book.get("0000001")
    with pytest.raises(AttributeError):
        order.filled_qty = 5  # type: ignore[misc]
    assert len(book.events) == 2 and book.events[-1] == ev.OrderConfirmed("0000001")


def test_parking_is_bounded_and_a_refused_park_changes_nothing() -> None:
    book = _book(max_parked=2)
    book.apply(ev.OrderFilled("0000007", "1", 1, 70_000))
    book.apply(ev.OrderConfirmed("0000008"))
    before = book.snapshot()
    with pytest.raises(ParkingFull):
        book.apply(ev.OrderFilled("0000009", "1", 1, 70_000))
    assert book.snapshot() == before and len(book.events) == 2
    book.apply(ev.OrderAccepted("0000007", "005930", Side.SELL, 5, 70_000))
    assert book.get("0000007").filled_qty == 1
    assert book.parked == (ev.OrderConfirmed("0000008"),)


def test_a_parked_event_that_contradicts_its_order_becomes_an_anomaly() -> None:
    book = _book()
    book.apply(ev.OrderFilled("0000007", "1", 8, 70_000))  # more than the order will hold
    order = book.apply(ev.OrderAccepted("0000007", "005930", Side.BUY, 5, 70_000))
    assert order is not None and order.filled_qty == 0
    assert [a.kind for a in book.anomalies] == [AnomalyKind.PARKED_EVENT_REFUSED]
    assert not book.parked
    assert OrderBook.replay(book.events).snapshot() == book.snapshot()


def test_without_a_journal_the_book_keeps_no_events_but_the_same_orders() -> None:
    stream = [
        ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000),
        ev.OrderFilled("0000001", "1", 4, 70_000),
        ev.OrderExpired("0000001"),
    ]
    lean = OrderBook(journal=False)
    for e in stream:
        lean.apply(e)
    assert len(lean.events) == 0
    full = OrderBook.replay(stream)
    assert lean.get("0000001").snapshot() == full.get("0000001").snapshot()


def test_unnamed_answers_go_to_the_oldest_request_of_the_same_size() -> None:
    book = _book("0000001")
    first = book.request_cancel("0000001", 3)
    second = book.request_cancel("0000001", 2)
    book.apply(ev.CancelAccepted("C1", "0000001", 2))  # the broker numbered the 2-share cancel
    book.apply(ev.CancelAccepted("C2", "0000001", 3))
    book.apply(ev.CancelRejected("0000001", code="RC4033", ord_no="C1"))
    order = book.get("0000001")
    assert order.pending_requests == (first.request_id,)
    assert order.pending_cancel_qty == 3
    assert second.request_id not in order.pending_requests
    book.apply(ev.CancelConfirmed("C2", "0000001", 3))
    assert (order.cancelled_qty, order.pending_cancel_qty, order.leaves_qty) == (3, 0, 7)


def test_a_rejection_without_numbers_releases_the_oldest_unanswered_request() -> None:
    book = _book("0000001")
    first = book.request_cancel("0000001", 3)
    second = book.request_cancel("0000001", 4)
    book.apply(ev.CancelRejected("0000001", code="RC4058"))
    assert book.get("0000001").pending_requests == (second.request_id,)
    assert first.request_id != second.request_id


def test_a_cancel_this_book_never_requested_is_taken_and_flagged() -> None:
    book = _book("0000001")
    book.apply(ev.CancelAccepted("C9", "0000001", 4))
    order = book.get("0000001")
    assert order.pending_cancel_qty == 4  # a cancel in flight reserves its shares
    assert book.decide_cancel("0000001", 7).reason is Refusal.EXCEEDS_CANCELLABLE
    book.apply(ev.CancelConfirmed("C9", "0000001", 4))
    assert (order.cancelled_qty, order.pending_cancel_qty) == (4, 0)
    assert [a.kind for a in book.anomalies] == [AnomalyKind.UNREQUESTED_CANCEL]


def test_an_answer_naming_an_unknown_request_is_refused() -> None:
    book = _book("0000001")
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelConfirmed("C1", "0000001", 3, request_id="R9999999"))
    assert book.snapshot() == before


def test_a_modify_chain_names_the_live_end_as_the_order_to_cancel() -> None:
    book = _book("0000001")
    book.apply(ev.OrderAmended("0000002", "0000001", 0, 69_900))
    book.apply(ev.OrderAmended("0000003", "0000002", 0, 69_800))
    decision = book.decide_cancel("0000001", "0")
    assert decision.reason is Refusal.REPLACED and decision.successor == "0000003"
    assert book.get("0000002").state is OrderState.REPLACED
    live = book.get("0000003")
    assert (live.qty, live.price, live.origin, live.state) == (
        10,
        69_800,
        "0000002",
        OrderState.CONFIRMED,
    )
    assert book.decide_cancel("0000003", "0").qty == 10


def test_a_late_modify_takes_shares_back_from_a_cancel_delivered_first() -> None:
    book = _book("0000001")
    book.apply(ev.OrderExpired("0000001"))  # delivered first, happened after the modify
    book.apply(ev.OrderAmended("0000002", "0000001", 6, 69_900))
    order = book.get("0000001")
    assert (order.cancelled_qty, order.replaced_qty, order.state) == (4, 6, OrderState.CANCELLED)
    assert book.get("0000002").leaves_qty == 6
    assert [a.kind for a in book.anomalies] == [AnomalyKind.LATE_AMEND]


def test_request_ids_are_deterministic_and_survive_replay() -> None:
    book = _book("0000001", "0000002")
    ids = [
        book.request_cancel("0000001", 1).request_id,
        book.request_cancel("0000002", 1).request_id,
    ]
    assert ids == ["R0000001", "R0000002"]
    again = OrderBook.replay(book.events)
    assert (
        again.request_cancel("0000001", 1).request_id
        == book.request_cancel("0000001", 1).request_id
    )


def test_cancel_requests_applied_as_events_are_checked_like_requests() -> None:
    book = _book("0000001")
    book.apply(ev.CancelRequested("0000001", "mine-1", 4))
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelRequested("0000001", "mine-1", 5))  # same id, other contents
    book.apply(ev.CancelRequested("0000001", "mine-1", 4))  # duplicate: no-op
    assert book.get("0000001").pending_cancel_qty == 4
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelRequested("0000001", "mine-2", 7))  # exceeds the 6 cancellable
    assert book.get("0000001").pending_requests == ("mine-1",)


# -- regressions from the adversarial review ---------------------------------------------------
def test_a_rejection_without_numbers_releases_an_already_accepted_cancel_all() -> None:
    book = _book("0000001")
    book.request_cancel("0000001", "0")
    book.apply(ev.CancelAccepted("C1", "0000001", 0))
    book.apply(ev.CancelRejected("0000001", code="RC4058", message="market closed"))
    order = book.get("0000001")
    assert (order.cancel_all_pending, order.pending_cancel_qty) == (False, 0)
    assert book.decide_cancel("0000001", 3).allowed
    assert book.anomalies == ()


def test_request_cancel_with_a_bad_timestamp_is_refused_and_replay_still_works() -> None:
    book = _book("0000001")
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.request_cancel("0000001", 3, ts="garbage")  # type: ignore[arg-type]
    assert book.snapshot() == before
    assert OrderBook.replay(book.events).snapshot() == before


def test_a_confirmation_without_request_id_goes_to_the_request_of_its_size() -> None:
    book = _book("0000001")
    first = book.request_cancel("0000001", 3)
    book.request_cancel("0000001", 2)
    book.apply(ev.CancelConfirmed("C2", "0000001", 2))  # before its acceptance
    order = book.get("0000001")
    assert order.pending_requests == (first.request_id,)
    assert (order.cancelled_qty, order.leaves_qty, order.pending_cancel_qty) == (2, 8, 3)
    assert book.decide_cancel("0000001", 6).reason is Refusal.EXCEEDS_CANCELLABLE
    book.apply(ev.CancelAccepted("C2", "0000001", 2))  # the late acceptance is taken
    assert order.pending_requests == (first.request_id,)


def test_a_modify_reporting_more_than_was_open_moves_only_what_was_open() -> None:
    book = _book("0000001")
    book.apply(ev.OrderFilled("0000001", "f1", 5, 70_000))
    amend = ev.OrderAmended("0000002", "0000001", 12, 69_000)
    book.apply(amend)
    successor = book.get("0000002")
    assert (successor.qty, successor.leaves_qty) == (5, 5)  # no shares created
    assert book.get("0000001").replaced_qty == 5
    assert [a.kind for a in book.anomalies] == [AnomalyKind.AMEND_CLAMPED]
    before = book.snapshot()
    book.apply(amend)  # redelivered: still a duplicate
    assert book.snapshot() == before
    with pytest.raises(InvalidEvent):
        book.apply(ev.OrderAmended("0000002", "0000001", 7, 69_000))


def test_odd_arguments_get_engine_errors_not_crashes() -> None:
    from datetime import datetime

    from engine import CancelRefused, EventDecodeError, InvalidTime
    from engine.sessions import KoreaSessions

    book = _book("0000001", calendar=KoreaSessions())
    with pytest.raises(CancelRefused) as refused:
        book.request_cancel(["0000001"], 1, at=datetime.now().astimezone())  # type: ignore[arg-type]
    assert refused.value.decision.reason is Refusal.UNKNOWN_ORDER
    assert [] not in book
    for at in (datetime(2024, 1, 3, 10, 0), "2024-01-03T10:00"):
        with pytest.raises(InvalidTime):
            book.decide_cancel("0000001", 1, at=at)  # type: ignore[arg-type]
        with pytest.raises(EngineError):
            book.request_cancel("0000001", 1, at=at)  # type: ignore[arg-type]
    assert book.get("0000001").pending_cancel_qty == 0
    with pytest.raises(EventDecodeError):
        ev.from_dict({"type": "OrderConfirmed", "ord_no": "1", 1: 2, "x": 3})  # type: ignore[dict-item]


def test_session_holidays_may_be_datetimes_and_the_guard_must_be_a_timedelta() -> None:
    from datetime import date, datetime

    from engine.sessions import KST, KoreaSessions

    wednesday = datetime(2024, 1, 3, 10, 0, tzinfo=KST)
    assert KoreaSessions().accepts_cancel("KRX", wednesday)
    assert not KoreaSessions(holidays=[wednesday]).accepts_cancel("KRX", wednesday)
    assert not KoreaSessions(holidays=[date(2024, 1, 3)]).accepts_cancel("KRX", wednesday)
    with pytest.raises(TypeError):
        KoreaSessions(guard=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        KoreaSessions(holidays=["2024-01-03"])  # type: ignore[list-item]


def test_the_same_cancel_number_accepted_for_another_quantity_is_a_conflict() -> None:
    book = _book("0000001")
    request = book.request_cancel("0000001", 3)
    book.apply(ev.CancelAccepted("C1", "0000001", 3, request_id=request.request_id))
    before = book.snapshot()
    book.apply(ev.CancelAccepted("C1", "0000001", 3, request_id=request.request_id))
    assert book.snapshot() == before
    with pytest.raises(InvalidEvent):
        book.apply(ev.CancelAccepted("C1", "0000001", 7, request_id=request.request_id))
    assert book.snapshot() == before


def test_a_partial_request_confirmed_as_all_is_flagged() -> None:
    book = _book("0000001")
    request = book.request_cancel("0000001", 3)
    book.apply(ev.CancelConfirmed("C1", "0000001", 0, request_id=request.request_id))
    order = book.get("0000001")
    assert (order.cancelled_qty, order.state) == (10, OrderState.CANCELLED)
    assert [a.kind for a in book.anomalies] == [AnomalyKind.CANCEL_OVER_REQUEST]


def test_an_acceptance_after_a_rejection_without_number_is_taken() -> None:
    book = _book("0000001")
    request = book.request_cancel("0000001", 3)
    book.apply(ev.CancelRejected("0000001", code="RC4033", request_id=request.request_id))
    book.apply(ev.CancelAccepted("C1", "0000001", 3, request_id=request.request_id))
    order = book.get("0000001")
    assert (order.pending_cancel_qty, order.leaves_qty) == (0, 10)
    with pytest.raises(InvalidEvent):  # but a confirmation of a rejected cancel contradicts it
        book.apply(ev.CancelConfirmed("C1", "0000001", 3))
    assert OrderBook.replay(book.events).snapshot() == book.snapshot()


def test_an_order_modified_in_pieces_names_its_newest_piece_whatever_the_delivery_order() -> None:
    def book_after(events: list[ev.Event]) -> OrderBook:
        book = OrderBook()
        book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 3, 70_900))
        for event in events:
            book.apply(event)
        return book

    first = ev.OrderAmended("0000002", "0000001", 1, 70_800)
    second = ev.OrderAmended("0000003", "0000001", 2, 70_700)
    in_order, reordered = book_after([first, second]), book_after([second, first])
    for book in (in_order, reordered):
        assert book.get("0000001").successor == "0000003"
        decision = book.decide_cancel("0000001", "0")
        assert (decision.reason, decision.successor) == (Refusal.REPLACED, "0000003")
    assert in_order.snapshot() == reordered.snapshot()


def test_an_orders_cancels_are_shown_oldest_first_with_number_and_outcome() -> None:
    book = _book("0000001")
    first = book.request_cancel("0000001", 3)
    second = book.request_cancel("0000001", 2)
    book.apply(ev.CancelAccepted("0000002", "0000001", 3, request_id=first.request_id))
    book.apply(ev.CancelConfirmed("0000002", "0000001", 3, request_id=first.request_id))
    book.apply(ev.CancelRejected("0000001", "RC4033", "nothing left", "", second.request_id))
    third = book.request_cancel("0000001", "0")
    cancels = book.orders["0000001"].cancels
    assert [(c.request_id, c.cancel_no, c.qty, c.status) for c in cancels] == [
        (first.request_id, "0000002", 3, "confirmed"),
        (second.request_id, "", 2, "rejected"),
        (third.request_id, "", 0, "pending"),
    ]
    with pytest.raises(AttributeError):
        cancels[0].status = "confirmed"  # type: ignore[misc]
