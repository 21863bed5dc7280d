"""Broker facts (and the engine's own cancel reservations) as frozen, serialisable values.

Every event has a keyword ``ts`` (the time the fact happened, passed in by the caller: the core
never reads a clock). ``to_dict()`` gives a JSON-ready dict and :func:`from_dict` reads it back.
Values are checked when the book applies an event, so that a malformed event is refused with
:class:`engine.InvalidEvent` and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypeAlias

import attrs

from engine._fastinit import fast_init
from engine.errors import EventDecodeError
from engine.states import Side

__all__ = [
    "CancelAccepted",
    "CancelConfirmed",
    "CancelOutcomeUnknown",
    "CancelRejected",
    "CancelRequested",
    "Event",
    "ModifyAccepted",
    "ModifyRejected",
    "ModifyRequested",
    "OrderAccepted",
    "OrderAmended",
    "OrderConfirmed",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "from_dict",
]


def _ts() -> Any:
    return attrs.field(default=None, kw_only=True)


class _Serialisable:
    """Mixin giving every event ``to_dict``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``type`` names the class; ``ts`` is ISO 8601 or None)."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:  # once per class: attrs.fields is slow on a per-event path
            names = _FIELD_NAMES[cls] = tuple(f.name for f in attrs.fields(cls))  # type: ignore[arg-type]
        out: dict[str, Any] = {"type": cls.__name__}
        for name in names:
            value = getattr(self, name)
            if isinstance(value, Side):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@attrs.frozen
class OrderAccepted(_Serialisable):
    """접수 of a new order: ``qty`` shares of ``stk_cd`` at ``price`` KRW (0 for market)."""

    ord_no: str
    stk_cd: str
    side: Side
    qty: int
    price: int
    exchange: str = "KRX"
    ts: datetime | None = _ts()


@attrs.frozen
class OrderConfirmed(_Serialisable):
    """확인 of the order (or a status report that says it is open)."""

    ord_no: str
    ts: datetime | None = _ts()


@attrs.frozen
class OrderFilled(_Serialisable):
    """체결: ``qty`` shares executed at ``price``; ``fill_id`` makes redelivery idempotent.

    ``cum_qty``, when the broker reports it (Kiwoom's 911), is the order's filled quantity after
    this fill: the fill is then the shares ``cum_qty - qty + 1`` to ``cum_qty`` of the order, and
    the book counts only those of them not already counted. So the same shares reported by two
    sources under different ids (an execution on the real-time feed, a reconciliation's fill
    "all of 1 to N", with ``qty == cum_qty == N``) are counted once, whatever the order of
    arrival. Fills without ``cum_qty`` are not positioned: they are never deduplicated against
    positioned ones, so do not mix the two kinds on one order.
    """

    ord_no: str
    fill_id: str
    qty: int
    price: int
    cum_qty: int | None = None
    ts: datetime | None = _ts()


@attrs.frozen
class OrderRejected(_Serialisable):
    """거부: the broker or the venue refused the order; nothing of it ever traded."""

    ord_no: str
    code: str = ""
    message: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class CancelRequested(_Serialisable):
    """The engine reserved ``qty`` shares of ``orig_ord_no`` for a cancel (0 = all that is open).

    Written by :meth:`engine.OrderBook.request_cancel` so that a replay restores pending
    reservations; it is a record of our own request, not a broker fact.
    """

    orig_ord_no: str
    request_id: str
    qty: int
    ts: datetime | None = _ts()


@attrs.frozen
class CancelOutcomeUnknown(_Serialisable):
    """The answer to cancel request ``request_id`` of ``orig_ord_no`` was lost.

    Recorded by a broker adapter when the request may have reached the broker but no answer
    came (a timeout, a reset, a 5xx), or when a restart finds a request that was reserved (and
    perhaps sent) by a process that is gone. The reservation stays, and no new cancel of the
    order is allowed (``OUTCOME_UNKNOWN``) until a broker fact numbers, confirms or rejects the
    request: reconciliation settles it on evidence. It is a record of our own, not a broker fact.
    """

    orig_ord_no: str
    request_id: str
    ts: datetime | None = _ts()


@attrs.frozen
class CancelAccepted(_Serialisable):
    """The broker took a cancel of ``orig_ord_no`` and numbered it ``ord_no`` (``qty`` 0 = all).

    ``request_id`` (optional) names the engine's request it answers; without it the oldest
    unanswered request of that order with the same size is taken.
    """

    ord_no: str
    orig_ord_no: str
    qty: int
    request_id: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class CancelConfirmed(_Serialisable):
    """확인 of cancel ``ord_no``: ``qty`` shares of ``orig_ord_no`` really cancelled (0 = all)."""

    ord_no: str
    orig_ord_no: str
    qty: int
    request_id: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class CancelRejected(_Serialisable):
    """The broker refused a cancel of ``orig_ord_no`` (``code`` such as ``RC4033``).

    ``ord_no`` is the cancel's own number when it had one; ``request_id`` (optional) names the
    engine's request. A rejection moves no shares: it only releases the reservation. Give one of
    the two whenever it is known: a rejection with neither goes to the oldest pending request of
    the order and cannot be told apart from its own redelivery.
    """

    orig_ord_no: str
    code: str = ""
    message: str = ""
    ord_no: str = ""
    request_id: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class OrderAmended(_Serialisable):
    """정정: ``qty`` shares of ``orig_ord_no`` now live on as order ``ord_no`` at ``price``.

    ``qty`` 0 means all that was still open (as ``mdfy_qty "0"``).
    """

    ord_no: str
    orig_ord_no: str
    qty: int
    price: int
    ts: datetime | None = _ts()


