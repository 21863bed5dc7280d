"""The broker port over Kiwoom's REST API: cancels the engine allowed, and reconciliation.

:meth:`KiwoomBroker.cancel` asks the engine first; a refused cancel makes no HTTP call. An
allowed one is reserved (``request_cancel``), sent as kt10003, and its answer goes into the book
as ``CancelAccepted`` or ``CancelRejected``. When the outcome is unknown (a timeout, a reset, a
5xx, a body that is not JSON, 1999) the reservation stays and nothing is sent again:
:meth:`KiwoomBroker.reconcile` reads ka10075 and kt00007 (every page) and applies what they show
as events: the cancel's acceptance and confirmation when the server did take it, or a release of
the reservation when, after ``unknown_grace``, no trace of it exists. Only then may the same
shares be cancelled again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Final

import attrs

from adapters.broker import CancelOutcome, CancelStatus, Ticket, TicketStatus
from adapters.kiwoom.client import KiwoomClient, OpenOrder, OrderDetail
from adapters.kiwoom.errors import KiwoomError, Outcome
from engine import CancelRefused, EngineError, OrderBook, Side
from engine import events as ev
from engine.order import Order
from engine.sessions import KST

__all__ = ["NOT_RECEIVED", "KiwoomBroker", "Reconciliation"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: The code a cancel is released with when reconciliation found no trace of it.
NOT_RECEIVED: Final = "NOT_RECEIVED"


@attrs.frozen
class _Unknown:
    """A cancel whose outcome is not known: the engine's request, and when it was sent."""

    request_id: str
    orig_ord_no: str
    qty: int
    sent_at: datetime
    error: str


@attrs.define
class Reconciliation:
    """What one :meth:`KiwoomBroker.reconcile` learned and did.

    ``applied``: events the book took. ``refused``: events the book refused, with why (nothing
    changed for them). ``resolved``: unknown cancels now settled (accepted or released).
    ``unresolved``: unknown cancels still pending (no trace yet, within ``unknown_grace``).
    ``discrepancies``: what the server shows that no event can explain, for a human.
    """

    applied: list[ev.Event] = attrs.Factory(list)
    refused: list[tuple[ev.Event, str]] = attrs.Factory(list)
    resolved: list[str] = attrs.Factory(list)
    unresolved: list[str] = attrs.Factory(list)
    discrepancies: list[str] = attrs.Factory(list)
    open_orders: list[OpenOrder] = attrs.Factory(list)

    @property
    def clean(self) -> bool:
        """Return True when everything was explained and nothing is left unknown."""
        return not (self.refused or self.unresolved or self.discrepancies)


