"""A simulated exchange that keeps the truth for every order and emits ``engine.events``.

Two stages, as at a real broker: a request first reaches the broker's **order server**, which
numbers it or rejects it with Kiwoom's codes (``docs/kiwoom.md``, "Answer codes"); then it
travels to the **venue**, the matching engine, where resting orders fill against the price path.
A cancel the order server accepted takes only what is still unfilled when it reaches the venue,
so with latency a fill can beat it; with zero latency a cancel beats every later bar's fills.

Everything runs on a simulated clock (whole milliseconds from ``start``) advanced by the caller,
and on the exchange's own ``random.Random(seed)``: the same seed and inputs give the same events.
"""

from __future__ import annotations

import heapq
import random
from array import array
from bisect import insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from heapq import heappush
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final

from adapters.broker import Ticket, TicketStatus
from adapters.sim.latency import Delay, Latency
from adapters.sim.market import Bar, _Column, _Outcome
from engine import OrderState, SessionCalendar, Side
from engine import events as ev
from engine.sessions import KST

__all__ = [
    "ORDER_TYPES",
    "SimError",
    "SimExchange",
    "TruthOrder",
]

#: trde_tp codes the simulated exchange takes: (is a market order, time in force).
ORDER_TYPES: Final[dict[str, tuple[bool, str]]] = {
    "0": (False, "DAY"),  # 보통 (limit)
    "3": (True, "DAY"),  # 시장가 (market)
    "10": (False, "IOC"),  # 보통 IOC
    "13": (True, "IOC"),  # 시장가 IOC
    "20": (False, "FOK"),  # 보통 FOK
    "23": (True, "FOK"),  # 시장가 FOK
}

_MAX_QTY: Final = 10**12 - 1
_FIRST: Final = -(1 << 62)  # market orders come before every limit
_MS: Final = timedelta(milliseconds=1)  # times a count: 3x cheaper than timedelta(milliseconds=n)
_MAX_ORD_NO: Final = 9_999_999
_ANY_PRICE: Final = 1 << 62  # above every price: what a market buy pays at most

# Kiwoom order-server rejections (mock texts start with 모의투자; the real ones do not).
RC_NOTHING_LEFT: Final = ("RC4033", "정정/취소할 수량이 없습니다")
RC_UNKNOWN_ORDER: Final = ("RC4032", "원주문번호가 존재하지 않습니다")
RC_EXCEEDS: Final = ("RC4042", "정정/취소 가능수량을 초과하였습니다")
RC_NOT_OPEN: Final = ("RC4057", "장 시작 전입니다")
RC_CLOSED: Final = ("RC4058", "장이 종료되었습니다")
RC_HOLIDAY: Final = ("RC4010", "영업일이 아닙니다")
PRICE_BAND_REJECT: Final = ("RC4000", "주문가격이 상하한가를 벗어났습니다")


def _plain_code(stk_cd: object) -> bool:
    """Return True for a plain 6-character stock code (``005930``; not ``A005930``)."""
    return type(stk_cd) is str and len(stk_cd) == 6 and stk_cd.isascii() and stk_cd.isalnum()


def _ignore(_event: ev.Event) -> None:
    """The sink of an exchange nobody listens to."""


class SimError(ValueError):
    """A request the simulated exchange cannot take at all (malformed input). Nothing changed."""


class TruthOrder:
    """The exchange's own record of one order: what really happened to it."""

    __slots__ = (
        "cancelled",
        "confirmed",
        "exchange",
        "filled",
        "inflight",
        "inflight_all",
        "leaves",
        "market",
        "notional",
        "ord_no",
        "origin",
        "price",
        "prio",
        "qty",
        "rejected",
        "replaced",
        "seq",
        "side",
        "stk_cd",
        "successor",
        "tif",
    )

    def __init__(
        self,
        ord_no: str,
        stk_cd: str,
        side: Side,
        qty: int,
        price: int,
        market: bool,
        tif: str,
        exchange: str,
        seq: int,
        origin: str | None = None,
    ) -> None:
        self.ord_no = ord_no
        self.stk_cd = stk_cd
        self.side = side
        self.qty = qty
        self.price = price
        self.market = market
        self.tif = tif
        self.exchange = exchange
        self.seq = seq
        self.origin = origin
        self.successor: str | None = None
        self.filled = 0
        self.cancelled = 0
        self.replaced = 0
        self.leaves = qty
        self.notional = 0
        self.confirmed = False
        self.rejected = False
        self.inflight = 0  # shares reserved by cancels and modifies on their way to the venue
        self.inflight_all = False
        # Its place among resting orders: best price first (the highest buy, the lowest sell),
        # market orders before all; then time.
        self.prio = (_FIRST if market else -price if side is Side.BUY else price, seq)

    @property
    def state(self) -> OrderState:
        """Return the state docs/policies.md gives these quantities (derived independently)."""
        if self.rejected:
            return OrderState.REJECTED
        if self.leaves:
            if self.filled:
                return OrderState.PARTIALLY_FILLED
            return OrderState.CONFIRMED if self.confirmed else OrderState.RECEIVED
        if self.filled == self.qty:
            return OrderState.FILLED
        if self.cancelled:
            return OrderState.CANCELLED
        return OrderState.REPLACED if self.replaced else OrderState.CANCELLED

    def __repr__(self) -> str:
        return (
            f"<TruthOrder {self.ord_no} {self.stk_cd} {self.side.name} {self.state.name} "
            f"Q={self.qty} F={self.filled} C={self.cancelled} M={self.replaced} L={self.leaves}>"
        )


