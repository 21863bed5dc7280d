"""The broker port over Kiwoom's REST API: cancels the engine allowed, and reconciliation.

:meth:`KiwoomBroker.cancel` asks the engine first; a refused cancel makes no HTTP call. An
allowed one is reserved (``request_cancel``), sent as kt10003, and its answer goes into the book
as ``CancelAccepted`` or ``CancelRejected``. When the outcome is unknown (a timeout, a reset, a
5xx, a body that is not JSON, 1999) the reservation stays and nothing is sent again:
:meth:`KiwoomBroker.reconcile` reads ka10075 and kt00007 (every page) and applies what they show
as events: the cancel's acceptance and confirmation when the server did take it, or a release of
the reservation when, after ``unknown_grace``, no trace of it exists. Only then may the same
shares be cancelled again.

Which cancels are unknown is read from the book, not kept beside it: a pending cancel request with
no broker number is one that was sent (or was about to be) and never answered. So a book rebuilt
from its journal after a restart still knows them, and a cancel numbered by any source (the REST
answer, a real-time 접수, a reconciliation) is no longer unknown. A cancel whose answer was lost
is marked in the book (``CancelOutcomeUnknown``): the engine then refuses any new cancel of that
order (``OUTCOME_UNKNOWN``) until reconciliation settles the lost one on evidence.

With ``journal=PATH`` every event the book takes is written to a SQLite journal
(:mod:`adapters.journal`); an intent (a cancel or modify reservation) is committed durably
before its request is sent, and opening the journal replays the day into an identical book.
Requests a previous process reserved and never saw answered are marked unknown at once.

**One writer.** The broker is safe to call from several threads: every change to its book and
journal happens under one lock (:attr:`KiwoomBroker.lock`), held for one book operation at a
time and never during an HTTP call, so a slow answer does not hold other threads' events back.
Read the book under that lock too (``with broker.lock: ...``) when other threads may write it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import attrs

from adapters.broker import CancelOutcome, CancelStatus, Ticket, TicketStatus
from adapters.journal import Journal, account_key
from adapters.kiwoom.client import KiwoomClient, OpenOrder, OrderAnswer, OrderDetail
from adapters.kiwoom.errors import ConfigError, InputError, KiwoomError, Outcome, StaleBook
from engine import CancelRefused, EngineError, ModifyRefused, OrderBook, Side
from engine import events as ev
from engine.order import CancelInfo, Order
from engine.sessions import KST

__all__ = ["NOT_RECEIVED", "KiwoomBroker", "Reconciliation", "unknown_cancels"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: The code a cancel is released with when reconciliation found no trace of it.
NOT_RECEIVED: Final = "NOT_RECEIVED"


#: An unanswered cancel request: (its order's number, the engine's request id).
_Key = tuple[str, str]


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
    the wall clock (timezone-aware; passed in for tests) and ``clock`` a monotonic clock in
    seconds, which measures the unknown-cancel grace (a jump of the wall clock never shortens
    it). The REST answers are the only facts besides reconciliation and :meth:`apply_events`
    (the real-time feed): fills, cancel confirmations and the effect of a modify reach the book
    from those.

    ``journal`` (a path, or an open :class:`adapters.journal.Journal`) makes the book durable:
    see the module docstring. ``account`` names the account in the journal (default: a digest of
    the API host and the app key). ``book`` and ``journal`` cannot both be given.
    """

    def __init__(
        self,
        client: KiwoomClient,
        book: OrderBook | None = None,
        *,
        journal: str | os.PathLike[str] | Journal | None = None,
        account: str | None = None,
        unknown_grace: timedelta = timedelta(seconds=30),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if book is not None and journal is not None:
            raise ConfigError("pass a book or a journal (which makes the book), not both")
        self.client = client
        self.unknown_grace = unknown_grace
        self._now = now
        self._clock = clock
        #: The one writer's lock: held for every change to the book and the journal.
        self.lock = threading.RLock()
        self._sent_at: dict[_Key, float] = {}  # monotonic time each unanswered request failed
        self._in_flight: set[_Key] = set()  # requests being sent right now (another thread)
        self._tickets = 0
        #: The Korea-time date the book belongs to: Kiwoom's order numbers restart every day.
        self.trading_day: date = now().astimezone(KST).date()
        self.journal: Journal | None = None
        if journal is not None:
            if isinstance(journal, Journal):
                self.journal = journal
            else:
                name = account or account_key(client.base_url, client.tokens.fingerprint())
                self.journal = Journal(journal, account=name)
            self.book = self._open_day()
        else:
            self.book = book if book is not None else OrderBook()

    def _open_day(self) -> OrderBook:
        """Replay the journal's day; mark unknown what a previous process left unanswered."""
        assert self.journal is not None
        book = self.journal.open_day(self.trading_day)
        for ord_no, request_id in unknown_cancels(book):
            # Reserved (and perhaps sent) by a process that is gone: its answer is lost. A
            # request already marked is left as it is (the book ignores a second mark).
            book.apply(ev.CancelOutcomeUnknown(ord_no, request_id, ts=self._now()))
        self.journal.commit(durable=True)
        return book

    def start_day(self, book: OrderBook | None = None) -> OrderBook:
        """Begin a new trading day with ``book`` (default: a new, empty one); return it.

        Order numbers restart every day, so a book holds one day. Reconcile the old book first
        (``reconcile(old_book)`` still reads its day) if its last fills and cancels matter.
        With a journal, the new day's book is the journal's (replayed if it has the day).
        """
        with self.lock:
            self.trading_day = self._now().astimezone(KST).date()
            self._sent_at.clear()
            if self.journal is not None:
                if book is not None:
                    raise ConfigError("a journalled broker makes its own book")
                self.book = self._open_day()
            else:
                self.book = book if book is not None else OrderBook()
            return self.book

    def close(self) -> None:
        """Commit and close the journal (if any). The client is the caller's to close."""
        with self.lock:
            if self.journal is not None:
                self.journal.close()

    def _commit(self, *, durable: bool = False) -> None:
        """Write what the book took since the last commit (``durable``: before a send)."""
        if self.journal is not None:
            self.journal.commit(durable=durable)

    def _same_day(self, what: str) -> datetime:
        """Return the time now, or raise :class:`StaleBook` once the trading day is over."""
        now = self._now()
        today = now.astimezone(KST).date()
        if today != self.trading_day:
            raise StaleBook(
                f"{what}: the book is of {self.trading_day}, today is {today} in Korea and order "
                "numbers restart every day; call start_day() for a new book. Nothing was sent."
            )
        return now

    def __repr__(self) -> str:
        return f"KiwoomBroker({self.client!r}, unknown={len(self.unknown)})"

    @property
    def unknown(self) -> tuple[str, ...]:
        """Return the request ids of the book's cancels whose outcome is not known yet."""
        with self.lock:
            return tuple(info.request_id for _no, info in unknown_cancels(self.book).items())

    def _ticket(self, kind: str, request_id: str = "") -> Ticket:
        with self.lock:
            self._tickets += 1
            return Ticket(kind, request_id or f"K{self._tickets:07d}")

    # -- facts from elsewhere ----------------------------------------------------------------------
    def apply_events(self, events: Iterable[ev.Event]) -> Reconciliation:
        """Apply ``events`` (from the real-time feed, say) to the book, as the one writer.

        Each event is applied in order under :attr:`lock` and journalled; one the book refuses
        changes nothing and is listed in the result's ``refused`` (and logged). The batch is
        committed to the journal before this returns.
        """
        report = Reconciliation()
        with self.lock:
            book = self.book
            for event in events:
                self._apply(book, event, report)
            self._commit()
        return report

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
        with self.lock:
            self._same_day("place")
            book = self.book
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
        with self.lock:
            self._apply(book, accepted, None)
            self._commit()
        return ticket

    def modify(
        self, *, orig_ord_no: str, stk_cd: str, qty: int | str, price: int, exchange: str = "KRX"
    ) -> Ticket:
        """Reserve the shares in the book, then send a modify (kt10002); the ticket gets the new
        order number.

        The engine decides first (the shares a modify may move are those a cancel could take);
        a refusal sends nothing and comes back REJECTED with the refusal's name as its code.
        The reservation (``ModifyRequested``) is journalled before sending, so no cancel may
        take the shares the modify is about to move. The REST answer only numbers the modify
        (``ModifyAccepted``); the shares move when :meth:`reconcile` (or a 정정 확인 event)
        shows the modify done. An unknown outcome keeps the reservation until reconciled.
        """
        ticket = self._ticket("modify")
        with self.lock:
            now = self._same_day("modify")
            book = self.book
            try:
                request = book.request_modify(orig_ord_no, qty, price, at=now, ts=now)
            except ModifyRefused as refused:
                reason = refused.decision.reason
                name = reason.name if reason is not None else "REFUSED"
                ticket.resolve(TicketStatus.REJECTED, "", name, str(refused))
                return ticket
            key = self._reserved(book, request.orig_ord_no, request.request_id, now, modify=True)
        ticket.request_id = request.request_id
        answer = self._send_reserved(
            book,
            key,
            request.qty,
            now,
            lambda: self.client.modify(
                orig_ord_no=request.orig_ord_no,
                stk_cd=stk_cd,
                qty=request.mdfy_qty,
                price=price,
                exchange=exchange,
            ),
            modify=True,
        )
        if isinstance(answer, KiwoomError):
            self._fail(ticket, answer)
        else:
            ticket.resolve(TicketStatus.ACCEPTED, answer.ord_no, "", answer.message)
        return ticket

    @staticmethod
    def _fail(ticket: Ticket, exc: KiwoomError) -> None:
        status = TicketStatus.UNKNOWN if exc.outcome is Outcome.UNKNOWN else TicketStatus.REJECTED
        ticket.resolve(status, "", exc.code or type(exc).__name__, exc.message)

    # -- cancels ---------------------------------------------------------------------------------
    def cancel(
        self,
        book: OrderBook | None,
        ord_no: str,
        qty: int | str = 0,
        *,
        at: datetime | None = None,
    ) -> CancelOutcome:
        """Ask the engine; send kt10003 only if it allows the cancel; put the answer in ``book``
        (None: the broker's book).

        REFUSED: the engine said no, nothing was sent. ACCEPTED: the server numbered the cancel
        (fills can still race it). REJECTED: a definitive refusal (RC4033...) or a request the
        server certainly did not act on (throttled past the retries): the reservation is
        released. UNKNOWN: the reservation stays, marked unknown (no new cancel of the order is
        allowed) until :meth:`reconcile` settles it.

        The reservation is journalled durably before kt10003 leaves; the lock is not held while
        the request is on the wire.
        """
        with self.lock:
            now = self._same_day("cancel")
            book = book if book is not None else self.book
            try:
                request = book.request_cancel(ord_no, qty, at=at if at is not None else now, ts=now)
            except CancelRefused as refused:
                return CancelOutcome(refused.decision, CancelStatus.REFUSED)
            key = self._reserved(book, request.orig_ord_no, request.request_id, now, modify=False)
        ticket = self._ticket("cancel", request.request_id)
        answer = self._send_reserved(
            book,
            key,
            request.qty,
            now,
            lambda: self.client.cancel(
                orig_ord_no=request.orig_ord_no,
                stk_cd=request.stk_cd,
                qty=request.cncl_qty,
                exchange=request.exchange,
            ),
            modify=False,
        )
        if isinstance(answer, KiwoomError):
            self._fail(ticket, answer)
            unknown = answer.outcome is Outcome.UNKNOWN
            status = CancelStatus.UNKNOWN if unknown else CancelStatus.REJECTED
            return CancelOutcome(request.decision, status, request, ticket)
        ticket.resolve(TicketStatus.ACCEPTED, answer.ord_no, "", answer.message)
        return CancelOutcome(request.decision, CancelStatus.ACCEPTED, request, ticket)

    # -- one path for every reserved request (a cancel, a modify) --------------------------------
    def _reserved(
        self, book: OrderBook, orig_ord_no: str, request_id: str, now: datetime, *, modify: bool
    ) -> _Key:
        """Commit a reservation just made (under the lock) durably, before its request leaves.

        If the journal cannot take it, the reservation is released (nothing was sent; the
        release is journalled with the next commit) and the error propagates.
        """
        key = (orig_ord_no, request_id)
        self._in_flight.add(key)
        try:
            self._commit(durable=True)
        except BaseException:
            self._in_flight.discard(key)
            release = ev.ModifyRejected if modify else ev.CancelRejected
            self._apply(book, release(orig_ord_no, "NOT_SENT", request_id=request_id), None)
            raise
        return key

    def _send_reserved(
        self,
        book: OrderBook,
        key: _Key,
        qty: int,
        now: datetime,
        send: Callable[[], OrderAnswer],
        *,
        modify: bool,
    ) -> OrderAnswer | KiwoomError:
        """Send the reserved request ``key`` (without the lock) and put its answer in the book.

        Accepted: its number (``CancelAccepted``/``ModifyAccepted``). A definitive refusal:
        released (``CancelRejected``/``ModifyRejected``), and the error is returned. Unknown (or
        interrupted): it stays reserved, its grace starting now; a cancel is marked
        ``CancelOutcomeUnknown``. The error is returned, an interruption re-raised.
        """
        what = "modify" if modify else "cancel"
        try:
            answer = send()
        except KiwoomError as exc:
            with self.lock:
                self._in_flight.discard(key)
                if exc.outcome is Outcome.UNKNOWN:
                    self._lost(book, key, now, modify=modify)
                    log.warning(
                        "%s %s of %s: outcome unknown (%s); will reconcile",
                        what,
                        key[1],
                        key[0],
                        type(exc).__name__,
                    )
                else:
                    refused = ev.ModifyRejected if modify else ev.CancelRejected
                    code = exc.code or type(exc).__name__
                    self._apply(
                        book, refused(key[0], code, exc.message, request_id=key[1], ts=now), None
                    )
                    self._commit()
            return exc
        except BaseException:
            with self.lock:  # interrupted: unknown, reconciliation settles it
                self._in_flight.discard(key)
                self._lost(book, key, now, modify=modify)
            raise
        accepted = ev.ModifyAccepted if modify else ev.CancelAccepted
        with self.lock:
            self._in_flight.discard(key)
            self._apply(book, accepted(answer.ord_no, key[0], qty, key[1], ts=now), None)
            self._commit()
        return answer

    def _lost(self, book: OrderBook, key: _Key, now: datetime, *, modify: bool) -> None:
        """Its answer was lost: the grace of ``key`` runs from now; a cancel is marked unknown."""
        self._sent_at[key] = self._clock()
        if not modify:
            self._apply(book, ev.CancelOutcomeUnknown(key[0], key[1], ts=now), None)
            self._commit(durable=True)

    # -- reconciliation --------------------------------------------------------------------------
    def reconcile(
        self, book: OrderBook | None = None, *, day: date | None = None
    ) -> Reconciliation:
        """Bring ``book`` (default: the broker's) up to what the server shows, as events.

        Reads ka10075 (open orders) and kt00007 (every order, modify and cancel of ``day``,
        default the broker's :attr:`trading_day`), every page of both, and applies, in order:
        orders the book does not know (접수, 확인, 거부), modifies (정정), fills it missed (one
        positioned fill per order, "shares 1 to N", so that executions reported by the
        real-time feed before or after it are not counted twice), cancels (accepted,
        confirmed, or rejected by the venue) and what the venue expired. An unknown cancel
        found on the server is matched to its request; one with no trace after
        ``unknown_grace`` is released (``CancelRejected`` with code ``NOT_RECEIVED``); so is an
        unknown modify (``ModifyRejected``). Works on its own too: at start-up with an empty
        book, or after a disconnect.

        The reads happen without the lock; what they show is applied under it, as one writer.
        Only requests that were already unanswered (and not on the wire) when the reads began
        can be released: a request sent meanwhile may be missing from the rows for that reason.
        """
        with self.lock:
            book = book if book is not None else self.book
            day = day if day is not None else self.trading_day
            candidates = set(unknown_cancels(book)) | set(_unknown_modifies(book))
            candidates -= self._in_flight
        report = Reconciliation()
        unreadable: list[str] = []

        def bad_row(row: Mapping[str, Any], exc: InputError) -> None:
            unreadable.append(f"an unreadable row {row.get('ord_no')!r}: {exc.message}")

        report.open_orders = self.client.open_orders(on_bad_row=bad_row)
        details = self.client.order_details(day, on_bad_row=bad_row)
        report.discrepancies += unreadable
        with self.lock:
            self._reconcile_rows(book, details, candidates, bool(unreadable), report)
            self._commit()
        return report

    def _reconcile_rows(
        self,
        book: OrderBook,
        details: list[OrderDetail],
        candidates: set[_Key],
        unreadable: bool,
        report: Reconciliation,
    ) -> None:
        """Apply what the status rows show (under the lock); see :meth:`reconcile`."""
        now = self._now()
        unknown = unknown_cancels(book)  # as they stand before anything is applied
        known = set(book.orders)  # a modify row the book already had cannot be an unknown modify
        modifies = _unknown_modifies(book)
        rows = sorted(details, key=lambda r: (len(r.ord_no), r.ord_no))
        orders = [r for r in rows if r.kind != "취소"]
        cancels = [r for r in rows if r.kind == "취소"]
        # 1. orders and modifies, in number order (a modify's original comes first)
        for row in orders:
            self._reconcile_order(book, row, now, report)
        # 2. fills the book missed: "shares 1 to N are filled", which the book counts only
        # where no fill (an execution from the real-time feed, say) has counted them already
        for row in orders:
            order = book.orders.get(row.ord_no)
            if order is not None and row.filled_qty > order.filled_qty:
                fill = ev.OrderFilled(
                    row.ord_no,
                    f"R{row.ord_no}-{row.filled_qty}",
                    row.filled_qty,
                    _delta_price(order, row),
                    row.filled_qty,
                    ts=now,
                )
                self._apply(book, fill, report)
        # 3. cancels: matched to the unknown requests they answer
        matching = _Matching(unknown)
        if unreadable:  # a row we could not read may be one of them: release none this time
            matching.ambiguous.update(unknown)
            matching.ambiguous.update(modifies)
        matching.ambiguous.update(k for k in (*unknown, *modifies) if k not in candidates)
        for row in cancels:
            self._reconcile_cancel(book, row, now, report, matching)
        # 4. unknown cancels and modifies that no row answered
        for key in unknown:
            self._settle_unknown(book, key, now, report, matching)
        modified = {r.orig_ord_no for r in orders if r.kind == "정정" and r.ord_no not in known}
        for key in modifies:
            if key[0] in modified:  # a modify row of the order the book could not tell apart
                matching.ambiguous.add(key)
            self._settle_unknown(book, key, now, report, matching)
        # 5. what the venue expired, and what nothing explains
        for row in orders:
            self._reconcile_rest(book, row, now, report)
        self._check_open(book, report.open_orders, report)

    def _settle_unknown(
        self,
        book: OrderBook,
        key: _Key,
        now: datetime,
        report: Reconciliation,
        matching: _Matching,
    ) -> None:
        """Resolve one unknown cancel (or modify): found, settled meanwhile, still in its
        grace, or released."""
        order_no, request_id = key
        order = book.orders[order_no]
        current = next(c for c in (*order.cancels, *order.modifies) if c.request_id == request_id)
        is_modify = any(m.request_id == request_id for m in order.modifies)
        if key in matching.claimed or current.status != "pending" or current.cancel_no:
            self._sent_at.pop(key, None)  # found on the server, or answered by another fact
            report.resolved.append(request_id)
            return
        if key in matching.ambiguous:  # a row might be this cancel: never release it on a guess
            report.unresolved.append(request_id)
            return
        # Elapsed time on the monotonic clock: a jump of the wall clock never shortens the
        # grace. A request this process never sent (a restart) gets its grace from now on.
        sent_at = self._sent_at.setdefault(key, self._clock())
        if self._clock() - sent_at < self.unknown_grace.total_seconds():
            report.unresolved.append(request_id)
            return
        what = "modify" if is_modify else "cancel"
        text = f"no trace of the {what} on the server {self.unknown_grace} after sending"
        released: ev.Event = (
            ev.ModifyRejected(order_no, NOT_RECEIVED, text, request_id=request_id, ts=now)
            if is_modify
            else ev.CancelRejected(order_no, NOT_RECEIVED, text, request_id=request_id, ts=now)
        )
        if self._apply(book, released, report):
            del self._sent_at[key]
            report.resolved.append(request_id)
        else:
            report.unresolved.append(request_id)

    def _reconcile_order(
        self, book: OrderBook, row: OrderDetail, now: datetime, report: Reconciliation
    ) -> None:
        order = book.orders.get(row.ord_no)
        if order is None:
            if row.kind == "정정" and row.status == "거부":  # refused: no shares moved
                orig = book.orders.get(row.orig_ord_no)
                if orig is not None and any(
                    m.cancel_no == row.ord_no and m.status == "pending" for m in orig.modifies
                ):
                    refused = ev.ModifyRejected(
                        row.orig_ord_no, "REJECTED", "거부 (kt00007)", row.ord_no, ts=now
                    )
                    self._apply(book, refused, report)
                return
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
        matching: _Matching,
    ) -> None:
        """Bring one cancel row of kt00007 into the book: its acceptance, then its outcome."""
        orig = book.orders.get(row.orig_ord_no)
        if orig is None:
            report.discrepancies.append(
                f"cancel {row.ord_no} of {row.orig_ord_no}, an order the book does not know"
            )
            return
        info = _numbered(orig, row.ord_no) or self._accept(book, orig, row, now, report, matching)
        if info is None or info.status != "pending":
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

    def _accept(
        self,
        book: OrderBook,
        orig: Order,
        row: OrderDetail,
        now: datetime,
        report: Reconciliation,
        matching: _Matching,
    ) -> CancelInfo | None:
        """Apply the acceptance of a cancel row the book has no number for; return its record.

        The row answers the unknown request it matches; with none to match it is a cancel this
        book never asked for (another client of the account), taken and flagged by the engine.
        A row that might answer an unknown request of another size is left for a human.
        """
        found = matching.take(row)
        if found is not None:
            accepted = ev.CancelAccepted(
                row.ord_no, row.orig_ord_no, found.qty, found.request_id, ts=now
            )
        elif rivals := matching.open_for(row.orig_ord_no):
            matching.ambiguous.update(rivals)  # binding or releasing either would be a guess
            report.discrepancies.append(
                f"cancel {row.ord_no} of {row.orig_ord_no} ({row.qty} shares) fits none of the "
                f"unanswered requests {sorted(r for _no, r in rivals)}: left for a human"
            )
            return None
        elif row.qty <= 0:  # 0 would mean "all" to the engine: never guess
            report.discrepancies.append(f"cancel {row.ord_no}: a row with no quantity")
            return None
        else:
            accepted = ev.CancelAccepted(row.ord_no, row.orig_ord_no, row.qty, ts=now)
        if not self._apply(book, accepted, report):
            return None
        return _numbered(orig, row.ord_no)

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


