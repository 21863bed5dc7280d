"""The public strategies (engine.testing.strategies), and properties of the book they drive."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from engine import AnomalyKind, OrderBook, OrderState, Refusal
from engine import events as ev
from engine.decision import parse_cancel_qty
from engine.testing import strategies as es


def _distinct_fills(stream: list[ev.Event]) -> dict[str, int]:
    seen: dict[tuple[str, str], int] = {}
    for e in stream:
        if isinstance(e, ev.OrderFilled):
            seen[(e.ord_no, e.fill_id)] = e.qty
    totals: dict[str, int] = {}
    for (no, _), qty in seen.items():
        totals[no] = totals.get(no, 0) + qty
    return totals


@given(es.interleaved_streams())
def test_any_delivery_order_is_taken_and_keeps_every_share(stream: list[ev.Event]) -> None:
    """Reordered, duplicated, interleaved: never refused, F is the sum of distinct fills."""
    book = OrderBook()
    for event in stream:
        book.apply(event)
    assert not book.parked
    fills = _distinct_fills(stream)
    for o in book.orders.values():
        assert o.filled_qty + o.cancelled_qty + o.replaced_qty + o.leaves_qty == o.qty
        assert o.filled_qty == fills.get(o.ord_no, 0)
    assert OrderBook.replay(book.events).snapshot() == book.snapshot()


@given(es.interleaved_streams(reorder=False, duplicates=False))
def test_in_order_delivery_matches_the_exchange_truth(stream: list[ev.Event]) -> None:
    """Delivered in exchange order, the book ends exactly where the exchange did, no clamps."""
    book = OrderBook()
    for event in stream:
        book.apply(event)
    assert {a.kind for a in book.anomalies} <= {AnomalyKind.UNREQUESTED_CANCEL}
    for o in book.orders.values():
        if o.origin is not None:
            continue
        cancelled = sum(
            e.qty for e in stream if isinstance(e, ev.CancelConfirmed) and e.orig_ord_no == o.ord_no
        )
        moved = sum(
            e.qty for e in stream if isinstance(e, ev.OrderAmended) and e.orig_ord_no == o.ord_no
        )
        expired = any(
            isinstance(e, (ev.OrderExpired, ev.OrderRejected)) and e.ord_no == o.ord_no
            for e in stream
        )
        assert o.replaced_qty == moved
        if not expired:
            assert o.cancelled_qty == cancelled
        assert o.leaves_qty == 0 or o.state in (
            OrderState.RECEIVED,
            OrderState.CONFIRMED,
            OrderState.PARTIALLY_FILLED,
        )


@given(es.order_event_streams())
def test_streams_round_trip_through_json(stream: list[ev.Event]) -> None:
    decoded = [ev.from_dict(json.loads(json.dumps(e.to_dict()))) for e in stream]
    assert decoded == stream
    assert OrderBook.replay(decoded).snapshot() == OrderBook.replay(stream).snapshot()


@given(es.cancel_quantities())
def test_cancel_quantities_are_valid_in_both_forms(qty: int | str) -> None:
    n = parse_cancel_qty(qty)
    assert n is not None and n == int(qty)


@given(es.cancel_quantities(strings=True))
def test_string_quantities_are_strings(qty: int | str) -> None:
    assert isinstance(qty, str) and qty.isdigit()


@given(es.invalid_cancel_quantities(), st.sampled_from(["0000001", "0009999"]))
def test_invalid_quantities_are_refused_for_known_and_unknown_orders(qty: object, no: str) -> None:
    book = OrderBook()
    book.apply(ev.OrderAccepted("0000001", "005930", ev.Side.BUY, 10, 70_000))
    assert parse_cancel_qty(qty) is None
    decision = book.decide_cancel(no, qty)  # type: ignore[arg-type]
    assert not decision.allowed and decision.reason is Refusal.INVALID_QUANTITY


@given(es.order_accepted())
def test_order_accepted_events_are_taken(event: ev.OrderAccepted) -> None:
    book = OrderBook()
    order = book.apply(event)
    assert order is not None and order.state is OrderState.RECEIVED
    assert len(event.ord_no) == 7 and event.ord_no.isdigit()