class _Book:
    """The resting orders of one symbol, the last bar's close and what is left of its volume.

    Each is a pair indexed by side (:data:`BUY`, :data:`SELL`). The resting orders are kept in
    priority order (best price first, then time); orders that finished stay until they outnumber
    a quarter of the live ones (plus four), then the list is compacted: amortised O(1) per order.

    ``bid`` is at least the price of the best live resting buy (0: none; ``_ANY_PRICE``: a
    market buy) and ``ask`` at most that of the best live sell (``_ANY_PRICE``: none; 0: a
    market sell): a bar with its low above ``bid`` and its high below ``ask`` reaches no resting
    order. A new order widens them at once; they are narrowed again when a bar is matched.
    """

    __slots__ = ("ask", "bid", "caps", "close", "left", "resting")

    def __init__(self) -> None:
        self.resting: list[list[TruthOrder]] = [[], []]
        self.caps = [4, 4]
        self.left = [0, 0]
        self.close = 0  # the last bar's close (0: no bar yet; a bar's prices are positive)
        self.bid = 0
        self.ask = _ANY_PRICE

    def rest(self, order: TruthOrder) -> None:
        """Put ``order`` among the resting orders of its side, in priority order."""
        if order.side is Side.BUY:
            insort(self.resting[BUY], order, key=_priority)
            price = _ANY_PRICE if order.market else order.price
            if price > self.bid:
                self.bid = price
        else:
            insort(self.resting[SELL], order, key=_priority)
            price = 0 if order.market else order.price
            if price < self.ask:
                self.ask = price

    def narrow(self) -> None:
        """Drop the finished orders at the front of each side; set ``bid`` and ``ask`` to the
        best live resting orders' prices."""
        buys, sells = self.resting
        if buys and not buys[0].leaves:
            _drop_finished(buys)
        if sells and not sells[0].leaves:
            _drop_finished(sells)
        self.bid = 0 if not buys else _ANY_PRICE if buys[0].market else buys[0].price
        self.ask = _ANY_PRICE if not sells else 0 if sells[0].market else sells[0].price


BUY, SELL = 0, 1  # the two sides of a _Book

#: A walk's column beside its symbol's book: (the book, each step's outcome, volume bits).
_Lane = tuple[_Book, list[_Outcome], "array[int]"]


def _drop_finished(resting: list[TruthOrder]) -> None:
    """Remove the finished orders at the front of ``resting`` (in place)."""
    n = 1
    end = len(resting)
    while n < end and not resting[n].leaves:
        n += 1
    del resting[:n]


def _side(order: TruthOrder) -> int:
    return BUY if order.side is Side.BUY else SELL


_priority = attrgetter("prio")  # the key of the resting lists


class _Channel:
    """One latency channel: a delay drawn from its ``Delay``; first in, first out if ``fifo``."""

    __slots__ = ("fifo", "last", "low", "span")

    def __init__(self, delay: Delay, fifo: bool) -> None:
        self.low = delay.low
        self.span = delay.high - delay.low + 1
        self.fifo = fifo
        self.last = 0  # the latest arrival so far

    def arrival(self, now: int, random: Callable[[], float]) -> int:
        """Return when something sent at ``now`` arrives (one ``random()`` for a range)."""
        span = self.span
        at = now + (self.low + int(random() * span) if span > 1 else self.low)
        if self.fifo:
            if at < self.last:
                at = self.last
            self.last = at
        return at

    def latest(self, now: int) -> int:
        """Return the latest that something sent at ``now`` could arrive."""
        return max(now + self.low + self.span - 1, self.last)


