"""The order book: applies events to orders, decides and reserves cancels. Pure, deterministic."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, overload

from engine import events as ev
from engine.decision import CancelDecision, CancelRequest, ModifyRequest, parse_cancel_qty
from engine.errors import (
    CancelRefused,
    InvalidEvent,
    InvalidTime,
    ModifyRefused,
    ParkingFull,
    UnknownOrder,
)
from engine.lifecycle import ALLOWED, AMEND, CANCEL, CONFIRM, EXPIRE, FILL, REJECT, STATES, TRIGGERS
from engine.order import (
    CANCELLED_I,
    CONFIRMED_CANCEL,
    FILL_MASK,
    FILLED_I,
    PARTIAL_I,
    PENDING,
    REJECTED_CANCEL,
    REJECTED_I,
    REPLACED_I,
    TERMINAL_MASK,
    Anomaly,
    CancelRecord,
    FillPositions,
    Order,
    derive_state,
)
from engine.states import Refusal, Side

__all__ = ["AnomalyKind", "OrderBook", "SessionCalendar"]

_MAX_QTY = 10**12 - 1


class SessionCalendar(Protocol):
    """Anything that says whether a venue accepts cancels at an instant (see engine.sessions)."""

    def accepts_cancel(self, exchange: str, at: datetime) -> bool:
        """Return True when ``exchange`` accepts cancels at ``at`` (a timezone-aware time)."""
        ...


class AnomalyKind:
    """The kinds of :class:`engine.order.Anomaly` the book records (plain strings)."""

    CANCEL_CLAMPED = "CANCEL_CLAMPED"  # a confirmation reported more than was open
    CANCEL_OVER_REQUEST = "CANCEL_OVER_REQUEST"  # a confirmation cancelled more than was asked
    LATE_FILL = "LATE_FILL"  # a fill took shares back from C
    LATE_AMEND = "LATE_AMEND"  # a modify took shares back from C
    AMEND_CLAMPED = "AMEND_CLAMPED"  # a modify reported more than was open
    FILL_OVERLAP = "FILL_OVERLAP"  # an execution of which some shares were reported before
    UNREQUESTED_CANCEL = "UNREQUESTED_CANCEL"  # a cancel this book never requested
    UNMATCHED_CANCEL_REJECT = "UNMATCHED_CANCEL_REJECT"  # a rejection with nothing to release
    UNMATCHED_MODIFY_REJECT = "UNMATCHED_MODIFY_REJECT"  # a modify rejection, nothing to release
    PARKED_EVENT_REFUSED = "PARKED_EVENT_REFUSED"  # a parked event contradicted its order


class _View(Sequence[Any]):
    """A read-only view of a list (no copy)."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<{len(self._items)} items>"


def _bad(event: object, message: str, ord_no: str = "") -> InvalidEvent:
    return InvalidEvent(f"{type(event).__name__}: {message}", event=event, ord_no=ord_no)


_ID, _TEXT, _QTY, _AMOUNT, _SIDE, _OPT_QTY = range(6)

#: What each event's fields must hold: _ID a non-empty str, _TEXT any str, _QTY an int from 1,
#: _AMOUNT an int from 0 (a price, or a quantity where 0 means all), both of 12 digits at most;
#: _OPT_QTY None or a _QTY.
_SCHEMA: dict[type, tuple[tuple[str, int], ...]] = {
    ev.OrderAccepted: (
        ("ord_no", _ID),
        ("stk_cd", _ID),
        ("side", _SIDE),
        ("qty", _QTY),
        ("price", _AMOUNT),
        ("exchange", _ID),
    ),
    ev.OrderConfirmed: (("ord_no", _ID),),
    ev.OrderFilled: (
        ("ord_no", _ID),
        ("fill_id", _ID),
        ("qty", _QTY),
        ("price", _AMOUNT),
        ("cum_qty", _OPT_QTY),
    ),
    ev.OrderRejected: (("ord_no", _ID), ("code", _TEXT), ("message", _TEXT)),
    ev.CancelRequested: (("orig_ord_no", _ID), ("request_id", _ID), ("qty", _AMOUNT)),
    ev.CancelAccepted: (
        ("ord_no", _ID),
        ("orig_ord_no", _ID),
        ("qty", _AMOUNT),
        ("request_id", _TEXT),
    ),
    ev.CancelConfirmed: (
        ("ord_no", _ID),
        ("orig_ord_no", _ID),
        ("qty", _AMOUNT),
        ("request_id", _TEXT),
    ),
    ev.CancelRejected: (
        ("orig_ord_no", _ID),
        ("code", _TEXT),
        ("message", _TEXT),
        ("ord_no", _TEXT),
        ("request_id", _TEXT),
    ),
    ev.OrderAmended: (
        ("ord_no", _ID),
        ("orig_ord_no", _ID),
        ("qty", _AMOUNT),
        ("price", _AMOUNT),
    ),
    ev.OrderExpired: (("ord_no", _ID),),
    ev.CancelOutcomeUnknown: (("orig_ord_no", _ID), ("request_id", _ID)),
    ev.ModifyRequested: (
        ("orig_ord_no", _ID),
        ("request_id", _ID),
        ("qty", _AMOUNT),
        ("price", _AMOUNT),
    ),
    ev.ModifyAccepted: (
        ("ord_no", _ID),
        ("orig_ord_no", _ID),
        ("qty", _AMOUNT),
        ("request_id", _TEXT),
    ),
    ev.ModifyRejected: (
        ("orig_ord_no", _ID),
        ("code", _TEXT),
        ("message", _TEXT),
        ("ord_no", _TEXT),
        ("request_id", _TEXT),
    ),
}
_WHAT = (
    "a non-empty string",
    "a string",
    "an int from 1 to 12 digits",
    "an int from 0 to 12 digits",
    "a Side",
    "None or an int from 1 to 12 digits",
)