class KiwoomBroker:
    """:class:`adapters.broker.BrokerPort` over a :class:`KiwoomClient`.

    ``book`` receives the acceptances of :meth:`place` (the order server's 접수); ``now`` is
    the wall clock (timezone-aware; passed in for tests). The REST answers are the only facts
    besides reconciliation: fills, cancel confirmations and the effect of a modify reach the
    book from :meth:`reconcile` (or from the real-time events, mapped by
    :mod:`adapters.kiwoom.realtime`).
    """

    def __init__(
        self,
        client: KiwoomClient,
        book: OrderBook | None = None,
        *,
        unknown_grace: timedelta = timedelta(seconds=30),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.book = book if book is not None else OrderBook()
        self.unknown_grace = unknown_grace
        self._now = now
        self._unknown: dict[str, _Unknown] = {}
        self._tickets = 0

    def __repr__(self) -> str:
        return f"KiwoomBroker({self.client!r}, unknown={len(self._unknown)})"

    @property
    def unknown(self) -> tuple[str, ...]:
        """Return the request ids of cancels whose outcome is not known yet, oldest first."""
        return tuple(self._unknown)

    def _ticket(self, kind: str, request_id: str = "") -> Ticket:
        self._tickets += 1
        return Ticket(kind, request_id or f"K{self._tickets:07d}")

    # -- orders ----------------------------------------------------------------------------------
    def place(
        self,
        *,
        stk_cd: str,
        side: Side,
        qty: int,
        price: int,
        trde_tp: str = "0",
        exchange: str = "KRX",
    ) -> Ticket:
        """Send a new order (kt10000/kt10001); on acceptance its 접수 goes into the book."""
        ticket = self._ticket("place")
        try:
            answer = self.client.place(
                stk_cd=stk_cd, side=side, qty=qty, price=price, trde_tp=trde_tp, exchange=exchange
            )
        except KiwoomError as exc:
            self._fail(ticket, exc)
            return ticket
        ticket.resolve(TicketStatus.ACCEPTED, answer.ord_no, "", answer.message)
        accepted = ev.OrderAccepted(
            answer.ord_no, stk_cd, side, qty, price, exchange, ts=self._now()
        )
        self._apply(self.book, accepted, None)
        return ticket

    def modify(
        self, *, orig_ord_no: str, stk_cd: str, qty: int, price: int, exchange: str = "KRX"
    ) -> Ticket:
        """Send a modify (kt10002); the ticket gets the new order number.

        The REST answer says only that the order server took it; the shares move in the book
        when :meth:`reconcile` (or a 정정 확인 event) shows the modify done.
        """
        ticket = self._ticket("modify")
        try:
            answer = self.client.modify(
                orig_ord_no=orig_ord_no, stk_cd=stk_cd, qty=qty, price=price, exchange=exchange
            )
        except KiwoomError as exc:
            self._fail(ticket, exc)
            return ticket
        ticket.resolve(TicketStatus.ACCEPTED, answer.ord_no, "", answer.message)
        return ticket

    @staticmethod
    def _fail(ticket: Ticket, exc: KiwoomError) -> None:
        status = TicketStatus.UNKNOWN if exc.outcome is Outcome.UNKNOWN else TicketStatus.REJECTED
        ticket.resolve(status, "", exc.code or type(exc).__name__, exc.message)

    # -- cancels ---------------------------------------------------------------------------------
    def cancel(
        self, book: OrderBook, ord_no: str, qty: int | str = 0, *, at: datetime | None = None
    ) -> CancelOutcome:
        """Ask the engine; send kt10003 only if it allows the cancel; put the answer in ``book``.

        REFUSED: the engine said no, nothing was sent. ACCEPTED: the server numbered the cancel
        (fills can still race it). REJECTED: a definitive refusal (RC4033...) or a request the
        server certainly did not act on (throttled past the retries): the reservation is
        released. UNKNOWN: the reservation stays until :meth:`reconcile` settles it.
        """
        now = self._now()
        try:
            request = book.request_cancel(ord_no, qty, at=at if at is not None else now, ts=now)
        except CancelRefused as refused:
            return CancelOutcome(refused.decision, CancelStatus.REFUSED)
        ticket = self._ticket("cancel", request.request_id)
        try:
            answer = self.client.cancel(
                orig_ord_no=request.orig_ord_no,
                stk_cd=request.stk_cd,
                qty=request.cncl_qty,
                exchange=request.exchange,
            )
        except KiwoomError as exc:
            self._fail(ticket, exc)
            if exc.outcome is Outcome.UNKNOWN:
                self._unknown[request.request_id] = _Unknown(
                    request.request_id, request.orig_ord_no, request.qty, now, str(exc)
                )
                log.warning(
                    "cancel %s of %s: outcome unknown (%s); will reconcile",
                    request.request_id,
                    request.orig_ord_no,
                    type(exc).__name__,
                )
                return CancelOutcome(request.decision, CancelStatus.UNKNOWN, request, ticket)
            rejected = ev.CancelRejected(
                request.orig_ord_no,
                exc.code or type(exc).__name__,
                exc.message,
                request_id=request.request_id,
                ts=now,
            )
            self._apply(book, rejected, None)
            return CancelOutcome(request.decision, CancelStatus.REJECTED, request, ticket)
        ticket.resolve(TicketStatus.ACCEPTED, answer.ord_no, "", answer.message)
        accepted = ev.CancelAccepted(
            answer.ord_no, request.orig_ord_no, request.qty, request.request_id, ts=now
        )
        self._apply(book, accepted, None)
        return CancelOutcome(request.decision, CancelStatus.ACCEPTED, request, ticket)

    # -- reconciliation --------------------------------------------------------------------------
    def reconcile(
        self, book: OrderBook | None = None, *, day: date | None = None
    ) -> Reconciliation:
        """Bring ``book`` (default: the broker's) up to what the server shows, as events.

        Reads ka10075 (open orders) and kt00007 (every order, modify and cancel of ``day``,
        default today in Korea time), every page of both, and applies, in order: orders the
        book does not know (접수, 확인, 거부), modifies (정정), fills it missed (one event per
        order for the difference, at the average price, with a deterministic id), cancels
        (accepted, confirmed, or rejected by the venue) and what the venue expired. An unknown
        cancel found on the server is matched to its request; one with no trace after
        ``unknown_grace`` is released (``CancelRejected`` with code ``NOT_RECEIVED``). Works on
        its own too: at start-up with an empty book, or after a disconnect.
        """
        book = book if book is not None else self.book
        now = self._now()
        day = day if day is not None else now.astimezone(KST).date()
        report = Reconciliation()
        report.open_orders = self.client.open_orders()
        details = self.client.order_details(day)
        rows = sorted(details, key=lambda r: (len(r.ord_no), r.ord_no))
        orders = [r for r in rows if r.kind != "취소"]
        cancels = [r for r in rows if r.kind == "취소"]
        # 1. orders and modifies, in number order (a modify's original comes first)
        for row in orders:
            self._reconcile_order(book, row, now, report)
        # 2. fills the book missed
        for row in orders:
            order = book.orders.get(row.ord_no)
            if order is not None and row.filled_qty > order.filled_qty:
                fill = ev.OrderFilled(
                    row.ord_no,
                    f"R{row.ord_no}-{row.filled_qty}",
                    row.filled_qty - order.filled_qty,
                    _delta_price(order, row),
                    ts=now,
                )
                self._apply(book, fill, report)
        # 3. cancels
        matched: set[str] = set()
        for row in cancels:
            self._reconcile_cancel(book, row, now, report, matched)
        # 4. unknown cancels with no trace
        for request_id, unknown in list(self._unknown.items()):
            if request_id in matched:
                del self._unknown[request_id]
                report.resolved.append(request_id)
                continue
            order = book.orders.get(unknown.orig_ord_no)
            pending = order is not None and request_id in order.pending_requests
            if not pending:  # settled by another fact meanwhile
                del self._unknown[request_id]
                report.resolved.append(request_id)
            elif now - unknown.sent_at >= self.unknown_grace:
                released = ev.CancelRejected(
                    unknown.orig_ord_no,
                    NOT_RECEIVED,
                    f"no trace of the cancel on the server {self.unknown_grace} after sending",
                    request_id=request_id,
                    ts=now,
                )
                self._apply(book, released, report)
                del self._unknown[request_id]
                report.resolved.append(request_id)
            else:
                report.unresolved.append(request_id)
        # 5. what the venue expired, and what nothing explains
        for row in orders:
            self._reconcile_rest(book, row, now, report)
        self._check_open(book, report.open_orders, report)
        return report

    def _reconcile_order(
        self, book: OrderBook, row: OrderDetail, now: datetime, report: Reconciliation
    ) -> None:
        order = book.orders.get(row.ord_no)
        if order is None:
            if row.kind == "정정":
                if not row.orig_ord_no:
                    report.discrepancies.append(f"modify {row.ord_no} names no original order")
                    return
                event: ev.Event = ev.OrderAmended(
                    row.ord_no, row.orig_ord_no, row.qty, row.price, ts=now
                )
            else:
                event = ev.OrderAccepted(
                    row.ord_no, row.stk_cd, row.side, row.qty, row.price, row.exchange, ts=now
                )
            if row.qty <= 0:  # 0 would mean "all" to the engine: never guess
                report.discrepancies.append(f"{row.ord_no}: a row with no quantity")
                return
            self._apply(book, event, report)
            order = book.orders.get(row.ord_no)
            if order is None:
                return
        if row.status == "거부":
            if not order.is_terminal and order.filled_qty == 0:
                self._apply(
                    book, ev.OrderRejected(row.ord_no, "REJECTED", "거부 (kt00007)", ts=now), report
                )
        elif row.status == "확인" and not order.confirmed and not order.is_terminal:
            self._apply(book, ev.OrderConfirmed(row.ord_no, ts=now), report)

    def _reconcile_cancel(
        self,
        book: OrderBook,
        row: OrderDetail,
        now: datetime,
        report: Reconciliation,
        matched: set[str],
    ) -> None:
        orig = book.orders.get(row.orig_ord_no)
        if orig is None:
            report.discrepancies.append(
                f"cancel {row.ord_no} of {row.orig_ord_no}, an order the book does not know"
            )
            return
        info = next((c for c in orig.cancels if c.cancel_no == row.ord_no), None)
        if info is None:
            candidates = [
                u
                for u in self._unknown.values()
                if u.orig_ord_no == row.orig_ord_no and u.request_id not in matched
            ]
            request_id = candidates[0].request_id if candidates else ""
            qty = candidates[0].qty if candidates else row.qty
            if not candidates and row.qty <= 0:
                report.discrepancies.append(f"cancel {row.ord_no}: a row with no quantity")
                return
            accepted = ev.CancelAccepted(row.ord_no, row.orig_ord_no, qty, request_id, ts=now)
            if not self._apply(book, accepted, report):
                return
            if request_id:
                matched.add(request_id)
            info = next((c for c in orig.cancels if c.cancel_no == row.ord_no), None)
            if info is None:
                return
        if info.status != "pending":
            return
        if row.status == "확인" and row.confirmed_qty > 0:
            event: ev.Event = ev.CancelConfirmed(
                row.ord_no, row.orig_ord_no, row.confirmed_qty, info.request_id, ts=now
            )
        elif row.status in ("거부", "확인"):  # the venue found nothing left to cancel
            event = ev.CancelRejected(
                row.orig_ord_no,
                "RC4033",
                "nothing was cancelled (kt00007)",
                row.ord_no,
                info.request_id,
                ts=now,
            )
        else:
            return  # 접수: the venue has not done it yet
        self._apply(book, event, report)

    def _reconcile_rest(
        self, book: OrderBook, row: OrderDetail, now: datetime, report: Reconciliation
    ) -> None:
        order = book.orders.get(row.ord_no)
        if order is None or order.is_terminal:
            return
        if row.open_qty == 0 and order.leaves_qty > 0:
            if order.pending_cancel_qty or order.cancel_all_pending:
                report.discrepancies.append(
                    f"{row.ord_no}: closed on the server with a cancel still unanswered"
                )
                return
            self._apply(book, ev.OrderExpired(row.ord_no, ts=now), report)
        elif row.open_qty != order.leaves_qty:
            report.discrepancies.append(
                f"{row.ord_no}: {row.open_qty} open on the server, {order.leaves_qty} in the book"
            )

    @staticmethod
    def _check_open(
        book: OrderBook, open_orders: Iterable[OpenOrder], report: Reconciliation
    ) -> None:
        for row in open_orders:
            order = book.orders.get(row.ord_no)
            if order is None:
                report.discrepancies.append(f"open order {row.ord_no} is missing from kt00007")

    def _apply(self, book: OrderBook, event: ev.Event, report: Reconciliation | None) -> bool:
        """Apply ``event``; record it in ``report``. A refused event changes nothing."""
        try:
            book.apply(event)
        except EngineError as exc:
            log.error("the book refused %s: %s", type(event).__name__, exc)
            if report is not None:
                report.refused.append((event, str(exc)))
            return False
        if report is not None:
            report.applied.append(event)
        return True


def _delta_price(order: Order, row: OrderDetail) -> int:
    """Return the price of the fills the book missed, from the server's average fill price."""
    if row.fill_price <= 0:
        return order.price
    missing = row.filled_qty - order.filled_qty
    notional = row.fill_price * row.filled_qty - order.fill_notional
    price = round(notional / missing) if missing else row.fill_price
    return price if price > 0 else row.fill_price