@attrs.frozen
class ModifyRequested(_Serialisable):
    """The engine reserved ``qty`` shares of ``orig_ord_no`` for a modify (kt10002) to ``price``
    (0 = all that is open).

    Written by :meth:`engine.OrderBook.request_modify` before the modify is sent, so that a
    replay restores the reservation: no cancel may take shares a pending modify is about to move.
    The modify's :class:`OrderAmended` (or :class:`ModifyRejected`) releases it.
    """

    orig_ord_no: str
    request_id: str
    qty: int
    price: int
    ts: datetime | None = _ts()


@attrs.frozen
class ModifyAccepted(_Serialisable):
    """The broker took a modify of ``orig_ord_no`` and gave it the new order number ``ord_no``.

    No shares move yet (they move with the modify's :class:`OrderAmended`); the number lets
    the amendment be matched to its request. ``request_id`` (optional) names the request.
    """

    ord_no: str
    orig_ord_no: str
    qty: int
    request_id: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class ModifyRejected(_Serialisable):
    """The broker or the venue refused a modify of ``orig_ord_no``: its reservation is released.

    ``ord_no`` is the modify's own number when it had one, ``request_id`` the engine's request;
    without either the oldest pending modify of the order is taken.
    """

    orig_ord_no: str
    code: str = ""
    message: str = ""
    ord_no: str = ""
    request_id: str = ""
    ts: datetime | None = _ts()


@attrs.frozen
class OrderExpired(_Serialisable):
    """The venue cancelled what was still open (IOC/FOK remainder, end of day)."""

    ord_no: str
    ts: datetime | None = _ts()


Event: TypeAlias = (
    OrderAccepted
    | OrderConfirmed
    | OrderFilled
    | OrderRejected
    | CancelRequested
    | CancelOutcomeUnknown
    | CancelAccepted
    | CancelConfirmed
    | CancelRejected
    | OrderAmended
    | OrderExpired
    | ModifyRequested
    | ModifyAccepted
    | ModifyRejected
)

EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.__name__: cls
    for cls in (
        OrderAccepted,
        OrderConfirmed,
        OrderFilled,
        OrderRejected,
        CancelRequested,
        CancelAccepted,
        CancelConfirmed,
        CancelRejected,
        OrderAmended,
        OrderExpired,
        CancelOutcomeUnknown,
        ModifyRequested,
        ModifyAccepted,
        ModifyRejected,
    )
}
for _cls in EVENT_TYPES.values():  # events are built per fact: a cheaper, equivalent __init__
    fast_init(_cls)


def from_dict(data: dict[str, Any]) -> Event:
    """Read an event back from ``to_dict`` output; raise :class:`EventDecodeError` if malformed."""
    if not isinstance(data, dict):
        raise EventDecodeError(f"an event must be a dict, not {type(data).__name__}")
    name = data.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event type {name!r}")
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise EventDecodeError(f"{name}: unknown fields {sorted(map(repr, unknown))}")
    kwargs: dict[str, Any] = {}
    for fname, field in fields.items():
        if fname not in data:
            if field.default is attrs.NOTHING:
                raise EventDecodeError(f"{name}: missing field {fname!r}")
            continue
        value = data[fname]
        if fname == "ts":
            if value is not None:
                if not isinstance(value, str):
                    raise EventDecodeError(f"{name}: ts must be an ISO 8601 string or null")
                try:
                    value = datetime.fromisoformat(value)
                except ValueError as exc:
                    raise EventDecodeError(f"{name}: bad ts {value!r}") from exc
        elif fname == "side":
            try:
                value = Side(value)
            except ValueError as exc:
                raise EventDecodeError(f"{name}: bad side {value!r}") from exc
        elif fname in ("qty", "price"):
            if type(value) is not int:
                raise EventDecodeError(f"{name}: {fname} must be an integer, not {value!r}")
        elif fname == "cum_qty":
            if value is not None and type(value) is not int:
                raise EventDecodeError(f"{name}: {fname} must be an integer or null, not {value!r}")
        elif not isinstance(value, str):
            raise EventDecodeError(f"{name}: {fname} must be a string, not {value!r}")
        kwargs[fname] = value
    return cls(**kwargs)