def _validate(event: object, schema: tuple[tuple[str, int], ...]) -> None:
    """Raise InvalidEvent unless every field of ``event`` holds what ``schema`` says."""
    for name, kind in schema:
        value = getattr(event, name)
        if kind == _ID:
            ok = type(value) is str and value != ""
        elif kind == _TEXT:
            ok = type(value) is str
        elif kind == _SIDE:
            ok = type(value) is Side
        elif kind == _OPT_QTY:
            ok = value is None or (type(value) is int and 0 < value <= _MAX_QTY)
        else:
            ok = type(value) is int and (kind == _AMOUNT or value > 0) and 0 <= value <= _MAX_QTY
        if not ok:
            raise _bad(event, f"{name} must be {_WHAT[kind]}, not {value!r}")
    ts = getattr(event, "ts", None)
    if ts is not None and not isinstance(ts, datetime):
        raise _bad(event, f"ts must be a datetime or None, not {ts!r}")


_TESTS = (
    "type({v}) is str and {v} != ''",  # _ID
    "type({v}) is str",  # _TEXT
    "type({v}) is int and 0 < {v} <= MAX",  # _QTY
    "type({v}) is int and 0 <= {v} <= MAX",  # _AMOUNT
    "type({v}) is Side",  # _SIDE
    "({v} is None or (type({v}) is int and 0 < {v} <= MAX))",  # _OPT_QTY
)


_Handler = Callable[["OrderBook", Any], "Order | None"]


def _compile(cls: type, handler: _Handler) -> _Handler:
    """Return ``handler`` behind the check of ``_SCHEMA[cls]`` (what :func:`_validate` checks).

    One straight expression per event class instead of a loop over the fields, in the same
    function as the call of the handler: the book's hot path. When it fails,
    :func:`_validate` finds the field and raises the precise error.
    """
    schema = _SCHEMA[cls]
    names = [f"f{i}" for i in range(len(schema))]
    loads = "".join(f"    {v} = e.{name}\n" for v, (name, _) in zip(names, schema, strict=True))
    tests = [_TESTS[kind].format(v=v) for v, (_, kind) in zip(names, schema, strict=True)]
    tests.append("(ts is None or isinstance(ts, datetime))")
    source = (
        f"def enter(book, e):\n{loads}    ts = e.ts\n"
        f"    if not ({' and '.join(tests)}):\n"
        "        validate(e, schema)  # raises, naming the field\n"
        "    return handler(book, e)\n"
    )
    scope: dict[str, Any] = {
        "MAX": _MAX_QTY,
        "Side": Side,
        "datetime": datetime,
        "validate": _validate,
        "schema": schema,
        "handler": handler,
    }
    exec(compile(source, f"<checked {cls.__name__}>", "exec"), scope)
    enter: _Handler = scope["enter"]
    return enter