class SimExchange:
    """The simulated exchange (see the module's docstring).

    ``sink`` receives every fact as an engine event when it is *delivered* (after the delivery
    latency); ``on_answer`` receives each :class:`~adapters.broker.Ticket` when its answer is
    delivered. ``sessions`` (a :class:`engine.SessionCalendar`), when given, makes the order
    server refuse requests outside its hours: RC4057 before noon (not yet open), RC4058 after,
    RC4010 on a day that is not a business day. ``price_band`` is the daily limit around each
    symbol's first price; a limit order outside it is rejected by the venue (거부).
    """

    __slots__ = (
        "_books",
        "_closed",
        "_day",
        "_day_end",
        "_delivery",
        "_dt_ms",
        "_exec_no",
        "_lanes",
        "_lanes_of",
        "_next_no",
        "_now",
        "_now_dt",
        "_orders",
        "_queue",
        "_random",
        "_reference",
        "_request",
        "_request_no",
        "_seq",
        "_shown",
        "_shown_volumes",
        "_sink",
        "_venue",
        "latency",
        "on_answer",
        "price_band",
        "requests",
        "rng",
        "sessions",
        "start",
    )

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        latency: Latency | None = None,
        sessions: SessionCalendar | None = None,
        price_band: float = 0.30,
        sink: Callable[[ev.Event], object] | None = None,
        on_answer: Callable[[Ticket], object] | None = None,
    ) -> None:
        if type(seed) is not int:
            raise SimError(f"seed must be an int (the same seed, the same events), not {seed!r}")
        if not isinstance(start, datetime) or start.utcoffset() is None:
            raise SimError(f"start must be a timezone-aware datetime, not {start!r}")
        if latency is not None and not isinstance(latency, Latency):
            raise SimError(f"latency must be a Latency, not {latency!r}")
        self.rng = random.Random(seed)
        self._random = self.rng.random
        self.start = start
        self.latency = latency or Latency()
        lat = self.latency
        self._request = _Channel(lat.request, fifo=True)
        self._venue = _Channel(lat.venue, fifo=True)
        self._delivery = _Channel(lat.delivery, fifo=not lat.reorder)
        self.sessions = sessions
        self.price_band = price_band
        self._sink: Callable[[ev.Event], object] = _ignore
        self.sink = sink
        self.on_answer = on_answer
        self._now = 0
        self._now_dt = start
        self._dt_ms = 0  # the ms that _now_dt was computed for
        self._orders: dict[str, TruthOrder] = {}
        self._books: dict[str, _Book] = {}
        # The walk's chunk whose steps are shown lazily (see _show_walk), its books and columns
        # side by side, and the step shown but not yet written into the books (-1: none).
        self._lanes_of: Sequence[_Column] = ()
        self._lanes: list[_Lane] = []
        self._shown = -1
        self._shown_volumes = 0
        self._reference: dict[str, int] = {}
        self._queue: list[tuple[int, int, Callable[..., object], tuple[Any, ...]]] = []
        self._seq = 0
        self._day = start.astimezone(KST).date()
        self._day_end = self._midnight_after(start.astimezone(KST))
        self._next_no = 1
        self._exec_no = 0
        self._request_no = 0
        self._closed = False
        self.requests = 0

    # -- reading -----------------------------------------------------------------------------
    @property
    def sink(self) -> Callable[[ev.Event], object] | None:
        """Return where delivered events go (None: nowhere)."""
        return None if self._sink is _ignore else self._sink

    @sink.setter
    def sink(self, sink: Callable[[ev.Event], object] | None) -> None:
        self._sink = _ignore if sink is None else sink

    @property
    def now_ms(self) -> int:
        """Return the simulated time in ms since ``start``."""
        return self._now

    @property
    def now(self) -> datetime:
        """Return the simulated time (computed when asked, once per simulated millisecond)."""
        if self._dt_ms != self._now:
            self._dt_ms = self._now
            self._now_dt = self.start + _MS * self._now
        return self._now_dt

    @property
    def orders(self) -> Mapping[str, TruthOrder]:
        """Return the truth of every numbered order (read-only mapping)."""
        return MappingProxyType(self._orders)

    @property
    def closed(self) -> bool:
        """Return True once :meth:`close` ended the session."""
        return self._closed

    @property
    def busy(self) -> bool:
        """Return True while requests, venue actions or deliveries are still on their way."""
        return bool(self._queue)

    def last_price(self, stk_cd: str) -> int | None:
        """Return the symbol's last traded price, or None before its first bar."""
        self._sync()
        book = self._books.get(stk_cd)
        return book.close or None if book is not None else None

    def open_orders(self) -> Iterator[TruthOrder]:
        """Yield the orders with shares still open, oldest first."""
        return (o for o in self._orders.values() if o.leaves)

    # -- the clock ---------------------------------------------------------------------------
    def advance(self, to_ms: int) -> None:
        """Run everything due up to ``to_ms`` (inclusive) in time order; then the clock is there."""
        if type(to_ms) is not int or to_ms < self._now:
            raise SimError(f"the clock moves forward in whole ms: {to_ms!r} ms, now {self._now} ms")
        queue = self._queue
        pop = heapq.heappop
        while queue and queue[0][0] <= to_ms:
            at, _, action, args = pop(queue)
            self._now = at
            action(*args)
        self._now = to_ms

    def drain(self) -> None:
        """Run everything still on its way, however late."""
        while self._queue:
            self.advance(self._queue[0][0])

    def _fact(self, cls: Callable[..., ev.Event], *args: Any) -> ev.Event:
        """Return the event ``cls(*args)`` stamped with the simulated time."""
        return cls(*args, ts=self.now)

    def _emit(self, cls: Callable[..., ev.Event], *args: Any) -> None:
        """Deliver the fact ``cls(*args)`` to the sink after the delivery latency (hot: inlined)."""
        now = self._now
        if self._dt_ms != now:
            self._dt_ms = now
            self._now_dt = self.start + _MS * now
        event = cls(*args, ts=self._now_dt)
        self._seq = seq = self._seq + 1
        channel = self._delivery  # inlined _Channel.arrival
        span = channel.span
        at = now + (channel.low + int(self._random() * span) if span > 1 else channel.low)
        if channel.fifo:
            if at < channel.last:
                at = channel.last
            channel.last = at
        heappush(self._queue, (at, seq, self._sink, (event,)))

    def _answer(
        self,
        ticket: Ticket,
        status: TicketStatus,
        ord_no: str,
        rc: tuple[str, str] | None,
        event: ev.Event | None = None,
    ) -> None:
        """Send the order server's answer to ``ticket`` back over the delivery channel.

        ``event`` is the fact the answer comes with (the 접수 of a new order, the acceptance or
        rejection of a cancel): both arrive together, the answer first.
        """
        code, message = rc if rc is not None else ("", "")
        self._seq = seq = self._seq + 1
        at = self._delivery.arrival(self._now, self._random)
        heappush(
            self._queue, (at, seq, self._resolve, (ticket, status, ord_no, code, message, event))
        )

    def _resolve(
        self,
        ticket: Ticket,
        status: TicketStatus,
        ord_no: str,
        code: str,
        msg: str,
        event: ev.Event | None,
    ) -> None:
        ticket.resolve(status, ord_no, code, msg)
        on_answer = self.on_answer
        if on_answer is not None:
            on_answer(ticket)
        if event is not None:
            self._sink(event)

    def _to_venue(self, action: Callable[..., None], *args: Any) -> None:
        """Send an accepted request on to the venue (first in, first out)."""
        at = self._venue.arrival(self._now, self._random)
        self._seq = seq = self._seq + 1
        heappush(self._queue, (at, seq, action, args))

    def _send(
        self, kind: str, serve: Callable[..., None], *args: Any, request_id: str = ""
    ) -> Ticket:
        now = self._now
        channel = self._request
        if channel.latest(now) >= self._day_end:  # it could arrive after midnight (Korea time)
            if now >= self._day_end:
                self._new_day()  # refuses a new day while this one's orders exist
            elif self._orders:
                raise SimError(
                    "this request could reach the order server after midnight (Korea time), "
                    "when order numbers restart: one SimExchange per trading day"
                )
        self.requests += 1
        self._request_no += 1
        ticket = Ticket(kind, request_id or f"S{self._request_no:07d}")
        self._seq = seq = self._seq + 1
        heappush(self._queue, (channel.arrival(now, self._random), seq, serve, (ticket, *args)))
        return ticket

    # -- requests (the broker's order server) -------------------------------------------------
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
        """Send a new order; the answer (a number or a rejection) comes back on the ticket."""
        kind = ORDER_TYPES.get(trde_tp)
        if kind is None:
            raise SimError(
                f"trde_tp {trde_tp!r} is not simulated; use one of {sorted(ORDER_TYPES)}"
            )
        market = kind[0]
        if not isinstance(side, Side):
            raise SimError(f"side must be a Side, not {side!r}")
        if type(qty) is not int or not 0 < qty <= _MAX_QTY:
            raise SimError(f"qty must be an int from 1 to {_MAX_QTY}, not {qty!r}")
        if type(price) is not int or price < 0 or (price == 0) != market:
            raise SimError(f"price {price!r} does not fit trde_tp {trde_tp!r} (0 = market only)")
        if not _plain_code(stk_cd):
            raise SimError(
                f"stk_cd must be a plain 6-character code such as 005930, not {stk_cd!r}"
            )
        if exchange not in ("KRX", "NXT", "SOR"):
            raise SimError(f"exchange must be KRX, NXT or SOR, not {exchange!r}")
        return self._send(
            "place", self._serve_place, stk_cd, side, qty, price, market, kind[1], exchange
        )

    def modify(self, *, orig_ord_no: str, qty: int, price: int) -> Ticket:
        """Send a modify of ``qty`` shares (0 = all remaining) of ``orig_ord_no`` to ``price``."""
        self._check_target(orig_ord_no, qty)
        if type(price) is not int or price <= 0:
            raise SimError(f"a modify needs a positive int price, not {price!r}")
        return self._send("modify", self._serve_modify, orig_ord_no, qty, price)

    def cancel(self, *, orig_ord_no: str, qty: int, request_id: str = "") -> Ticket:
        """Send a cancel of ``qty`` shares (0 = all remaining) of ``orig_ord_no``.

        ``request_id`` (the engine's) is carried on the cancel's events.
        """
        self._check_target(orig_ord_no, qty)
        return self._send("cancel", self._serve_cancel, orig_ord_no, qty, request_id=request_id)

    @staticmethod
    def _check_target(orig_ord_no: object, qty: object) -> None:
        if type(orig_ord_no) is not str or len(orig_ord_no) != 7 or not orig_ord_no.isdigit():
            raise SimError(
                f"an order number is a 7-digit string such as 0000140, not {orig_ord_no!r}"
            )
        if type(qty) is not int or not 0 <= qty <= _MAX_QTY:
            raise SimError(f"qty must be an int from 0 (all) to {_MAX_QTY}, not {qty!r}")

    def _new_day(self) -> bool:
        """Return True when the clock entered a new trading day; refuse it once orders exist."""
        if self._now < self._day_end:
            return False
        local = self.now.astimezone(KST)
        day = local.date()
        if self._orders:
            raise SimError(
                f"the clock entered {day} but this exchange holds orders of {self._day}: one "
                "SimExchange (and one OrderBook) per trading day, since order numbers restart"
            )
        self._day = day
        self._day_end = self._midnight_after(local)
        self._next_no = 1
        return True

    def _midnight_after(self, local: datetime) -> int:
        """Return the simulated ms of the first Korea-time midnight after ``local``."""
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), KST)
        return (midnight - self.start) // timedelta(milliseconds=1)

    def _number(self) -> str:
        if self._now >= self._day_end:
            self._new_day()
        no = self._next_no
        if no > _MAX_ORD_NO:
            raise SimError("order numbers of the day are exhausted (9,999,999)")
        self._next_no = no + 1
        return f"{no:07d}"

    def _session_refusal(self, exchange: str) -> tuple[str, str] | None:
        if self._closed:
            return RC_CLOSED
        sessions = self.sessions
        if sessions is None or sessions.accepts_cancel(exchange, self.now):
            return None
        local = self.now.astimezone(KST)
        if local.weekday() >= 5 or not getattr(sessions, "is_business_day", lambda _d: True)(
            local.date()
        ):
            return RC_HOLIDAY
        return RC_NOT_OPEN if local.hour < 12 else RC_CLOSED

    def _serve_place(
        self,
        ticket: Ticket,
        stk_cd: str,
        side: Side,
        qty: int,
        price: int,
        market: bool,
        tif: str,
        exchange: str,
    ) -> None:
        if self._closed or self.sessions is not None:
            refusal = self._session_refusal(exchange)
            if refusal is not None:
                self._answer(ticket, TicketStatus.REJECTED, "", refusal)
                return
        no = self._number()
        order = TruthOrder(no, stk_cd, side, qty, price, market, tif, exchange, self._seq)
        self._orders[no] = order
        # On its way to the venue first: with no latency the order is on the book (and has
        # taken what it could) before anyone hears its number and can ask to cancel it.
        self._to_venue(self._venue_place, order)
        accepted = ev.OrderAccepted(no, stk_cd, side, qty, price, exchange, ts=self.now)
        self._answer(ticket, TicketStatus.ACCEPTED, no, None, accepted)

    def _target(
        self, orig_ord_no: str, qty: int
    ) -> tuple[TruthOrder | None, tuple[str, str] | None]:
        """Check a cancel or modify at the order server: the order, or why it is refused."""
        orig = self._orders.get(orig_ord_no)
        if orig is None:
            return None, RC_UNKNOWN_ORDER
        if self._closed or self.sessions is not None:
            refusal = self._session_refusal(orig.exchange)
            if refusal is not None:
                return orig, refusal
        open_now = 0 if orig.inflight_all else orig.leaves - orig.inflight
        if open_now <= 0:
            return orig, RC_NOTHING_LEFT
        if qty > open_now:
            return orig, RC_EXCEEDS
        return orig, None

    @staticmethod
    def _reserve(orig: TruthOrder, qty: int) -> None:
        if qty:
            orig.inflight += qty
        else:
            orig.inflight_all = True

    @staticmethod
    def _unreserve(orig: TruthOrder, qty: int) -> int:
        """Release a reservation at the venue; return the shares the request can take now."""
        if qty:
            orig.inflight -= qty
            return min(qty, orig.leaves)
        orig.inflight_all = False
        return orig.leaves

    def _serve_cancel(self, ticket: Ticket, orig_ord_no: str, qty: int) -> None:
        orig, refusal = self._target(orig_ord_no, qty)
        if refusal is not None or orig is None:
            rc = refusal or RC_UNKNOWN_ORDER
            rejected = (
                None  # a rejection about an unknown number has no order to tell the engine of
                if orig is None
                else self._fact(ev.CancelRejected, orig_ord_no, *rc, "", ticket.request_id)
            )
            self._answer(ticket, TicketStatus.REJECTED, "", rc, rejected)
            return
        no = self._number()
        self._reserve(orig, qty)
        self._to_venue(self._venue_cancel, orig, no, qty, ticket.request_id)
        accepted = ev.CancelAccepted(no, orig_ord_no, qty, ticket.request_id, ts=self.now)
        self._answer(ticket, TicketStatus.ACCEPTED, no, None, accepted)

    def _serve_modify(self, ticket: Ticket, orig_ord_no: str, qty: int, price: int) -> None:
        orig, refusal = self._target(orig_ord_no, qty)
        if refusal is not None or orig is None:
            self._answer(ticket, TicketStatus.REJECTED, "", refusal)
            return
        no = self._number()
        self._reserve(orig, qty)
        self._to_venue(self._venue_modify, ticket, orig, no, qty, price)

    # -- the venue ---------------------------------------------------------------------------
    def _venue_place(self, order: TruthOrder) -> None:
        if self._closed:
            self._expire(order)
            return
        book = self._books.get(order.stk_cd)
        if book is None:
            book = self._books[order.stk_cd] = _Book()
        if not order.market and self._outside_band(order.stk_cd, order.price):
            order.rejected = True
            order.cancelled = order.leaves
            order.leaves = 0
            code, message = PRICE_BAND_REJECT
            self._emit(ev.OrderRejected, order.ord_no, code, message)
            return
        order.confirmed = True
        self._emit(ev.OrderConfirmed, order.ord_no)
        self._enter(book, order)

    def _enter(self, book: _Book, order: TruthOrder) -> None:
        """Match a confirmed order against what is left of the last bar; rest or expire the rest."""
        self._sync()  # the last bar may only have been noted (_show_walk)
        if order.tif == "FOK":
            available = self._available(book, order)
            if available >= order.leaves:
                self._take(book, order, order.leaves)
            else:
                self._expire(order)
            return
        available = self._available(book, order)
        if available:
            self._take(book, order, min(available, order.leaves))
        if order.leaves:
            if order.tif == "IOC" or (order.market and not book.close):
                self._expire(order)
            else:
                book.rest(order)

    def _available(self, book: _Book, order: TruthOrder) -> int:
        """Return how many shares ``order`` could take right now from the last bar."""
        close = book.close
        if not close:
            return 0
        buy = order.side is Side.BUY
        if order.market or (order.price >= close if buy else order.price <= close):
            return book.left[BUY if buy else SELL]
        return 0

    def _take(self, book: _Book, order: TruthOrder, qty: int) -> None:
        """Fill ``qty`` shares of ``order`` now at the last price (or its limit, if better)."""
        book.left[_side(order)] -= qty
        self._fill(order, qty, book.close)

    def _fill(self, order: TruthOrder, qty: int, price: int) -> None:
        self._exec_no += 1
        order.filled += qty
        order.leaves -= qty
        order.notional += qty * price
        self._emit(ev.OrderFilled, order.ord_no, f"{self._exec_no}", qty, price)

    def _expire(self, order: TruthOrder) -> None:
        if order.leaves:
            order.cancelled += order.leaves
            order.leaves = 0
            self._emit(ev.OrderExpired, order.ord_no)

    def _venue_cancel(self, orig: TruthOrder, cancel_no: str, qty: int, request_id: str) -> None:
        n = self._unreserve(orig, qty)
        if n == 0:  # everything filled (or expired) on the way: nothing left to cancel
            code, message = RC_NOTHING_LEFT
            self._emit(ev.CancelRejected, orig.ord_no, code, message, cancel_no, request_id)
            return
        orig.leaves -= n
        orig.cancelled += n
        self._emit(ev.CancelConfirmed, cancel_no, orig.ord_no, n, request_id)

    def _venue_modify(
        self, ticket: Ticket, orig: TruthOrder, new_no: str, qty: int, price: int
    ) -> None:
        """Move what is still open (up to ``qty``) to order ``new_no``; answer the modify.

        A modify is answered once the venue has done it: ACCEPTED with the new number (its
        ``OrderAmended`` arrives with the answer), or REJECTED when fills left nothing to move
        (RC4033), the session closed (RC4058) or the new price is outside the daily band; the
        number then never becomes an order.
        """
        n = self._unreserve(orig, qty)
        refusal = (
            RC_CLOSED
            if self._closed
            else RC_NOTHING_LEFT
            if n == 0
            else PRICE_BAND_REJECT
            if self._outside_band(orig.stk_cd, price)
            else None
        )
        if refusal is not None:
            self._answer(ticket, TicketStatus.REJECTED, "", refusal)
            return
        orig.leaves -= n
        orig.replaced += n
        orig.successor = new_no
        successor = TruthOrder(
            new_no,
            orig.stk_cd,
            orig.side,
            n,
            price,
            False,
            "DAY",
            orig.exchange,
            self._seq,
            orig.ord_no,
        )
        successor.confirmed = True
        self._orders[new_no] = successor
        amended = self._fact(ev.OrderAmended, new_no, orig.ord_no, n, price)
        self._answer(ticket, TicketStatus.ACCEPTED, new_no, None, amended)
        self._enter(self._books[orig.stk_cd], successor)

    def _outside_band(self, stk_cd: str, price: int) -> bool:
        """Return True when a limit ``price`` strays further than the band from the reference."""
        reference = self._reference.get(stk_cd)
        return reference is not None and abs(price - reference) > reference * self.price_band

    # -- market data -------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """Match the resting orders of ``bar.stk_cd`` against ``bar`` (at the current time).

        Buys that the bar reached (limit >= low) fill in price-time priority, up to the bar's
        volume, at the open when it was already at or below the limit, else at the limit; sells
        likewise. What is left of the volume stays available to orders arriving before the next
        bar, at its close. A malformed bar raises :class:`SimError` and changes nothing.
        """
        bars = (bar,)
        self.check_bars(bars, self._now)
        self._match_bars(bars)

    def check_bars(self, bars: Sequence[Bar], at_ms: int) -> None:
        """Raise :class:`SimError` unless every bar is well formed and stamped ``at_ms``."""
        if type(at_ms) is not int or at_ms < self._now:
            raise SimError(f"bars at {at_ms!r} ms cannot be fed at {self._now} ms")
        books = self._books
        for bar in bars:
            if type(bar) is not Bar:
                raise SimError(f"not a Bar: {bar!r}")
            stk_cd, at, first, high, low, close, volume = bar
            if at != at_ms:
                raise SimError(f"bar at {at!r} ms in a step at {at_ms} ms: {bar!r}")
            if not (
                type(volume) is type(first) is type(high) is type(low) is type(close) is int
                and 0 < low <= first <= high
                and low <= close <= high
                and volume >= 0
            ):
                raise SimError(bar.problem() or f"not a bar: {bar!r}")
            if stk_cd not in books and not _plain_code(stk_cd):
                raise SimError(f"a bar's stk_cd is a plain 6-character code, not {stk_cd!r}")

    def _match_bars(self, bars: Sequence[Bar]) -> None:
        """Match bars already checked by :meth:`check_bars` (the harness's hot path)."""
        self._sync()
        match = self._match_bar
        for stk_cd, _, first, high, low, close, volume in bars:
            match(stk_cd, first, high, low, close, volume)

    def _match_walk(self, columns: Sequence[_Column], k: int, volumes: int) -> None:
        """Match step ``k`` of a walk's chunk (:meth:`adapters.sim.market._Walk.columns`), as
        :meth:`_match_bars` would match its bars, without making them."""
        self._shown = -1  # superseded
        match = self._match_bar
        for stk_cd, outcomes, sizes in columns:
            first, high, low, close, _ = outcomes[k]
            match(stk_cd, first, high, low, close, sizes[k] * volumes >> 16)

    def _match_bar(
        self, stk_cd: str, first: int, high: int, low: int, close: int, volume: int
    ) -> None:
        """Make a bar the last of its symbol, filling the resting orders it reaches.

        Most bars meet no resting order: those only become the symbol's last bar.
        """
        book = self._books.get(stk_cd)
        if book is None:
            book = self._new_book(stk_cd, first)
        book.close = close
        left = book.left
        if low > book.bid and high < book.ask:  # no resting order is within reach
            left[0] = left[1] = volume
            return
        left[0] = self._match_side(book, BUY, volume, first, low, 1) if low <= book.bid else volume
        left[1] = (
            self._match_side(book, SELL, volume, first, -high, -1) if high >= book.ask else volume
        )
        book.narrow()

    def _show_walk(self, columns: Sequence[_Column], k: int, volumes: int) -> None:
        """Make step ``k`` of a walk's chunk the last bars, as :meth:`_match_walk` would.

        A step in which no bar reaches a resting order (most of them) is only noted: its close
        and volume are written into the books when something reads them (:meth:`_sync`), so
        that a step nobody looks at costs a glance at each bar's high and low.
        """
        lanes = self._lanes if columns is self._lanes_of else self._lanes_for(columns)
        for book, outcomes, _ in lanes:
            _, high, low, _, _ = outcomes[k]
            if low <= book.bid or high >= book.ask:
                break  # within reach of a resting order
        else:
            if lanes:
                self._shown = k
                self._shown_volumes = volumes
                return
        self._match_walk(columns, k, volumes)

    def _first_reach(self, columns: Sequence[_Column], k: int, end: int) -> int:
        """Return the first of a walk's chunk's steps ``k`` to ``end - 1`` whose bars reach a
        resting order, by the rule of :meth:`_show_walk` (``end``: none does). Every step
        before it may be passed over: its bars would fill nothing (see ``_Walk.skip``)."""
        lanes = self._lanes if columns is self._lanes_of else self._lanes_for(columns)
        if not lanes:
            return k  # a symbol has no book yet: its first bar must be matched to open it
        for book, outcomes, _ in lanes:
            bid = book.bid
            ask = book.ask
            for j in range(k, end):
                _, high, low, _, _ = outcomes[j]
                if low <= bid or high >= ask:
                    end = j
                    break
        return end

    def _lanes_for(self, columns: Sequence[_Column]) -> list[_Lane]:
        """Return each column's book beside its outcomes and volumes (none before every symbol
        of the walk has a book: its first bar must be matched to open it)."""
        self._sync()  # the step shown belongs to the previous chunk
        books = self._books
        if any(code not in books for code, _, _ in columns):
            return []
        self._lanes_of = columns
        self._lanes = [(books[code], outcomes, sizes) for code, outcomes, sizes in columns]
        return self._lanes

    def _sync(self) -> None:
        """Write the walk's step shown (:meth:`_show_walk`) into the books, if one is pending."""
        k = self._shown
        if k < 0:
            return
        self._shown = -1
        volumes = self._shown_volumes
        for book, outcomes, sizes in self._lanes:
            book.close = outcomes[k][3]
            left = book.left
            left[0] = left[1] = sizes[k] * volumes >> 16

    def _new_book(self, stk_cd: str, first: int) -> _Book:
        """Open the book of a symbol at its first bar (whose open is the daily band's reference)."""
        book = self._books[stk_cd] = _Book()
        self._reference[stk_cd] = first
        return book

    def _match_side(
        self, book: _Book, side: int, volume: int, first: int, bound: int, sign: int
    ) -> int:
        """Fill the orders of ``side`` the bar reached, best first, up to ``volume``.

        ``sign`` is 1 for buys, -1 for sells, so that one loop serves both: an order is reached
        when ``sign * price >= bound`` (``bound`` the bar's low, or minus its high), and fills at
        the open when the bar opened through its limit (``sign * open <= sign * price``).
        Return what is left of ``volume``.
        """
        resting = book.resting[side]
        if not resting:
            return volume
        signed_first = sign * first
        for order in resting:
            leaves = order.leaves
            if not leaves:
                continue  # finished; dropped at the next compaction
            if not volume:
                break
            if order.market:
                price = first
            else:
                price = order.price
                if sign * price < bound:
                    break  # in priority order: no later order is reached either
                if signed_first <= sign * price:
                    price = first
            qty = leaves if leaves < volume else volume
            volume -= qty
            self._fill(order, qty, price)
        if len(resting) > book.caps[side]:
            live = [o for o in resting if o.leaves]
            book.resting[side] = live
            book.caps[side] = len(live) + len(live) // 4 + 4
        return volume

    # -- the end of the session --------------------------------------------------------------
    def close(self) -> None:
        """End the session now: the venue expires every open order; later requests get RC4058."""
        self._sync()
        self._closed = True
        for order in self._orders.values():
            if order.leaves:
                self._expire(order)
        for book in self._books.values():
            for resting in book.resting:
                resting.clear()
            book.narrow()