def _numbered(order: Order, cancel_no: str) -> CancelInfo | None:
    """Return ``order``'s cancel numbered ``cancel_no``, or None."""
    return next((c for c in order.cancels if c.cancel_no == cancel_no), None)


def unknown_cancels(book: OrderBook) -> dict[_Key, CancelInfo]:
    """Return the book's cancels sent (or about to be) but never answered, oldest first.

    Those are the pending cancel requests without a broker number: an acceptance gives a number,
    a rejection or confirmation ends them.
    """
    found: dict[_Key, CancelInfo] = {}
    for order in book.orders.values():
        if order.pending_cancel_qty or order.cancel_all_pending:
            for info in order.cancels:
                if info.status == "pending" and not info.cancel_no:
                    found[order.ord_no, info.request_id] = info
    return found


def _unknown_modifies(book: OrderBook) -> dict[_Key, CancelInfo]:
    """Return the book's modify requests sent (or about to be) but never numbered or answered."""
    found: dict[_Key, CancelInfo] = {}
    for order in book.orders.values():
        if order.pending_modify_qty or order.modify_all_pending:
            for info in order.modifies:
                if info.status == "pending" and not info.cancel_no:
                    found[order.ord_no, info.request_id] = info
    return found


class _Matching:
    """Which unknown cancel a cancel row of the server answers, by size (one reconcile's state).

    A row answers the oldest unclaimed request of its order for the same number of shares, else
    the oldest unclaimed cancel-all (whose size was decided by the venue). Requests of one order
    and one size are interchangeable: their kt10003 bodies are identical, so which of them the
    server took cannot be known, and binding one and releasing the other leaves the same
    shares reserved, cancelled and free.
    """

    def __init__(self, unknown: dict[_Key, CancelInfo]) -> None:
        self.unknown = unknown
        self.claimed: set[_Key] = set()
        self.ambiguous: set[_Key] = set()

    def open_for(self, orig_ord_no: str) -> list[_Key]:
        return [k for k in self.unknown if k[0] == orig_ord_no and k not in self.claimed]

    def take(self, row: OrderDetail) -> CancelInfo | None:
        keys = self.open_for(row.orig_ord_no)
        exact = [k for k in keys if self.unknown[k].qty == row.qty > 0]
        everything = [k for k in keys if self.unknown[k].qty == 0]
        for key in exact or everything:
            self.claimed.add(key)
            return self.unknown[key]
        return None
