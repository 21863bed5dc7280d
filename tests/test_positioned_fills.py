"""Fills that name their position in the order (``cum_qty``) are counted once, from any source."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import AnomalyKind, InvalidEvent, OrderBook, OrderState, Side
from engine import events as ev

NO = "0000001"


def book_of(qty: int = 10) -> OrderBook:
    book = OrderBook()
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, qty, 70_000))
    book.apply(ev.OrderConfirmed(NO))
    return book


def execution(n: int, qty: int, cum: int, price: int = 70_000) -> ev.OrderFilled:
    """A real-time 체결: execution number ``n``, ``qty`` shares, the order's total ``cum``."""
    return ev.OrderFilled(NO, f"E{n}", qty, price, cum)


def top_up(cum: int, price: int) -> ev.OrderFilled:
    """A reconciliation's fill: the account shows ``cum`` shares filled in all."""
    return ev.OrderFilled(NO, f"R{NO}-{cum}", cum, price, cum)


def test_executions_in_any_order_are_each_counted() -> None:
    book = book_of()
    for fill in (execution(3, 2, 6, 70_300), execution(1, 2, 2, 70_100), execution(2, 2, 4)):
        book.apply(fill)
    order = book.orders[NO]
    assert (order.filled_qty, order.leaves_qty) == (6, 4)
    assert order.fill_notional == 2 * 70_300 + 2 * 70_100 + 2 * 70_000
    assert book.anomalies == ()


def test_a_reconciliation_then_the_executions_it_summed_counts_them_once() -> None:
    book = book_of()
    book.apply(top_up(4, 70_050))
    book.apply(execution(1, 3, 3, 70_000))
    book.apply(execution(2, 1, 4, 70_200))
    order = book.orders[NO]
    assert (order.filled_qty, order.leaves_qty, order.state) == (4, 6, OrderState.PARTIALLY_FILLED)
    assert order.fill_notional == 4 * 70_050  # the executions added no shares
    assert book.anomalies == ()


def test_executions_then_a_reconciliation_adds_only_the_missing_shares() -> None:
    book = book_of()
    book.apply(execution(1, 3, 3, 70_000))
    book.apply(execution(3, 2, 7, 70_400))  # execution 2 (shares 4-5) not delivered yet
    book.apply(top_up(7, 70_100))  # the two missing shares, at the price the adapter worked out
    order = book.orders[NO]
    assert order.filled_qty == 7
    assert order.fill_notional == 3 * 70_000 + 2 * 70_400 + 2 * 70_100
    book.apply(execution(2, 2, 5, 70_200))  # arrives at last: already counted
    assert order.filled_qty == 7 and book.anomalies == ()
    book.apply(execution(4, 3, 10))
    assert order.state is OrderState.FILLED


def test_a_fill_partly_reported_before_counts_the_rest_and_is_flagged() -> None:
    book = book_of()
    book.apply(execution(1, 3, 3))
    book.apply(execution(2, 3, 5, 70_500))  # claims shares 3-5: share 3 was counted
    order = book.orders[NO]
    assert order.filled_qty == 5
    assert order.fill_notional == 3 * 70_000 + 2 * 70_500
    [anomaly] = book.anomalies
    assert anomaly.kind == AnomalyKind.FILL_OVERLAP and anomaly.ord_no == NO


def test_duplicates_and_conflicts_are_judged_by_fill_id_first() -> None:
    book = book_of()
    book.apply(execution(1, 3, 3))
    before = book.snapshot()
    book.apply(execution(1, 3, 3))  # redelivered
    assert book.snapshot() == before
    with pytest.raises(InvalidEvent):
        book.apply(execution(1, 2, 3))  # the same id, other contents
    assert book.snapshot() == before


@pytest.mark.parametrize(
    "fill",
    [
        execution(1, 4, 3),  # cum below the fill's own quantity
        execution(1, 4, 11),  # beyond the order
        ev.OrderFilled(NO, "E1", 2, 70_000, 0),
        ev.OrderFilled(NO, "E1", 2, 70_000, "2"),  # type: ignore[arg-type]
    ],
)
def test_an_impossible_position_is_refused_and_changes_nothing(fill: ev.OrderFilled) -> None:
    book = book_of()
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.apply(fill)
    assert book.snapshot() == before


def test_a_refused_positioned_fill_leaves_the_positions_as_they_were() -> None:
    book = book_of()
    book.apply(ev.OrderFilled(NO, "U1", 8, 70_000))  # not positioned
    book.apply(execution(1, 1, 1))  # positioned: share 1 (the two kinds are not deduplicated)
    before = book.snapshot()
    with pytest.raises(InvalidEvent):
        book.apply(execution(2, 5, 6))  # shares 2-6: 5 more would overfill
    assert book.snapshot() == before


def test_positions_survive_serialisation_and_replay() -> None:
    book = book_of()
    for fill in (execution(2, 2, 5), top_up(5, 70_000), execution(1, 3, 3)):
        book.apply(fill)
    text = [e.to_dict() for e in book.events]
    assert {"cum_qty": 5}.items() <= text[2].items()
    replayed = OrderBook.replay([ev.from_dict(d) for d in text])
    assert replayed.snapshot() == book.snapshot()
    book.apply(execution(1, 3, 3))
    replayed.apply(execution(1, 3, 3))
    assert replayed.snapshot() == book.snapshot()


@st.composite
def reports(draw: st.DrawFn) -> tuple[int, list[int], list[ev.OrderFilled]]:
    """An order's executions, reported per execution and as running totals, shuffled, doubled."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=8))
    qty = sum(sizes) + draw(st.integers(0, 5))
    cums = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    events = [
        execution(i, size, cum) for i, (size, cum) in enumerate(zip(sizes, cums, strict=True))
    ]
    seen = draw(st.lists(st.sampled_from(cums), max_size=4))  # reconciliations: "N filled"
    events += [top_up(n, 70_000) for n in seen]
    events += draw(st.lists(st.sampled_from(events), max_size=4))  # redeliveries
    return qty, cums, draw(st.permutations(events))


@given(reports())
def test_every_share_is_counted_once_whatever_reports_it_and_in_any_order(
    case: tuple[int, list[int], list[ev.OrderFilled]],
) -> None:
    qty, cums, events = case
    book = book_of(qty)
    for event in events:
        book.apply(event)
        order = book.orders[NO]
        assert order.filled_qty <= cums[-1]
        assert order.filled_qty + order.cancelled_qty + order.leaves_qty == qty
    assert book.orders[NO].filled_qty == cums[-1]
    assert OrderBook.replay(book.events).snapshot() == book.snapshot()
