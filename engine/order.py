"""One order's quantities and facts. Only the book changes an order, through events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from engine.lifecycle import STATE_INDEX, STATES
from engine.states import TERMINAL_STATES, OrderState, Side

__all__ = ["Anomaly", "CancelInfo", "FillPositions", "Order"]

# State indices (positions in lifecycle.STATES), used on the hot path instead of enum hashing.
RECEIVED_I = STATE_INDEX[OrderState.RECEIVED]
CONFIRMED_I = STATE_INDEX[OrderState.CONFIRMED]
PARTIAL_I = STATE_INDEX[OrderState.PARTIALLY_FILLED]
FILLED_I = STATE_INDEX[OrderState.FILLED]
CANCELLED_I = STATE_INDEX[OrderState.CANCELLED]
REPLACED_I = STATE_INDEX[OrderState.REPLACED]
REJECTED_I = STATE_INDEX[OrderState.REJECTED]
TERMINAL_MASK = sum(1 << STATE_INDEX[s] for s in TERMINAL_STATES)

FILL_MASK = (1 << 40) - 1

# Statuses of a cancel record.
PENDING, CONFIRMED_CANCEL, REJECTED_CANCEL = range(3)


def derive_state(current: int, confirmed: bool, q: int, f: int, c: int, m: int, leaves: int) -> int:
    """Return the state index that the quantities and facts imply (docs/policies.md)."""
    if current == REJECTED_I:
        return REJECTED_I
    if leaves > 0:
        if f > 0:
            return PARTIAL_I
        return CONFIRMED_I if confirmed else RECEIVED_I
    if f == q:
        return FILLED_I
    if c > 0:
        return CANCELLED_I
    return REPLACED_I if m > 0 else CANCELLED_I


_CANCEL_STATUS = ("pending", "confirmed", "rejected")


class CancelInfo(NamedTuple):
    """A read-only view of one cancel of an order (see :attr:`Order.cancels`).

    ``status`` is ``"pending"`` (no confirmation or rejection yet), ``"confirmed"`` or
    ``"rejected"``; ``cancel_no`` is the broker's number for the cancel ("" until accepted);
    ``qty`` 0 means all that is open.
    """

    request_id: str
    cancel_no: str
    qty: int
    status: str


class FillPositions:
    """Which of an order's cumulative share positions its positioned fills have counted.

    ``covered`` holds disjoint, sorted ``(low, high)`` pairs: positions ``low + 1`` to ``high``
    are counted. ``counted`` holds, for a fill that was counted only in part (some of its shares
    had been reported already), how many of its shares were new. Made only for orders that get
    fills with a ``cum_qty``.
    """

    __slots__ = ("counted", "covered")

    def __init__(self) -> None:
        self.covered: list[tuple[int, int]] = []
        self.counted: dict[str, int] = {}

    def new_in(self, low: int, high: int) -> int:
        """Return how many of the positions ``low + 1`` to ``high`` are not counted yet."""
        seen = 0
        for a, b in self.covered:
            if a >= high:
                break
            if b > low:
                seen += min(b, high) - max(a, low)
        return high - low - seen

    def cover(self, low: int, high: int) -> None:
        """Mark the positions ``low + 1`` to ``high`` counted."""
        merged: list[tuple[int, int]] = []
        for a, b in self.covered:
            if b < low or a > high:
                merged.append((a, b))
            else:
                low, high = min(a, low), max(b, high)
        merged.append((low, high))
        merged.sort()
        self.covered = merged

    def snapshot(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int], ...]]:
        """Return both parts as tuples (for comparisons of whole books)."""
        return tuple(self.covered), tuple(sorted(self.counted.items()))


class CancelRecord:
    """The engine's memory of one reservation: a cancel (or, with ``modify``, a modify)
    request, its broker number and its outcome. While pending it reserves its shares."""

    __slots__ = (
        "accepted",
        "answer",
        "cancel_all",
        "cancel_no",
        "modify",
        "orig_ord_no",
        "qty",
        "request_id",
        "status",
        "unknown",
    )

    def __init__(self, request_id: str, orig_ord_no: str, qty: int, modify: bool = False) -> None:
        self.request_id = request_id
        self.orig_ord_no = orig_ord_no
        self.qty = qty  # 0 = all that is open
        self.cancel_all = qty == 0
        self.modify = modify  # a kt10002 reservation, not a cancel
        self.cancel_no = ""  # the broker's number for the cancel (or the modify), once known
        self.status = PENDING
        self.accepted = -1  # quantity the acceptance reported, for duplicate checks
        self.answer = -1  # quantity the confirmation reported, for duplicate checks
        self.unknown = False  # its answer was lost (a timeout, a restart): reconcile first

    def snapshot(self) -> tuple[str, int, bool, str, int, int, int, bool, bool]:
        """Return every field as a tuple (for comparisons of whole books)."""
        return (
            self.request_id,
            self.qty,
            self.cancel_all,
            self.cancel_no,
            self.status,
            self.accepted,
            self.answer,
            self.modify,
            self.unknown,
        )


class Anomaly:
    """Something the book accepted but that needs reconciliation (a clamp, a late fill, ...)."""

    __slots__ = ("detail", "event", "kind", "ord_no")

    def __init__(self, kind: str, ord_no: str, detail: str, event: Any) -> None:
        self.kind = kind
        self.ord_no = ord_no
        self.detail = detail
        self.event = event

    def __repr__(self) -> str:
        return f"Anomaly({self.kind}, {self.ord_no}: {self.detail})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Anomaly):
            return NotImplemented
        return (self.kind, self.ord_no, self.detail, self.event) == (
            other.kind,
            other.ord_no,
            other.detail,
            other.event,
        )

    __hash__ = None  # type: ignore[assignment]


class Order:
    """One order (one order number): quantities first, the state derived from them.

    ``filled_qty + cancelled_qty + replaced_qty + leaves_qty == qty`` always holds. Orders are
    compared by identity (their order number), not by value; use :meth:`snapshot` to compare
    contents. Read-only: change an order by applying events to its :class:`engine.OrderBook`.
    """

    __slots__ = (
        "_all",
        "_c",
        "_cancels",
        "_confirmed",
        "_exchange",
        "_f",
        "_fills",
        "_l",
        "_m",
        "_mall",
        "_ord_no",
        "_origin",
        "_p",
        "_pm",
        "_pos",
        "_price",
        "_q",
        "_side",
        "_st",
        "_stk_cd",
        "_successor",
    )

    def __init__(
        self,
        ord_no: str,
        stk_cd: str,
        side: Side,
        exchange: str,
        qty: int,
        price: int,
        *,
        confirmed: bool = False,
        origin: str | None = None,
    ) -> None:
        self._ord_no = ord_no
        self._stk_cd = stk_cd
        self._side = side
        self._exchange = exchange
        self._q = qty
        self._price = price
        self._f = 0
        self._c = 0
        self._m = 0
        self._l = qty
        self._p = 0
        self._all = False
        self._pm = 0  # shares reserved by pending partial modifies
        self._mall = False  # a modify of all that is open is pending
        self._st = CONFIRMED_I if confirmed else RECEIVED_I
        self._confirmed = confirmed
        # fill id -> qty << 40 | price (both below 10**12 < 2**40): 32 bytes a fill, not an event
        self._fills: dict[str, int] | None = None
        self._pos: FillPositions | None = None  # only for fills that name their positions
        self._cancels: list[CancelRecord] | None = None
        self._successor: str | None = None
        self._origin = origin

    # -- identity and terms ------------------------------------------------------------------
    @property
    def ord_no(self) -> str:
        """Return the order number (7 digits at Kiwoom)."""
        return self._ord_no

    @property
    def stk_cd(self) -> str:
        """Return the stock code (``005930``)."""
        return self._stk_cd

    @property
    def side(self) -> Side:
        """Return BUY or SELL."""
        return self._side

    @property
    def exchange(self) -> str:
        """Return the venue the order was placed with (``KRX``, ``NXT``, ``SOR``)."""
        return self._exchange

    @property
    def qty(self) -> int:
        """Return Q, the shares ordered."""
        return self._q

    @property
    def price(self) -> int:
        """Return the limit price in KRW (0 for a market order)."""
        return self._price

    # -- quantities --------------------------------------------------------------------------
    @property
    def filled_qty(self) -> int:
        """Return F, the shares executed (체결)."""
        return self._f

    @property
    def cancelled_qty(self) -> int:
        """Return C, the shares cancelled (confirmed), expired or rejected."""
        return self._c

    @property
    def replaced_qty(self) -> int:
        """Return M, the shares moved to a successor order by a modify (정정)."""
        return self._m

    @property
    def leaves_qty(self) -> int:
        """Return L, the shares still open on the exchange."""
        return self._l

    @property
    def pending_cancel_qty(self) -> int:
        """Return P, the shares reserved by partial cancel requests not yet answered."""
        return self._p

    @property
    def cancel_all_pending(self) -> bool:
        """Return True while a cancel of all remaining shares is unanswered."""
        return self._all

    @property
    def pending_modify_qty(self) -> int:
        """Return the shares reserved by partial modify (kt10002) requests not yet answered."""
        return self._pm

    @property
    def modify_all_pending(self) -> bool:
        """Return True while a modify of all remaining shares is unanswered."""
        return self._mall

    @property
    def cancellable_qty(self) -> int:
        """Return what a new cancel (or modify) may still take: ``L - P`` less the shares
        pending modifies reserved; 0 while a cancel-all or a modify-all is pending."""
        if self._all or self._mall or (TERMINAL_MASK >> self._st) & 1:
            return 0
        return max(self._l - self._p - self._pm, 0)

    # -- derived facts -----------------------------------------------------------------------
    @property
    def state(self) -> OrderState:
        """Return the state derived from the quantities."""
        return STATES[self._st]

    @property
    def is_terminal(self) -> bool:
        """Return True for FILLED, CANCELLED, REPLACED and REJECTED."""
        return bool((TERMINAL_MASK >> self._st) & 1)

    @property
    def confirmed(self) -> bool:
        """Return True once the exchange confirmed the order or a change to it."""
        return self._confirmed

    @property
    def successor(self) -> str | None:
        """Return the order number this order was modified into, or None.

        An order modified in pieces names its newest piece (the highest order number of the
        day), whatever order the modifies were delivered in.
        """
        return self._successor

    @property
    def origin(self) -> str | None:
        """Return the order number this order was modified from, or None."""
        return self._origin

    @property
    def fill_notional(self) -> int:
        """Return the sum of qty * price over the shares the fills counted, in KRW (exact)."""
        if not self._fills:
            return 0
        total = sum((v >> 40) * (v & FILL_MASK) for v in self._fills.values())
        if self._pos is not None:  # fills whose shares were in part reported before
            for fill_id, counted in self._pos.counted.items():
                v = self._fills[fill_id]
                total -= ((v >> 40) - counted) * (v & FILL_MASK)
        return total

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Return the volume-weighted average fill price, or None before any fill."""
        if not self._f:
            return None
        return Decimal(self.fill_notional) / Decimal(self._f)

    @property
    def fill_ids(self) -> tuple[str, ...]:
        """Return the ids of the fills taken, in the order they were applied."""
        return tuple(self._fills) if self._fills else ()

    @property
    def pending_requests(self) -> tuple[str, ...]:
        """Return the ids of the cancel requests still unanswered, oldest first."""
        return tuple(
            r.request_id for r in self._cancels or () if r.status == PENDING and not r.modify
        )

    @property
    def cancels(self) -> tuple[CancelInfo, ...]:
        """Return every cancel of this order the engine knows of, oldest first."""
        return tuple(
            CancelInfo(r.request_id, r.cancel_no, r.qty, _CANCEL_STATUS[r.status])
            for r in self._cancels or ()
            if not r.modify
        )

    @property
    def modifies(self) -> tuple[CancelInfo, ...]:
        """Return every modify request of this order the engine reserved, oldest first.

        ``cancel_no`` is then the modify's own (new) order number, once the broker gave it.
        """
        return tuple(
            CancelInfo(r.request_id, r.cancel_no, r.qty, _CANCEL_STATUS[r.status])
            for r in self._cancels or ()
            if r.modify
        )

    @property
    def outcome_unknown(self) -> bool:
        """Return True while a cancel of this order has an unknown outcome: its answer was lost
        (:class:`engine.events.CancelOutcomeUnknown`) and no broker fact has numbered, confirmed
        or rejected it since. No new cancel of the order is allowed then."""
        return any(
            r.unknown and r.status == PENDING and not r.cancel_no for r in self._cancels or ()
        )

    def snapshot(self) -> dict[str, Any]:
        """Return every field of the order, for comparing whole books (replay, reconciliation)."""
        return {
            "ord_no": self._ord_no,
            "stk_cd": self._stk_cd,
            "side": self._side,
            "exchange": self._exchange,
            "qty": self._q,
            "price": self._price,
            "filled_qty": self._f,
            "cancelled_qty": self._c,
            "replaced_qty": self._m,
            "leaves_qty": self._l,
            "pending_cancel_qty": self._p,
            "cancel_all_pending": self._all,
            "pending_modify_qty": self._pm,
            "modify_all_pending": self._mall,
            "state": self.state,
            "confirmed": self._confirmed,
            "fill_notional": self.fill_notional,
            "fills": sorted((k, v >> 40, v & FILL_MASK) for k, v in (self._fills or {}).items()),
            "positions": None if self._pos is None else self._pos.snapshot(),
            "cancels": [r.snapshot() for r in self._cancels or ()],
            "successor": self._successor,
            "origin": self._origin,
        }

    def __repr__(self) -> str:
        st = self.state
        return (
            f"Order({self._ord_no} {self._stk_cd} {self._side.name} {st.name}/{st.value} "
            f"Q={self._q} F={self._f} C={self._c} M={self._m} L={self._l} P={self._p}"
            f"{' ALL' if self._all else ''}"
            f"{f' PM={self._pm}' if self._pm else ''}{' MODIFY-ALL' if self._mall else ''})"
        )