class OrderBook:
    """Every order the engine knows, changed only by :meth:`apply`.

    ``apply`` takes broker facts (``engine.events``) and either changes the book, parks the event
    until its order appears, or raises :class:`engine.InvalidEvent` and changes nothing.
    ``decide_cancel`` is pure; ``request_cancel`` reserves shares by applying a
    :class:`engine.events.CancelRequested`, so :meth:`replay` of :attr:`events` rebuilds an
    identical book, pending reservations included.

    ``journal`` True keeps those events in :attr:`events`; False keeps none (for memory-bound
    backtests); a callable receives each taken event instead (a file writer, say), in the order
    :meth:`replay` needs, and :attr:`events` stays empty. It is called once the book has taken
    the event, so it must not raise (write to a file, and check the file afterwards).

    A book has one writer: it is not thread-safe. Share it between threads only behind one lock
    (as :class:`adapters.kiwoom.KiwoomBroker` does with its ``lock``).
    """

    __slots__ = (
        "_anomalies",
        "_arrivals",
        "_events",
        "_orders",
        "_parked",
        "_parked_count",
        "_record",
        "_request_seq",
        "_sink",
        "calendar",
        "max_parked",
    )

    def __init__(
        self,
        *,
        calendar: SessionCalendar | None = None,
        max_parked: int = 10_000,
        journal: bool | Callable[[ev.Event], object] = True,
    ) -> None:
        if type(max_parked) is not int or max_parked < 0:
            raise ValueError(f"max_parked must be a non-negative int, not {max_parked!r}")
        if not (type(journal) is bool or callable(journal)):
            raise ValueError(f"journal must be True, False or a callable, not {journal!r}")
        self.calendar = calendar
        self.max_parked = max_parked
        self._orders: dict[str, Order] = {}
        self._events: list[ev.Event] = []
        self._parked: dict[str, list[tuple[int, ev.Event]]] = {}
        self._parked_count = 0
        self._arrivals = 0
        self._anomalies: list[Anomaly] = []
        self._request_seq = 0
        # Where taken events go: the book's own list, a caller's sink (a file, a counter), or
        # nowhere. ``_record`` is False while parked events are released (taken on arrival).
        self._sink: Callable[[ev.Event], object] = (
            self._events.append if journal is True or journal is False else journal
        )
        self._record = journal is not False

    # -- reading -------------------------------------------------------------------------------
    @property
    def orders(self) -> Mapping[str, Order]:
        """Return a read-only mapping of order number to order."""
        return MappingProxyType(self._orders)

    @property
    def events(self) -> Sequence[ev.Event]:
        """Return the events the book took (applied or parked), in arrival order (no copy)."""
        return _View(self._events)

    @property
    def parked(self) -> tuple[ev.Event, ...]:
        """Return the events waiting for an order the book does not know yet, in arrival order."""
        waiting = [item for items in self._parked.values() for item in items]
        waiting.sort(key=lambda item: item[0])
        return tuple(e for _, e in waiting)

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        """Return what the book accepted but flagged for reconciliation, oldest first."""
        return tuple(self._anomalies)

    def get(self, ord_no: str) -> Order:
        """Return the order numbered ``ord_no``; raise :class:`engine.UnknownOrder` (a KeyError)."""
        try:
            return self._orders[ord_no]
        except (KeyError, TypeError):
            raise UnknownOrder(ord_no) from None

    def __contains__(self, ord_no: object) -> bool:
        return type(ord_no) is str and ord_no in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def snapshot(self) -> dict[str, Any]:
        """Return the whole book as plain data, for comparing books (replay, reconciliation)."""
        return {
            "orders": {k: o.snapshot() for k, o in self._orders.items()},
            "parked": [e.to_dict() for e in self.parked],
            "anomalies": [(a.kind, a.ord_no, a.detail) for a in self._anomalies],
            "request_seq": self._request_seq,
        }

    @classmethod
    def replay(cls, events: Iterable[ev.Event], **kwargs: Any) -> OrderBook:
        """Return a new book (made with ``kwargs``) with ``events`` applied in order."""
        book = cls(**kwargs)
        apply = book.apply
        for event in events:
            apply(event)
        return book

    # -- applying events -----------------------------------------------------------------------
    def apply(self, event: ev.Event) -> Order | None:
        """Apply one event; return the order it changed, or None when the event was parked.

        Raise :class:`engine.InvalidEvent` when the event contradicts the book (the book is then
        exactly as it was) and :class:`engine.ParkingFull` when it would have to be parked but
        the bound is reached. A duplicate of an event already taken changes nothing.
        """
        try:
            enter = _ENTRIES[type(event)]  # the event's checks, then its handler
        except KeyError:
            raise InvalidEvent(f"not an engine event: {event!r}", event=event) from None
        return enter(self, event)

    def _take(self, event: ev.Event) -> None:
        if self._record:
            self._sink(event)

    def _park(self, event: ev.Event, ord_no: str) -> None:
        if self._parked_count >= self.max_parked:
            raise ParkingFull(
                f"{type(event).__name__} for unknown order {ord_no!r} not taken: "
                f"{self._parked_count} events already parked (max_parked={self.max_parked})"
            )
        self._arrivals += 1
        self._parked.setdefault(ord_no, []).append((self._arrivals, event))
        self._parked_count += 1
        self._take(event)

    def _order_or_park(self, event: ev.Event, ord_no: str) -> Order | None:
        """Return the order ``event`` is about, or park the event and return None."""
        order = self._orders.get(ord_no)
        if order is None:
            self._park(event, ord_no)
        return order

    def _release(self, ord_no: str) -> None:
        waiting = self._parked.pop(ord_no, None)
        if not waiting:
            return
        self._parked_count -= len(waiting)
        record, self._record = self._record, False  # taken when parked: not journalled twice
        try:
            for _, event in waiting:
                try:
                    _HANDLERS[type(event)](self, event)  # checked when it was parked
                except InvalidEvent as exc:
                    self._anomaly(AnomalyKind.PARKED_EVENT_REFUSED, ord_no, str(exc), event)
        finally:
            self._record = record

    def _anomaly(self, kind: str, ord_no: str, detail: str, event: object) -> None:
        self._anomalies.append(Anomaly(kind, ord_no, detail, event))

    @staticmethod
    def _edge(event: object, order: Order, trigger: int, dst: int) -> None:
        src = order._st
        if not (ALLOWED[trigger][src] >> dst) & 1:
            raise _bad(
                event,
                f"illegal change for order {order._ord_no}: {TRIGGERS[trigger]} cannot take it "
                f"from {STATES[src].name} to {STATES[dst].name}",
                order._ord_no,
            )

    def _accepted(self, e: ev.OrderAccepted) -> Order:
        order = self._orders.get(e.ord_no)
        if order is not None:
            if order._origin is None and (
                order._stk_cd,
                order._side,
                order._q,
                order._price,
                order._exchange,
            ) == (e.stk_cd, e.side, e.qty, e.price, e.exchange):
                return order  # duplicate delivery
            raise _bad(e, f"conflicts with the known order {order!r}", e.ord_no)
        order = Order(e.ord_no, e.stk_cd, e.side, e.exchange, e.qty, e.price)
        self._orders[e.ord_no] = order
        if self._record:  # _take, inline on the hot paths
            self._sink(e)
        if self._parked:
            self._release(e.ord_no)
        return order

    def _confirmed(self, e: ev.OrderConfirmed) -> Order | None:
        order = self._orders.get(e.ord_no)  # _order_or_park, inline on the hot paths
        if order is None:
            self._park(e, e.ord_no)
            return None
        st = order._st
        if order._confirmed or (TERMINAL_MASK >> st) & 1:
            return order  # duplicate, or stale after the end: ignored
        dst = derive_state(st, True, order._q, order._f, order._c, order._m, order._l)
        if not (ALLOWED[CONFIRM][st] >> dst) & 1:
            self._edge(e, order, CONFIRM, dst)
        order._confirmed = True
        order._st = dst
        if self._record:
            self._sink(e)
        return order

    def _filled(self, e: ev.OrderFilled) -> Order | None:
        ord_no = e.ord_no
        qty = e.qty
        order = self._orders.get(ord_no)  # inlined _order_or_park: fills are the hot path
        if order is None:
            self._park(e, ord_no)
            return None
        fills = order._fills
        packed = qty << 40 | e.price
        if fills is not None:
            seen = fills.get(e.fill_id)
            if seen is not None:
                if seen == packed:
                    return order  # the same fill delivered again
                raise _bad(
                    e,
                    f"fill {e.fill_id!r} of order {ord_no} was {seen >> 40}@{seen & FILL_MASK}, "
                    f"now {qty}@{e.price}: conflicting duplicate",
                    ord_no,
                )
        cum = e.cum_qty
        if cum is not None:  # a positioned fill: count only its shares not counted yet
            if not qty <= cum <= order._q:
                raise _bad(e, f"cum_qty must be an int from qty {qty} to Q {order._q}", ord_no)
            pos = order._pos
            if pos is not None:
                qty = pos.new_in(cum - e.qty, cum)
                if not qty:  # every share of it was reported before (by another source)
                    self._count_fill(e, order, pos, packed, cum, 0)
                    return order
        leaves = order._l
        cancelled = order._c
        late = qty - leaves if qty > leaves else 0
        if late > cancelled or order._st == REJECTED_I:
            raise _bad(
                e,
                f"overfill of order {ord_no} ({order.state.name}): F {order._f} + fill {qty} "
                f"exceeds Q {order._q} - M {order._m}",
                ord_no,
            )
        leaves -= qty - late
        cancelled -= late
        filled = order._f + qty
        st = order._st
        # derive_state, whose first answer is the usual one: shares still open after a fill
        # (the order is not REJECTED here) make it PARTIALLY_FILLED.
        dst = (
            PARTIAL_I
            if leaves > 0
            else derive_state(st, order._confirmed, order._q, filled, cancelled, order._m, leaves)
        )
        if not (ALLOWED[FILL][st] >> dst) & 1:
            self._edge(e, order, FILL, dst)
        order._f = filled
        order._l = leaves
        order._c = cancelled
        order._st = dst
        if cum is not None:
            pos = order._pos
            if pos is None:
                pos = order._pos = FillPositions()
            self._count_fill(e, order, pos, packed, cum, qty)
        else:
            if fills is None:
                order._fills = {e.fill_id: packed}
            else:
                fills[e.fill_id] = packed
            if self._record:
                self._sink(e)
        if late:
            self._anomaly(
                AnomalyKind.LATE_FILL,
                ord_no,
                f"fill {e.fill_id!r} of {qty} took {late} shares back from the cancelled ones",
                e,
            )
        return order

    def _count_fill(
        self, e: ev.OrderFilled, order: Order, pos: FillPositions, packed: int, cum: int, new: int
    ) -> None:
        """Record a positioned fill of which ``new`` shares were counted (its quantities moved)."""
        if order._fills is None:
            order._fills = {e.fill_id: packed}
        else:
            order._fills[e.fill_id] = packed
        if new != e.qty:
            pos.counted[e.fill_id] = new
        pos.cover(cum - e.qty, cum)
        self._take(e)
        if 0 < new < e.qty < cum:  # a running total (qty == cum) repeats shares by nature
            self._anomaly(
                AnomalyKind.FILL_OVERLAP,
                e.ord_no,
                f"fill {e.fill_id!r} of {e.qty} (to share {cum}) counted {new}: the others had "
                "been reported before",
                e,
            )

    def _rejected(self, e: ev.OrderRejected) -> Order | None:
        order = self._order_or_park(e, e.ord_no)
        if order is None:
            return None
        if order._st == REJECTED_I:
            return order  # duplicate
        if order._f:
            raise _bad(
                e, f"order {e.ord_no} has {order._f} shares filled: cannot be rejected", e.ord_no
            )
        self._edge(e, order, REJECT, REJECTED_I)
        order._c += order._l
        order._l = 0
        order._st = REJECTED_I
        self._take(e)
        return order

    def _expired(self, e: ev.OrderExpired) -> Order | None:
        order = self._order_or_park(e, e.ord_no)
        if order is None:
            return None
        if not order._l:
            return order  # nothing open: ignored
        self._edge(e, order, EXPIRE, CANCELLED_I)
        order._c += order._l
        order._l = 0
        order._st = CANCELLED_I
        self._take(e)
        return order

    def _amended(self, e: ev.OrderAmended) -> Order | None:
        if e.ord_no == e.orig_ord_no:
            raise _bad(e, "a modify must have a new order number", e.ord_no)
        orig = self._order_or_park(e, e.orig_ord_no)
        if orig is None:
            return None
        known = self._orders.get(e.ord_no)
        if known is not None:
            if (
                known._origin == e.orig_ord_no
                and known._price == e.price
                and (e.qty in (known._q, 0) or self._was_clamped(e))
            ):
                return known  # duplicate delivery
            raise _bad(e, f"order {e.ord_no} already exists as {known!r}", e.ord_no)
        # Shares come from L first; beyond L, from C: a cancel or expiry delivered before this
        # modify took shares the modify had already moved (a late modify, like a late fill).
        from_leaves = orig._l if e.qty == 0 else min(e.qty, orig._l)
        from_cancelled = min(e.qty - from_leaves, orig._c) if e.qty else 0
        moved = from_leaves + from_cancelled
        if moved == 0:
            raise _bad(
                e, f"order {e.orig_ord_no} has nothing open to modify ({orig!r})", e.orig_ord_no
            )
        cancelled = orig._c - from_cancelled
        leaves = orig._l - from_leaves
        dst = derive_state(orig._st, True, orig._q, orig._f, cancelled, orig._m + moved, leaves)
        self._edge(e, orig, AMEND, dst)
        successor = Order(
            e.ord_no,
            orig._stk_cd,
            orig._side,
            orig._exchange,
            moved,  # what really moved: shares are never created along a modify chain
            e.price,
            confirmed=True,
            origin=orig._ord_no,
        )
        orig._m += moved
        orig._c = cancelled
        orig._l = leaves
        orig._confirmed = True
        orig._st = dst
        successor_no = orig._successor
        if successor_no is None or _newer(e.ord_no, successor_no):
            orig._successor = e.ord_no  # the newest piece, whatever order the modifies came in
        self._orders[e.ord_no] = successor
        record = self._match_modify(orig, e.ord_no, "", e.qty)
        if record is not None:
            self._bind(record, e.ord_no)
            record.answer = moved
            self._settle(orig, record, CONFIRMED_CANCEL)
        self._take(e)
        if from_cancelled:
            self._anomaly(
                AnomalyKind.LATE_AMEND,
                e.orig_ord_no,
                f"modify {e.ord_no} took {from_cancelled} shares back from the cancelled ones",
                e,
            )
        if e.qty > moved:
            self._anomaly(
                AnomalyKind.AMEND_CLAMPED,
                e.orig_ord_no,
                f"modify {e.ord_no} reported {e.qty} shares but only {moved} could be moved",
                e,
            )
        if self._parked:
            self._release(e.ord_no)
        return successor

    def _was_clamped(self, e: ev.OrderAmended) -> bool:
        """Return True when this very modify was taken before with its quantity clamped."""
        return any(a.kind == AnomalyKind.AMEND_CLAMPED and a.event == e for a in self._anomalies)

    # -- cancels ---------------------------------------------------------------------------
    def _cancel_requested(
        self, e: ev.CancelRequested, decision: CancelDecision | None = None
    ) -> Order:
        """Reserve ``e`` (``decision``: the one :meth:`request_cancel` already made, if any)."""
        order = self._orders.get(e.orig_ord_no)
        if decision is None:
            # A recorded request (a replay, a journal) was decided at its time: no hours check.
            decision = self._decide(e.orig_ord_no, e.qty, None, False, False)
        if order is None:
            raise CancelRefused(decision)
        for known in order._cancels or ():
            if known.request_id == e.request_id:
                if known.qty == e.qty:
                    return order  # duplicate
                raise _bad(e, f"request id {e.request_id!r} is already used", e.orig_ord_no)
        if not decision.allowed:
            raise CancelRefused(decision)
        self._reserve(order, CancelRecord(e.request_id, e.orig_ord_no, e.qty))
        self._request_seq += 1
        self._take(e)
        return order

    @staticmethod
    def _reserve(order: Order, record: CancelRecord) -> None:
        """Keep ``record`` on the order; while it is pending it reserves its shares."""
        if order._cancels is None:
            order._cancels = [record]
        else:
            order._cancels.append(record)
        if record.status == PENDING:
            if record.modify:
                if record.cancel_all:
                    order._mall = True
                else:
                    order._pm += record.qty
            elif record.cancel_all:
                order._all = True
            else:
                order._p += record.qty

    @staticmethod
    def _settle(order: Order, record: CancelRecord, status: int) -> None:
        """Mark ``record`` answered and recompute the order's reservations from what is left."""
        record.status = status
        p = pm = 0
        cancel_all = modify_all = False
        cancels = order._cancels
        if status != PENDING and cancels is not None and len(cancels) == 1:  # only ``record``
            order._p = order._pm = 0
            order._all = order._mall = False
            return
        for r in cancels or ():
            if r.status == PENDING:
                if r.modify:
                    if r.cancel_all:
                        modify_all = True
                    else:
                        pm += r.qty
                elif r.cancel_all:
                    cancel_all = True
                else:
                    p += r.qty
        order._p = p
        order._all = cancel_all
        order._pm = pm
        order._mall = modify_all

    def _match(
        self, e: Any, order: Order, request_id: str, cancel_no: str, qty: int | None
    ) -> CancelRecord | None:
        """Find the record an answer belongs to: by cancel number, by request id, or else the
        oldest pending request still without a number (the oldest of the same size, when
        ``qty`` is given); an answer with no number at all may also answer a numbered one.
        """
        records = order._cancels or ()
        if len(records) == 1 and request_id:  # the usual case, what the loops below find
            record = records[0]
            if (
                record.request_id == request_id
                and not record.modify
                and (not record.cancel_no or record.cancel_no == cancel_no)
            ):
                return record
        if cancel_no:
            for record in records:
                if record.cancel_no == cancel_no and not record.modify:
                    if request_id and record.request_id != request_id:
                        raise _bad(e, f"cancel {cancel_no} answers request {record.request_id!r}")
                    return record
        if request_id:
            for record in records:
                if record.request_id == request_id and not record.modify:
                    if cancel_no and record.cancel_no and record.cancel_no != cancel_no:
                        raise _bad(e, f"request {request_id!r} is cancel {record.cancel_no}")
                    return record
            raise _bad(e, f"no cancel request {request_id!r} for order {order._ord_no}")
        pending = [r for r in records if r.status == PENDING and not r.modify]
        unbound = [r for r in pending if not r.cancel_no]
        if qty is not None:
            for record in unbound:
                if record.qty == qty:
                    return record
        if unbound:
            return unbound[0]
        return pending[0] if pending and not cancel_no else None

    @staticmethod
    def _bind(record: CancelRecord, cancel_no: str) -> None:
        if cancel_no and not record.cancel_no:
            record.cancel_no = cancel_no

    def _cancel_accepted(self, e: ev.CancelAccepted) -> Order | None:
        order = self._orders.get(e.orig_ord_no)  # _order_or_park, inline on the hot paths
        if order is None:
            self._park(e, e.orig_ord_no)
            return None
        record = self._match(e, order, e.request_id, e.ord_no, e.qty)
        if record is not None and record.cancel_no == e.ord_no:
            if record.accepted == e.qty or (
                record.cancel_all and record.accepted != -1 and 0 in (record.accepted, e.qty)
            ):
                # The same acceptance delivered again (a cancel-all's may say "all", 0, or the
                # shares it resolved to: the REST answer and the real-time 접수 differ so).
                return order
            if record.accepted != -1:
                raise _bad(
                    e,
                    f"cancel {e.ord_no} was accepted for {record.accepted}, now {e.qty}: "
                    "conflicting duplicate",
                    e.orig_ord_no,
                )
            record.accepted = e.qty  # its confirmation or rejection came first
            self._take(e)
            return order
        if record is None:
            record = CancelRecord("", e.orig_ord_no, e.qty)
            record.accepted = e.qty
            self._bind(record, e.ord_no)
            self._reserve(order, record)  # on a terminal order it only waits for its answer
            self._take(e)
            self._anomaly(
                AnomalyKind.UNREQUESTED_CANCEL,
                e.orig_ord_no,
                f"cancel {e.ord_no} of {e.qty or 'all'} was not requested by this book",
                e,
            )
            return order
        if record.status != PENDING and record.cancel_no:
            raise _bad(e, f"cancel request {record.request_id!r} was already answered")
        # Pending, or rejected before its number was known (the acceptance came late).
        record.accepted = e.qty
        if not record.cancel_no:  # _bind (e.ord_no is never empty)
            record.cancel_no = e.ord_no
        if self._record:
            self._sink(e)
        return order

    def _cancel_confirmed(self, e: ev.CancelConfirmed) -> Order | None:
        order = self._orders.get(e.orig_ord_no)  # _order_or_park, inline on the hot paths
        if order is None:
            self._park(e, e.orig_ord_no)
            return None
        record = self._match(e, order, e.request_id, e.ord_no, e.qty)
        if record is not None and record.status == CONFIRMED_CANCEL:
            if record.cancel_no == e.ord_no and record.answer == e.qty:
                return order  # the same confirmation delivered again
            raise _bad(
                e,
                f"cancel {record.cancel_no or record.request_id} was confirmed for "
                f"{record.answer}, now {e.qty}: conflicting duplicate",
                e.orig_ord_no,
            )
        if record is not None and record.status == REJECTED_CANCEL:
            raise _bad(e, f"cancel {e.ord_no} was rejected before: cannot be confirmed now")
        # 0 reports "all that was open"; a cancel-all takes whatever is open at confirmation.
        qty = e.qty
        cancel_all = qty == 0 or (record is not None and record.cancel_all)
        leaves = order._l
        moved = leaves if qty == 0 or qty > leaves else qty
        st = order._st
        dst = derive_state(st, True, order._q, order._f, order._c + moved, order._m, leaves - moved)
        if not (ALLOWED[CANCEL][st] >> dst) & 1:
            self._edge(e, order, CANCEL, dst)
        # Commit.
        if record is None:
            record = CancelRecord("", e.orig_ord_no, e.qty)
            record.status = CONFIRMED_CANCEL
            self._reserve(order, record)
            self._anomaly(
                AnomalyKind.UNREQUESTED_CANCEL,
                e.orig_ord_no,
                f"cancel {e.ord_no} of {moved} was not requested by this book",
                e,
            )
        if not record.cancel_no:  # _bind (e.ord_no is never empty)
            record.cancel_no = e.ord_no
        record.answer = e.qty
        self._settle(order, record, CONFIRMED_CANCEL)
        order._c += moved
        order._l = leaves - moved
        if moved:
            order._confirmed = True
        order._st = dst
        if self._record:
            self._sink(e)
        if not cancel_all and e.qty > leaves:
            self._anomaly(
                AnomalyKind.CANCEL_CLAMPED,
                e.orig_ord_no,
                f"cancel {e.ord_no} confirmed {e.qty} shares but only {leaves} were open",
                e,
            )
        elif record.qty and moved > record.qty:
            self._anomaly(
                AnomalyKind.CANCEL_OVER_REQUEST,
                e.orig_ord_no,
                f"cancel {e.ord_no} confirmed {moved} shares, {record.qty} were requested",
                e,
            )
        return order

    def _cancel_rejected(self, e: ev.CancelRejected) -> Order | None:
        order = self._order_or_park(e, e.orig_ord_no)
        if order is None:
            return None
        record = self._match(e, order, e.request_id, e.ord_no, None)
        return self._reject_request(e, order, record, "cancel")

    def _reject_request(
        self,
        e: ev.CancelRejected | ev.ModifyRejected,
        order: Order,
        record: CancelRecord | None,
        what: str,
    ) -> Order:
        """Release the reservation of the cancel or modify ``record`` the broker refused."""
        if record is None:
            self._take(e)
            self._anomaly(
                AnomalyKind.UNMATCHED_CANCEL_REJECT
                if what == "cancel"
                else AnomalyKind.UNMATCHED_MODIFY_REJECT,
                e.orig_ord_no,
                f"{what} rejection {e.code or '?'} matched no pending request",
                e,
            )
            return order
        if record.status == REJECTED_CANCEL:
            return order  # the same rejection delivered again
        if record.status == CONFIRMED_CANCEL:
            raise _bad(e, f"{what} {record.cancel_no} was carried out: cannot be rejected now")
        self._bind(record, e.ord_no)
        self._settle(order, record, REJECTED_CANCEL)
        self._take(e)
        return order

    def _cancel_unknown(self, e: ev.CancelOutcomeUnknown) -> Order:
        order = self._orders.get(e.orig_ord_no)
        record = None
        if order is not None:
            record = next(
                (r for r in order._cancels or () if r.request_id == e.request_id and not r.modify),
                None,
            )
        if order is None or record is None:
            raise _bad(e, f"no cancel request {e.request_id!r} for order {e.orig_ord_no}")
        if record.unknown or record.status != PENDING or record.cancel_no:
            return order  # a duplicate, or answered meanwhile: nothing is unknown
        record.unknown = True
        self._take(e)
        return order

    # -- modifies ------------------------------------------------------------------------------
    def _modify_requested(
        self, e: ev.ModifyRequested, decision: CancelDecision | None = None
    ) -> Order:
        """Reserve the shares of modify request ``e`` (``decision``: already made, if any)."""
        order = self._orders.get(e.orig_ord_no)
        if decision is None:
            decision = self._decide(e.orig_ord_no, e.qty, None, False, True)
        if order is None:
            raise ModifyRefused(decision, e.price)
        for known in order._cancels or ():
            if known.request_id == e.request_id:
                if known.modify and known.qty == e.qty:
                    return order  # duplicate
                raise _bad(e, f"request id {e.request_id!r} is already used", e.orig_ord_no)
        if not decision.allowed:
            raise ModifyRefused(decision, e.price)
        self._reserve(order, CancelRecord(e.request_id, e.orig_ord_no, e.qty, modify=True))
        self._request_seq += 1
        self._take(e)
        return order

    @staticmethod
    def _match_modify(
        order: Order, ord_no: str, request_id: str, qty: int | None
    ) -> CancelRecord | None:
        """Find the modify record an answer belongs to: by its number, by request id, or else
        the oldest pending modify without a number (of the same size first, then of all)."""
        records = [r for r in order._cancels or () if r.modify]
        if ord_no:
            for record in records:
                if record.cancel_no == ord_no:
                    return record
        if request_id:
            for record in records:
                if record.request_id == request_id:
                    return record
            return None
        unbound = [r for r in records if r.status == PENDING and not r.cancel_no]
        if qty:
            for record in unbound:
                if record.qty == qty:
                    return record
            for record in unbound:
                if record.cancel_all:
                    return record
        return unbound[0] if unbound else None

    def _modify_accepted(self, e: ev.ModifyAccepted) -> Order | None:
        order = self._order_or_park(e, e.orig_ord_no)
        if order is None:
            return None
        record = self._match_modify(order, e.ord_no, e.request_id, e.qty)
        if record is None:
            if e.request_id:
                raise _bad(e, f"no modify request {e.request_id!r} for order {order._ord_no}")
            self._take(e)  # a modify this book never requested: its amendment will tell
            return order
        if record.cancel_no and record.cancel_no != e.ord_no:
            raise _bad(e, f"modify {record.request_id!r} is already numbered {record.cancel_no}")
        if record.cancel_no == e.ord_no and record.accepted == e.qty:
            return order  # the same acceptance delivered again
        record.accepted = e.qty
        self._bind(record, e.ord_no)
        self._take(e)
        return order

    def _modify_rejected(self, e: ev.ModifyRejected) -> Order | None:
        order = self._order_or_park(e, e.orig_ord_no)
        if order is None:
            return None
        record = self._match_modify(order, e.ord_no, e.request_id, None)
        return self._reject_request(e, order, record, "modify")

    def decide_modify(
        self, ord_no: str, qty: int | str = 0, *, at: datetime | None = None
    ) -> CancelDecision:
        """Decide whether ``qty`` shares of ``ord_no`` may be modified (kt10002) now.

        The shares a modify may move are the ones a cancel could take (open, not reserved by a
        pending cancel or modify), so the decision follows the cancel's rules and reasons
        (``cancel_all`` then means "modify all that is open"), except that an unanswered
        cancel does not block a modify of other shares. Changes nothing.
        """
        self._need_time(at)
        return self._decide(ord_no, qty, at, False, True)

    def request_modify(
        self,
        ord_no: str,
        qty: int | str,
        price: int,
        *,
        at: datetime | None = None,
        ts: datetime | None = None,
    ) -> ModifyRequest:
        """Reserve a modify of ``qty`` shares (0 = all open) of ``ord_no`` to ``price``.

        Call it before sending kt10002 (and journal the :class:`engine.events.ModifyRequested`
        it applies): until the modify's amendment or rejection arrives, no cancel may take the
        shares it is about to move. Raise :class:`engine.ModifyRefused` when not allowed.
        """
        self._need_time(at)
        decision = self._decide(ord_no, qty, at, False, True)
        if not decision.allowed:
            raise ModifyRefused(decision, price)
        n = 0 if decision.cancel_all else decision.qty
        order = self._orders[ord_no]
        event = ev.ModifyRequested(ord_no, self._next_request_id(order), n, price, ts=ts)
        _validate(event, _SCHEMA[ev.ModifyRequested])  # a bad price or ts changes nothing
        self._modify_requested(event, decision)
        return ModifyRequest(
            event.request_id, ord_no, order._stk_cd, order._exchange, n, n == 0, price, decision
        )

    def _next_request_id(self, order: Order) -> str:
        seq = self._request_seq + 1
        request_id = f"R{seq:07d}"
        if order._cancels is None:
            return request_id
        taken = {r.request_id for r in order._cancels}
        while request_id in taken:  # only if someone applied their own ids of this form
            seq += 1
            request_id = f"R{seq:07d}"
        return request_id

    # -- the cancel decision -----------------------------------------------------------------
    def decide_cancel(
        self, ord_no: str, qty: int | str = 0, *, at: datetime | None = None, clamp: bool = False
    ) -> CancelDecision:
        """Decide whether ``qty`` shares of ``ord_no`` may be cancelled now. Changes nothing.

        ``qty`` is an int or kt10003's string form; 0 / ``"0"`` means all that is cancellable.
        With ``clamp``, a quantity above what is cancellable is reduced to it. With a session
        calendar on the book, ``at`` is required (:class:`engine.InvalidTime` without it, so the
        market-hours check is never skipped by accident) and a time the venue takes no cancels
        is MARKET_CLOSED.
        Reasons are checked in this order: INVALID_QUANTITY, UNKNOWN_ORDER, the terminal states
        (FULLY_FILLED, ALREADY_CANCELLED, REJECTED, REPLACED), CANCEL_ALL_PENDING,
        OUTCOME_UNKNOWN (the answer to an earlier cancel of the order was lost: reconcile first),
        MARKET_CLOSED, NOTHING_CANCELLABLE (also while a modify of all is pending),
        EXCEEDS_CANCELLABLE. Shares reserved by pending modifies are not cancellable.
        """
        self._need_time(at)
        return self._decide(ord_no, qty, at, clamp, False)

    def _need_time(self, at: datetime | None) -> None:
        """Refuse a decision without ``at`` on a book that checks market hours."""
        if at is None and self.calendar is not None:
            raise InvalidTime(
                "this book has a session calendar: pass at= (the time now, timezone-aware) so "
                "that market hours are checked; nothing was decided"
            )

    def _decide(
        self, ord_no: str, qty: int | str, at: datetime | None, clamp: bool, modify: bool
    ) -> CancelDecision:
        if at is not None and (not isinstance(at, datetime) or at.utcoffset() is None):
            raise InvalidTime(f"at must be a timezone-aware datetime, not {at!r}")
        n = qty if type(qty) is int and 0 <= qty <= _MAX_QTY else parse_cancel_qty(qty)
        if n is None:
            return CancelDecision.refuse(ord_no, qty, Refusal.INVALID_QUANTITY)
        order = self._orders.get(ord_no) if type(ord_no) is str else None
        if order is None:
            return CancelDecision.refuse(ord_no, qty, Refusal.UNKNOWN_ORDER, cancel_all=n == 0)
        st = order._st
        if (TERMINAL_MASK >> st) & 1:
            reason = _TERMINAL_REFUSALS[st]
            return CancelDecision.refuse(
                ord_no, qty, reason, cancel_all=n == 0, successor=self._live_successor(order)
            )
        if order._all:
            return CancelDecision.refuse(ord_no, qty, Refusal.CANCEL_ALL_PENDING, cancel_all=n == 0)
        if not modify and order._cancels is not None and order.outcome_unknown:
            return CancelDecision.refuse(ord_no, qty, Refusal.OUTCOME_UNKNOWN, cancel_all=n == 0)
        calendar = self.calendar
        if (
            at is not None
            and calendar is not None
            and not calendar.accepts_cancel(order._exchange, at)
        ):
            return CancelDecision.refuse(ord_no, qty, Refusal.MARKET_CLOSED, cancel_all=n == 0)
        # order.cancellable_qty, inline: neither cancel-all pending nor terminal here
        cancellable = 0 if order._mall else order._l - order._p - order._pm
        if cancellable <= 0:
            return CancelDecision.refuse(
                ord_no, qty, Refusal.NOTHING_CANCELLABLE, cancel_all=n == 0
            )
        if n == 0:
            return CancelDecision(ord_no, qty, True, cancellable, True)
        if n > cancellable:
            if clamp:
                return CancelDecision(ord_no, qty, True, cancellable, False)
            return CancelDecision.refuse(ord_no, qty, Refusal.EXCEEDS_CANCELLABLE)
        return CancelDecision(ord_no, qty, True, n, False)

    def _live_successor(self, order: Order) -> str | None:
        """Return the last order of the modify chain starting after ``order``, or None."""
        successor = order._successor
        seen = {order._ord_no}
        while successor is not None and successor not in seen:
            seen.add(successor)
            nxt = self._orders.get(successor)
            if nxt is None or nxt._successor is None:
                break
            successor = nxt._successor
        return successor

    def request_cancel(
        self,
        ord_no: str,
        qty: int | str = 0,
        *,
        at: datetime | None = None,
        clamp: bool = False,
        ts: datetime | None = None,
    ) -> CancelRequest:
        """Reserve a cancel the engine allows and return it, ready to be sent to the broker.

        Raise :class:`engine.CancelRefused` (carrying the decision) when it is not allowed;
        nothing is reserved then. The reservation lasts until the broker confirms or rejects.
        """
        if at is None and self.calendar is not None:
            self._need_time(at)  # raises
        decision = self._decide(ord_no, qty, at, clamp, False)  # the only decision made
        if not decision.allowed:
            raise CancelRefused(decision)
        n = 0 if decision.cancel_all else decision.qty
        order = self._orders[ord_no]
        cancels = order._cancels
        if cancels is None:  # the first request of the order: no id of its own to avoid
            request_id = f"R{self._request_seq + 1:07d}"
        else:
            request_id = self._next_request_id(order)
        event = ev.CancelRequested(ord_no, request_id, n, ts=ts)
        if ts is not None and not isinstance(ts, datetime):  # the only field from the caller
            raise _bad(event, f"ts must be a datetime or None, not {ts!r}")
        # What _cancel_requested would check again holds: the decision allowed it, and the id
        # is new to the order. So reserve directly (_reserve, inline).
        record = CancelRecord(request_id, ord_no, n)
        if cancels is None:
            order._cancels = [record]
        else:
            cancels.append(record)
        if n:
            order._p += n
        else:
            order._all = True
        self._request_seq += 1
        if self._record:
            self._sink(event)
        return CancelRequest(
            request_id, ord_no, order._stk_cd, order._exchange, n, n == 0, decision
        )

    # -- DataFrames (pandas, imported only when asked for) -----------------------------------
    def to_frame(self) -> Any:
        """Return a pandas DataFrame of the orders, one row per order (see engine.frames)."""
        from engine.frames import orders_frame

        return orders_frame(self._orders, self._events)

    def events_frame(self) -> Any:
        """Return a pandas DataFrame of :attr:`events`, one row per event (see engine.frames)."""
        from engine.frames import events_frame

        return events_frame(self._events)


