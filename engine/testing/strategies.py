"""Hypothesis strategies for the engine's events, streams and cancel quantities.

Import explicitly (``from engine.testing import strategies as es``); they need ``hypothesis``.
Every factory takes keyword arguments, returns a ``SearchStrategy`` and draws the simplest cases
first (small quantities, few fills, in-order delivery) so that failures shrink well.

The streams are generated from a small exchange truth, so they never contradict themselves:
applied to an :class:`engine.OrderBook` in any delivery order they are taken without error.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from engine import events as ev
from engine.decision import MAX_QTY_DIGITS
from engine.states import Side

__all__ = [
    "cancel_quantities",
    "interleaved_streams",
    "invalid_cancel_quantities",
    "order_accepted",
    "order_event_streams",
    "order_numbers",
    "stock_codes",
]

SYMBOLS = ("005930", "000660", "035420", "051910", "005380", "068270")


def order_numbers(*, low: int = 1, high: int = 9_999_999) -> st.SearchStrategy[str]:
    """Kiwoom order numbers: 7-digit zero-padded strings (``"0000140"``)."""
    return st.integers(low, high).map(lambda n: f"{n:07d}")


def stock_codes() -> st.SearchStrategy[str]:
    """Six-digit stock codes, the common large caps first."""
    return st.sampled_from(SYMBOLS)


def cancel_quantities(
    *, max_qty: int = 20, strings: bool | None = None, allow_all: bool = True
) -> st.SearchStrategy[int | str]:
    """Valid cancel quantities in both forms: ints and kt10003 strings; ``0``/``"0"`` = all.

    ``strings`` True gives only strings, False only ints, None both. ``allow_all`` False leaves
    out the cancel-all form.
    """
    low = 0 if allow_all else 1
    ints = st.integers(low, max_qty)
    if strings is False:
        return ints
    texts = ints.map(str)
    if strings is True:
        return texts
    return st.one_of(ints, texts)


def invalid_cancel_quantities() -> st.SearchStrategy[Any]:
    """Quantities the engine must refuse with INVALID_QUANTITY (negative, fractional, text...)."""
    too_long = "1" * (MAX_QTY_DIGITS + 1)
    return st.one_of(
        st.integers(max_value=-1),
        st.floats(allow_nan=True),
        st.sampled_from(["", " ", "x", "-1", "+5", " 5", "2.5", "1e3", too_long, "５"]),
        st.just(None),
        st.booleans(),
        st.integers(min_value=10**MAX_QTY_DIGITS),
    )


def order_accepted(
    *,
    ord_no: st.SearchStrategy[str] | str | None = None,
    max_qty: int = 100,
    exchange: str = "KRX",
) -> st.SearchStrategy[ev.OrderAccepted]:
    """접수 events of new limit or market orders (``price`` 0 = market)."""
    nos = (
        order_numbers()
        if ord_no is None
        else st.just(ord_no)
        if isinstance(ord_no, str)
        else ord_no
    )
    return st.builds(
        ev.OrderAccepted,
        ord_no=nos,
        stk_cd=stock_codes(),
        side=st.sampled_from(Side),
        qty=st.integers(1, max_qty),
        price=st.one_of(st.integers(1, 2_000).map(lambda t: t * 100), st.just(0)),
        exchange=st.just(exchange),
    )


@st.composite
def order_event_streams(
    draw: st.DrawFn,
    *,
    ord_no: str | None = None,
    max_qty: int = 20,
    max_steps: int = 8,
    reorder: bool = True,
    duplicates: bool = True,
    cancel_prefix: str = "9",
) -> list[ev.Event]:
    """A stream of broker facts for one order, as an exchange would produce them.

    Draws the exchange's truth step by step (fills up to what is open, cancel confirmations of
    part or all of what is open, a venue expiry, a modify into a successor, a rejection before
    anything happened), then, if asked, redelivers some events (``duplicates``) and shuffles the
    delivery (``reorder``). Cancel and modify numbers are ``cancel_prefix``, the order number's
    last six digits and a two-digit step: unique within and across streams of distinct orders.
    """
    no = ord_no if ord_no is not None else draw(order_numbers(high=8_999_999))
    accepted = draw(order_accepted(ord_no=no, max_qty=max_qty))
    truth: list[ev.Event] = [accepted]
    leaves = accepted.qty
    if draw(st.booleans()):
        truth.append(ev.OrderConfirmed(no))
    if draw(st.integers(0, 9)) == 0:
        truth.append(ev.OrderRejected(no, code="RC4025", message="rejected"))
        leaves = 0
    for serial in range(1, draw(st.integers(0, max_steps)) + 1):
        if leaves == 0:
            break
        action = draw(st.sampled_from(("fill", "fill", "cancel", "expire", "amend")))
        if action == "fill":
            qty = draw(st.integers(1, leaves))
            price = accepted.price or draw(st.integers(1, 2_000)) * 100
            truth.append(ev.OrderFilled(no, f"{serial}", qty, price))
            leaves -= qty
        elif action == "cancel":
            qty = draw(st.integers(0, leaves))
            cno = f"{cancel_prefix}{no[1:]}{serial:02d}"
            truth.append(ev.CancelAccepted(cno, no, qty))
            truth.append(ev.CancelConfirmed(cno, no, qty or leaves))
            leaves -= qty or leaves
        elif action == "expire":
            truth.append(ev.OrderExpired(no))
            leaves = 0
        else:
            qty = draw(st.integers(1, leaves))
            new_no = f"{cancel_prefix}{no[1:]}{serial:02d}"
            truth.append(ev.OrderAmended(new_no, no, qty, accepted.price))
            leaves -= qty
    delivered = list(truth)
    if duplicates and len(truth) > 1:
        again = draw(st.lists(st.sampled_from(truth[1:]), max_size=3))
        delivered.extend(again)
    if reorder and len(delivered) > 1:
        delivered = draw(st.permutations(delivered))
    return delivered


@st.composite
def interleaved_streams(
    draw: st.DrawFn,
    *,
    min_orders: int = 1,
    max_orders: int = 5,
    max_qty: int = 20,
    reorder: bool = True,
    duplicates: bool = True,
) -> list[ev.Event]:
    """Streams of several orders (distinct numbers), interleaved as one delivery sequence.

    With ``reorder`` False each order's own events keep their exchange order; the orders are
    still interleaved with each other.
    """
    count = draw(st.integers(min_orders, max_orders))
    numbers = draw(
        st.lists(order_numbers(high=8_999_999), min_size=count, max_size=count, unique=True)
    )
    queues = [
        draw(
            order_event_streams(ord_no=no, max_qty=max_qty, reorder=reorder, duplicates=duplicates)
        )
        for no in numbers
    ]
    merged: list[ev.Event] = []
    while any(queues):
        live = [q for q in queues if q]
        queue = live[draw(st.integers(0, len(live) - 1))]
        merged.append(queue.pop(0))
    return merged
