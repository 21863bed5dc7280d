"""pandas DataFrames of a book's orders and of events (``OrderBook.to_frame``/``events_frame``).

pandas is imported only when a frame is asked for: the core needs nothing beyond its own
dependencies, and a missing pandas gives :class:`MissingExtra` naming the extra that brings it.
Timestamps are in Korea time (``Asia/Seoul``); states, sides and event types are categoricals.
Like the rest of the core this reads no clock: every time comes from the events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engine import events as ev
from engine.order import Order
from engine.states import OrderState, Side

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EVENT_COLUMNS",
    "ORDER_COLUMNS",
    "MissingExtra",
    "events_frame",
    "orders_frame",
    "require_pandas",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: Korea time, the zone of every timestamp column.
TZ = "Asia/Seoul"

#: The columns of :func:`orders_frame` (the index is ``ord_no``).
ORDER_COLUMNS = (
    "stk_cd",
    "side",
    "exchange",
    "qty",
    "price",
    "filled_qty",
    "cancelled_qty",
    "replaced_qty",
    "leaves_qty",
    "pending_cancel_qty",
    "cancel_all_pending",
    "state",
    "state_label",
    "confirmed",
    "fill_notional",
    "avg_fill_price",
    "successor",
    "origin",
    "accepted_at",
    "updated_at",
)

#: The columns of :func:`events_frame` (one row per event; a field an event lacks is missing).
EVENT_COLUMNS = (
    "ts",
    "type",
    "ord_no",
    "orig_ord_no",
    "stk_cd",
    "side",
    "qty",
    "price",
    "cum_qty",
    "fill_id",
    "request_id",
    "code",
    "message",
    "exchange",
)

_STATES = [s.name for s in OrderState]
_SIDES = [s.name for s in Side]
_TYPES = list(ev.EVENT_TYPES)


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require_pandas(what: str = "DataFrames") -> Any:
    """Import and return pandas, or raise :class:`MissingExtra` with a one-line install hint."""
    try:
        import pandas
    except ImportError:
        raise MissingExtra(
            f"{what} needs pandas, in the [report] and [sweep] extras: "
            "pip install 'kiwoom-order-engine[report]'"
        ) from None
    return pandas


def _times(events: Iterable[ev.Event]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the first and the last event time of every order number the events name."""
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for event in events:
        ts = event.ts
        if ts is None:
            continue
        # An event about an existing order names it orig_ord_no (cancels, modifies); a modify's
        # OrderAmended also starts the new order ord_no.
        original: str = getattr(event, "orig_ord_no", "")
        own: str = getattr(event, "ord_no", "")
        if isinstance(event, ev.OrderAmended):
            numbers: tuple[str, ...] = (own, original)
        else:
            numbers = (original or own,)
        for no in numbers:
            first.setdefault(no, ts)
            last[no] = ts
    return first, last


def orders_frame(orders: Mapping[str, Order], events: Iterable[ev.Event] = ()) -> pd.DataFrame:
    """Return one row per order, indexed by ``ord_no``, in the book's order.

    ``accepted_at`` and ``updated_at`` (the first and the last event naming the order, Korea
    time) come from ``events`` (the book's journal); they are missing when no event is given.
    """
    pandas = require_pandas("OrderBook.to_frame()")
    first, last = _times(events)
    rows: dict[str, list[Any]] = {name: [] for name in ORDER_COLUMNS}
    index: list[str] = []
    for no, o in orders.items():
        index.append(no)
        avg = o.avg_fill_price
        values = (
            o.stk_cd,
            o.side.name,
            o.exchange,
            o.qty,
            o.price,
            o.filled_qty,
            o.cancelled_qty,
            o.replaced_qty,
            o.leaves_qty,
            o.pending_cancel_qty,
            o.cancel_all_pending,
            o.state.name,
            o.state.label,
            o.confirmed,
            o.fill_notional,
            None if avg is None else float(avg),
            o.successor,
            o.origin,
            first.get(no),
            last.get(no),
        )
        for name, value in zip(ORDER_COLUMNS, values, strict=True):
            rows[name].append(value)
    frame = pandas.DataFrame(rows, index=pandas.Index(index, name="ord_no", dtype="string"))
    typed: pd.DataFrame = _typed(pandas, frame, _ORDER_DTYPES)
    return typed


def events_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """Return one row per event, in the order given (``type`` names the event class)."""
    pandas = require_pandas("events_frame()")
    rows: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
    for event in events:
        data = event.to_dict()
        data["ts"] = event.ts
        for name in EVENT_COLUMNS:
            rows[name].append(data.get(name))
    typed: pd.DataFrame = _typed(pandas, pandas.DataFrame(rows), _EVENT_DTYPES)
    return typed


_ORDER_DTYPES: dict[str, Any] = {
    "stk_cd": "string",
    "side": ("category", _SIDES),
    "exchange": "string",
    "qty": "int64",
    "price": "int64",
    "filled_qty": "int64",
    "cancelled_qty": "int64",
    "replaced_qty": "int64",
    "leaves_qty": "int64",
    "pending_cancel_qty": "int64",
    "cancel_all_pending": "bool",
    "state": ("category", _STATES),
    "state_label": ("category", [s.label for s in OrderState]),
    "confirmed": "bool",
    "fill_notional": "int64",
    "avg_fill_price": "float64",
    "successor": "string",
    "origin": "string",
    "accepted_at": "ts",
    "updated_at": "ts",
}

_EVENT_DTYPES: dict[str, Any] = {
    "ts": "ts",
    "type": ("category", _TYPES),
    "ord_no": "string",
    "orig_ord_no": "string",
    "stk_cd": "string",
    "side": ("category", _SIDES),
    "qty": "Int64",
    "price": "Int64",
    "cum_qty": "Int64",
    "fill_id": "string",
    "request_id": "string",
    "code": "string",
    "message": "string",
    "exchange": "string",
}


def _typed(pd: Any, frame: Any, dtypes: dict[str, Any]) -> Any:
    """Give every column of ``frame`` its dtype (timestamps converted to Korea time)."""
    for name, dtype in dtypes.items():
        column = frame[name]
        if dtype == "ts":
            frame[name] = pd.to_datetime(column, utc=True).dt.tz_convert(TZ)
        elif isinstance(dtype, tuple):
            frame[name] = pd.Categorical(column, categories=dtype[1], ordered=name == "state")
        else:
            frame[name] = column.astype(dtype)
    return frame