#: Each event class's handler (unbound: called with the book).
_HANDLERS: dict[type, _Handler] = {
    ev.OrderAccepted: OrderBook._accepted,
    ev.OrderConfirmed: OrderBook._confirmed,
    ev.OrderFilled: OrderBook._filled,
    ev.OrderRejected: OrderBook._rejected,
    ev.CancelRequested: OrderBook._cancel_requested,
    ev.CancelAccepted: OrderBook._cancel_accepted,
    ev.CancelConfirmed: OrderBook._cancel_confirmed,
    ev.CancelRejected: OrderBook._cancel_rejected,
    ev.OrderAmended: OrderBook._amended,
    ev.OrderExpired: OrderBook._expired,
    ev.CancelOutcomeUnknown: OrderBook._cancel_unknown,
    ev.ModifyRequested: OrderBook._modify_requested,
    ev.ModifyAccepted: OrderBook._modify_accepted,
    ev.ModifyRejected: OrderBook._modify_rejected,
}
#: What :meth:`OrderBook.apply` calls for each event class: its checks, then its handler.
_ENTRIES: dict[type, _Handler] = {cls: _compile(cls, h) for cls, h in _HANDLERS.items()}


def _newer(a: str, b: str) -> bool:
    """Return True when order number ``a`` was given after ``b`` (numbers rise through the day)."""
    return (len(a), a) > (len(b), b)


_TERMINAL_REFUSALS = {
    FILLED_I: Refusal.FULLY_FILLED,
    CANCELLED_I: Refusal.ALREADY_CANCELLED,
    REJECTED_I: Refusal.REJECTED,
    REPLACED_I: Refusal.REPLACED,
}
