"""A backtrader broker that trades through the engine and the simulated exchange.

``pip install -e '.[backtrader]'``, then::

    cerebro = bt.Cerebro()
    cerebro.adddata(BarFeed(bars))                 # or any feed named with a 6-digit code
    broker = cerebro.setbroker(EngineBroker(cash=10_000_000, seed=7, latency="5-150"))
    cerebro.addstrategy(MyStrategy)
    cerebro.run()
    assert broker.report is not None and broker.report.ok

:class:`EngineBroker` owns a :class:`~adapters.sim.harness.Harness` over a
:class:`~adapters.sim.exchange.SimExchange` and an :class:`engine.OrderBook`. On each backtrader
bar it turns the new bar of every feed into a :class:`~adapters.sim.market.Bar` and steps the
harness; the facts the engine takes become backtrader notifications:

========================================  ===================================================
engine / exchange                         backtrader order
========================================  ===================================================
request sent                              ``Submitted``
접수 (``OrderAccepted``)                   ``Accepted``; ``order.info.ord_no`` is the number
fill (``OrderFilled``)                    ``Partial`` / ``Completed`` with the real size and
                                          price; position, cash and value follow
취소 (cancel confirmed, IOC/FOK rest or     ``Canceled`` with the shares executed so far;
end-of-day expiry)                        ``order.info.expired`` is True for an expiry
거부 at the order server or the venue       ``Rejected``; ``order.info.code`` / ``.message``
refused before sending (order type, size,  ``Rejected`` (``Margin`` for cash) with
price, cash)                              ``order.info.reject_reason``
========================================  ===================================================

Cancels go through the engine's decision (:meth:`EngineBroker.cancel`, and
:meth:`EngineBroker.cancel_shares` for part of an order). A cancel the engine refuses never
reaches the exchange; see :meth:`EngineBroker.cancel` for what the strategy sees. With latency,
fills can beat a cancel: the backtrader order always ends where the engine's order ends
(``Completed`` when every share filled, ``Canceled`` with the executed size otherwise).

One broker simulates one trading day (order numbers restart each day): feed intraday bars whose
naive datetimes are wall-clock times in the time zone of ``start`` (09:00 KST by default).
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs
import backtrader as bt

from adapters.broker import CancelOutcome, Ticket, TicketStatus
from adapters.sim.exchange import SimError, SimExchange
from adapters.sim.harness import Harness, Report, Strategy
from adapters.sim.latency import Latency
from adapters.sim.market import Bar, round_to_tick, tick_size
from adapters.sim.session import DEFAULT_START
from engine import Order, OrderBook, OrderState, Refusal, SessionCalendar, Side
from engine import events as ev

__all__ = ["BarFeed", "CancelRefusal", "EngineBroker"]

#: (market order?, time in force) -> Kiwoom trde_tp.
_TRDE_TP: Final[dict[tuple[bool, str], str]] = {
    (False, "DAY"): "0",
    (True, "DAY"): "3",
    (False, "IOC"): "10",
    (True, "IOC"): "13",
    (False, "FOK"): "20",
    (True, "FOK"): "23",
}

_ONE_US: Final = timedelta(microseconds=1)


@attrs.frozen
class CancelRefusal:
    """A cancel the engine refused for a backtrader order: nothing reached the exchange."""

    #: ``ref`` of the backtrader order.
    order_ref: int
    #: The order number the cancel was asked for ("" when the order never got one).
    ord_no: str
    #: Shares asked for (0 = all that is open).
    qty: int | str
    #: The engine's decision and status (``outcome.refused`` is True).
    outcome: CancelOutcome

    @property
    def reason(self) -> Refusal:
        """Return why the engine refused the cancel."""
        reason = self.outcome.decision.reason
        assert reason is not None  # a refused decision always has one
        return reason

    def describe(self) -> str:
        """Return one human line: ``refused: FULLY_FILLED (every share is filled ...)``."""
        return self.outcome.decision.describe()


@attrs.define(eq=False)
class _Entry:
    """What the broker knows of one backtrader order it sent."""

    order: Any  # the strategy's own backtrader order object
    data: Any  # its feed
    stk_cd: str
    side: Side
    qty: int
    ref_price: int  # the limit, or the last close for a market order (for the cash check)
    ticket: Ticket | None = None
    ord_no: str = ""
    filled: int = 0  # shares already executed on the backtrader order
    notional: int = 0  # and their KRW
    deferred: list[int | str] = attrs.Factory(list)  # cancels asked before the number came


class _Bridge(Strategy):
    """The harness-side strategy: hands every delivered fact to the backtrader broker."""

    def __init__(self, broker: EngineBroker) -> None:
        self.broker = broker

    def on_event(self, harness: Harness, event: ev.Event, order: Order | None) -> None:
        self.broker._on_event(event, order)

    def on_answer(self, harness: Harness, ticket: Ticket) -> None:
        self.broker._on_answer(ticket)


def _krw(value: float, what: str) -> int:
    if not math.isfinite(value):
        raise ValueError(f"{what} is not a price: {value!r}")
    return round(value)


class EngineBroker(bt.BrokerBase):  # type: ignore[misc]
    """A backtrader broker whose orders and cancels go through the engine to a simulated exchange.

    ``seed`` drives the exchange's randomness (latency draws), ``start`` is the session's first
    instant (feed times are measured from it), ``latency`` is a :class:`Latency` or one delay
    for every channel (``0``, ``"5-150"``). ``codes`` maps feed names to 6-digit stock codes;
    without an entry the feed's name must be the code. ``sessions`` (an
    :class:`engine.SessionCalendar`) makes the exchange and the engine refuse out-of-hours
    requests; ``price_band`` is the venue's daily limit. With ``check_cash`` a buy whose cost at
    its limit (or the last close) exceeds the cash not yet committed to open buys ends in
    ``Margin`` before it is sent. With ``round_prices`` limit prices are moved to the KRX tick
    grid (buys down, sells up); without it an off-tick price is rejected.

    Attributes a strategy or a test reads: ``harness``, ``exchange``, ``book`` (the engine),
    ``orders`` (every backtrader order, in submission order), ``refusals`` (every
    :class:`CancelRefusal`) and, after the run, ``report`` (the harness's
    :class:`~adapters.sim.harness.Report`: ``report.ok`` when the engine matched the exchange).
    """

    def __init__(
        self,
        *,
        cash: float = 10_000_000,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        latency: Latency | str | int = 0,
        codes: Mapping[str, str] | None = None,
        sessions: SessionCalendar | None = None,
        price_band: float = 0.30,
        check_cash: bool = True,
        round_prices: bool = False,
    ) -> None:
        if start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, not {start!r}")
        self.startingcash = float(cash)
        self.seed = seed
        self.start_at = start
        self.latency = latency if isinstance(latency, Latency) else Latency.uniform(latency)
        self.codes = dict(codes or {})
        self.sessions = sessions
        self.price_band = price_band
        self.check_cash = check_cash
        self.round_prices = round_prices
        super().__init__()  # calls init()

    def init(self) -> None:
        """Start afresh: a new exchange, engine and harness, the starting cash, no positions."""
        super().init()
        self.cash = self.startingcash
        self.positions: defaultdict[Any, Any] = defaultdict(bt.Position)
        self.notifs: deque[Any] = deque()
        self.exchange = SimExchange(
            seed=self.seed,
            start=self.start_at,
            latency=self.latency,
            sessions=self.sessions,
            price_band=self.price_band,
        )
        self.book = OrderBook(calendar=self.sessions)
        self.harness = Harness(self.exchange, _Bridge(self), book=self.book)
        self.orders: list[Any] = []
        self.refusals: list[CancelRefusal] = []
        self.report: Report | None = None
        self._entries: dict[int, _Entry] = {}  # backtrader order ref -> entry
        self._by_request: dict[str, _Entry] = {}  # placement ticket -> entry, until answered
        self._by_ord_no: dict[str, _Entry] = {}
        self._seen: dict[str, int] = {}  # stock code -> len(feed) when last stepped
        self._rejections: dict[str, tuple[str, str]] = {}  # ord_no -> venue (code, message)
        self._expired: set[str] = set()

    # -- backtrader's broker interface -------------------------------------------------------
    def start(self) -> None:
        """Reset everything at the start of a run (backtrader calls it)."""
        self.init()

    def stop(self) -> None:
        """End the session at the end of a run: see :meth:`finish`."""
        self.finish()

    def finish(self) -> Report:
        """Close the session (open orders expire), compare the engine with the exchange's truth.

        The :class:`~adapters.sim.harness.Report` is kept in ``report``. Idempotent: a strategy
        may call it in its own ``stop()``; the backtrader orders end ``Canceled`` by the expiry
        (notifications of this last moment are not delivered: backtrader has stopped).
        """
        if self.report is None:
            self.report = self.harness.finish()
        return self.report

    def get_notification(self) -> Any:
        """Return the next order notification (a clone of the order), or None."""
        return self.notifs.popleft() if self.notifs else None

    def get_cash(self) -> float:
        """Return the cash (alias ``getcash``)."""
        return float(self.cash)

    getcash = get_cash

    def set_cash(self, cash: float) -> None:
        """Set the starting cash (alias ``setcash``)."""
        self.startingcash = self.cash = float(cash)

    setcash = set_cash

    def get_value(self, datas: Iterable[Any] | None = None) -> float:
        """Return cash plus positions at the feeds' last close, or given ``datas``' positions."""
        held = self.positions if datas is None else {d: self.positions[d] for d in datas}
        value = sum(
            self.getcommissioninfo(data).getvaluesize(position.size, data.close[0])
            for data, position in held.items()
            if position.size
        )
        return float(value + (self.cash if datas is None else 0.0))

    getvalue = get_value

    def getposition(self, data: Any) -> Any:
        """Return the backtrader ``Position`` of ``data``, updated on every fill."""
        return self.positions[data]

    def get_orders_open(self, safe: bool = False) -> list[Any]:
        """Return the backtrader orders still alive (clones with ``safe``)."""
        alive = [o for o in self.orders if o.alive()]
        return [o.clone() for o in alive] if safe else alive

    def orderstatus(self, order: Any) -> int:
        """Return the status of ``order``."""
        return int(order.status)

    def buy(self, owner: Any, data: Any, size: float, **params: Any) -> Any:
        """Send a buy; ``Market`` and ``Limit`` only, whole shares, ``tif="IOC"``/``"FOK"``.

        ``params`` are backtrader's (``price``, ``plimit``, ``exectype``, ``valid``, ``tradeid``,
        ``oco``, ``trailamount``, ``trailpercent``, ``parent``, ``transmit``); any other keyword
        is kept in ``order.info``.
        """
        return self._order(bt.BuyOrder, Side.BUY, owner, data, size, params)

    def sell(self, owner: Any, data: Any, size: float, **params: Any) -> Any:
        """Send a sell; like :meth:`buy`. Holdings are not checked (the exchange has none)."""
        return self._order(bt.SellOrder, Side.SELL, owner, data, size, params)

    def _order(
        self, kind: Any, side: Side, owner: Any, data: Any, size: float, params: dict[str, Any]
    ) -> Any:
        valid = params.pop("valid", None)
        oco = params.pop("oco", None)
        order = kind(
            owner=owner,
            data=data,
            size=size,
            price=params.pop("price", None),
            pricelimit=params.pop("plimit", None),
            exectype=params.pop("exectype", None),
            valid=valid,
            tradeid=params.pop("tradeid", 0),
            trailamount=params.pop("trailamount", None),
            trailpercent=params.pop("trailpercent", None),
            parent=params.pop("parent", None),
            transmit=params.pop("transmit", True),
        )
        order.addinfo(**params)
        return self._submit(order, side, valid, oco, params.get("tif"))

    def cancel(self, order: Any, bracket: bool = False) -> CancelOutcome | None:
        """Cancel all that is open of ``order`` if the engine allows it (backtrader's cancel).

        Returns the engine's :class:`~adapters.broker.CancelOutcome`, also kept as
        ``order.info.cancel_outcome`` (backtrader's ``Strategy.cancel`` drops the return value:
        call ``self.broker.cancel(order)`` to get it, or read the order's info):

        - allowed: ``outcome.refused`` is False and the cancel is on its way; the order ends
          ``Canceled`` with the shares executed so far, or ``Completed`` if fills beat the
          cancel (``order.info.cancel_rejected`` then holds the exchange's code, e.g. RC4033).
        - refused (the order is already filled, cancelled or rejected, a cancel-all is already
          pending, ...): ``outcome.refused`` is True and nothing reached the exchange. The order
          is unchanged and no notification is sent; ``order.info.cancel_refusal`` holds the
          :class:`engine.Refusal`, ``order.info.cancel_refusal_text`` the engine's sentence, and
          a :class:`CancelRefusal` is appended to ``broker.refusals``.
        - None: the order has no number yet (its answer is still on its way); the cancel is
          kept and sent through the engine the moment the engine learns the number (a refusal
          then is recorded as above).

        ``bracket`` is accepted for backtrader's signature; brackets are not supported.
        """
        del bracket
        return self._cancel(order, 0)

    def cancel_shares(self, order: Any, shares: int | str) -> CancelOutcome | None:
        """Cancel ``shares`` shares of ``order`` (0 or ``"0"`` = all), as :meth:`cancel` does.

        The engine refuses more than is cancellable (EXCEEDS_CANCELLABLE) and anything that is
        not a whole number of shares (INVALID_QUANTITY). The order stays alive with fewer shares
        open; it ends ``Canceled`` (not ``Completed``) once nothing is open.
        """
        return self._cancel(order, shares)

    def next(self) -> None:
        """Step the harness with the new bar of every feed (backtrader calls it once per bar)."""
        steps: dict[int, list[Bar]] = {}
        for data in self._datas():
            stk_cd = self.code_of(data)
            length = len(data)
            if not length or self._seen.get(stk_cd) == length:
                continue  # no new bar on this feed
            self._seen[stk_cd] = length
            bar = self._bar(data, stk_cd)
            steps.setdefault(bar.at_ms, []).append(bar)
        for at in sorted(steps):
            self.harness.step(steps[at])

    # -- what a strategy or a test may ask -----------------------------------------------------
    def code_of(self, data: Any) -> str:
        """Return the 6-digit stock code of the feed ``data`` (``codes`` or its name)."""
        name = str(getattr(data, "_name", "") or "")
        code = self.codes.get(name, name)
        if not (len(code) == 6 and code.isascii() and code.isalnum()):
            raise ValueError(
                f"feed {name!r} has no 6-digit stock code: name it with the code (005930) or "
                "pass codes={name: code} to the broker"
            )
        return code

    def ord_no(self, order: Any) -> str:
        """Return the exchange's number of a backtrader order ("" until it is known)."""
        entry = self._entries.get(order.ref)
        return entry.ord_no if entry is not None else ""

    def engine_order(self, order: Any) -> Order | None:
        """Return the engine's view of a backtrader order, or None while the engine lacks it."""
        ord_no = self.ord_no(order)
        return self.book.orders.get(ord_no) if ord_no else None

    # -- placing -----------------------------------------------------------------------------
    def _submit(self, order: Any, side: Side, valid: Any, oco: Any, tif: object) -> Any:
        self.orders.append(order)
        order.submit(self)
        self._notify(order)
        data = order.data
        stk_cd = self.code_of(data)
        terms = self._terms(order, valid, oco, tif)
        if isinstance(terms, str):
            self._refuse(order, terms)
            return order
        trde_tp, qty, price = terms
        ref_price = price or _krw(data.close[0], "the last close")
        if self.check_cash and side is Side.BUY:
            comminfo = self.getcommissioninfo(data)
            cost = qty * ref_price + comminfo.getcommission(qty, ref_price)
            free = self.cash - self._committed()
            if cost > free:
                order.addinfo(reject_reason=f"not enough cash: {cost:,.0f} KRW > {free:,.0f} free")
                order.margin()
                self._notify(order)
                return order
        entry = _Entry(order, data, stk_cd, side, qty, ref_price)
        try:
            ticket = self.harness.place(stk_cd, side, qty, price, trde_tp=trde_tp)
        except SimError as exc:  # the terms were checked above; kept as a last guard
            self._refuse(order, str(exc))
            return order
        entry.ticket = ticket
        self._entries[order.ref] = entry
        self._by_request[ticket.request_id] = entry
        return order

    def _terms(self, order: Any, valid: Any, oco: Any, tif: object) -> tuple[str, int, int] | str:
        """Return (trde_tp, shares, price) for ``order``, or why it cannot be sent."""
        if order.parent is not None or oco is not None or not order.transmit:
            return "brackets, parent/child and OCO orders are not supported"
        if valid is not None and valid not in (0, bt.Order.DAY):
            return "every order is a day order: use valid=None (or tif='IOC'/'FOK')"
        if tif is None:
            tif = "DAY"
        if tif not in ("DAY", "IOC", "FOK"):
            return f"tif must be 'DAY', 'IOC' or 'FOK', not {tif!r}"
        exectype = order.exectype
        if exectype not in (bt.Order.Market, bt.Order.Limit):
            return (
                f"exectype {order.getordername()} is not supported: KRX takes Market (시장가) "
                "and Limit (보통) orders here"
            )
        if not self.getcommissioninfo(order.data).stocklike:
            return "the commission scheme must be stock-like (no margin): these are equities"
        size = abs(order.size)
        if not (isinstance(size, int | float) and math.isfinite(size) and size >= 1):
            return f"size must be a whole number of shares, at least 1, not {order.size!r}"
        if size != int(size):
            return f"size must be a whole number of shares, not {order.size!r}"
        market = exectype == bt.Order.Market
        price = 0
        if not market:
            limit = order.price
            if limit is None or not math.isfinite(limit) or limit <= 0:
                return f"a limit order needs a positive price, not {limit!r}"
            on_grid = self._limit(float(limit), order.isbuy())
            if on_grid is None:
                return (
                    f"limit price {limit!r} is not on the KRX tick grid (tick "
                    f"{tick_size(int(limit))} KRW): round it with adapters.sim.round_to_tick "
                    "or set round_prices=True"
                )
            price = on_grid
        return _TRDE_TP[market, str(tif)], int(size), price

    def _limit(self, limit: float, buy: bool) -> int | None:
        """Return the limit as whole KRW on the tick grid, or None when it is off the grid."""
        if not self.round_prices:
            whole = round(limit)
            if whole != limit or whole <= 0 or whole % tick_size(whole):
                return None
            return whole
        if buy:
            return round_to_tick(math.floor(limit))
        up = math.ceil(limit)
        tick = tick_size(up)
        return up if up % tick == 0 else up - up % tick + tick

    def _committed(self) -> float:
        """Return the KRW that the open buys may still spend."""
        orders = self.book.orders
        committed = 0
        for e in self._entries.values():
            if e.side is Side.BUY and e.order.alive():
                mine = orders.get(e.ord_no) if e.ord_no else None
                committed += (mine.leaves_qty if mine else e.qty - e.filled) * e.ref_price
        return float(committed)

    def _refuse(self, order: Any, reason: str) -> None:
        order.addinfo(reject_reason=reason)
        order.reject(self)
        self._notify(order)

    def _notify(self, order: Any) -> None:
        self.notifs.append(order.clone())

    # -- cancelling --------------------------------------------------------------------------
    def _cancel(self, order: Any, qty: int | str) -> CancelOutcome | None:
        entry = self._entries.get(order.ref)
        ord_no = entry.ord_no if entry is not None else ""
        if entry is not None and entry.ticket is not None:
            pending = entry.ticket.status is TicketStatus.PENDING
            if pending or (ord_no and ord_no not in self.book.orders):
                entry.deferred.append(qty)  # sent once the engine knows the number
                order.addinfo(cancel_deferred=True)
                return None
        return self._send_cancel(order, ord_no, qty)

    def _send_cancel(self, order: Any, ord_no: str, qty: int | str) -> CancelOutcome:
        outcome = self.harness.cancel(ord_no, qty)
        order.addinfo(cancel_outcome=outcome)
        if outcome.refused:
            refusal = CancelRefusal(order.ref, ord_no, qty, outcome)
            self.refusals.append(refusal)
            order.addinfo(cancel_refusal=refusal.reason, cancel_refusal_text=refusal.describe())
        elif outcome.request is not None:
            order.addinfo(cancel_request=outcome.request.request_id)
        return outcome

    # -- facts coming back ---------------------------------------------------------------------
    def _on_answer(self, ticket: Ticket) -> None:
        entry = self._by_request.pop(ticket.request_id, None)
        if entry is None:
            return  # a cancel's answer: its events say the rest
        order = entry.order
        if ticket.status is TicketStatus.ACCEPTED:
            entry.ord_no = ticket.ord_no
            self._by_ord_no[ticket.ord_no] = entry
            order.addinfo(ord_no=ticket.ord_no)
            self._sync(entry)  # with reordered deliveries the engine may know it already
        else:
            entry.deferred.clear()  # nothing to cancel: the order server refused the order
            order.addinfo(code=ticket.code, message=ticket.message)
            if order.reject(self):
                self._notify(order)

    def _on_event(self, event: ev.Event, engine_order: Order | None) -> None:
        if engine_order is not None:
            ord_no = engine_order.ord_no
        else:  # parked until its 접수 arrives
            ord_no = getattr(event, "orig_ord_no", "") or getattr(event, "ord_no", "")
        if isinstance(event, ev.OrderRejected):
            self._rejections[ord_no] = (event.code, event.message)
        elif isinstance(event, ev.OrderExpired):
            self._expired.add(ord_no)
        entry = self._by_ord_no.get(ord_no)
        if entry is None:
            return
        if isinstance(event, ev.CancelRejected):
            entry.order.addinfo(cancel_rejected=event.code, cancel_rejected_message=event.message)
        self._sync(entry)

    def _sync(self, entry: _Entry) -> None:
        """Bring the backtrader order to where the engine's order is, notifying each change."""
        mine = self.book.orders.get(entry.ord_no) if entry.ord_no else None
        if mine is None:
            return
        order = entry.order
        if order.status == bt.Order.Submitted:
            order.accept(self)
            self._notify(order)
        new = mine.filled_qty - entry.filled
        if new > 0:
            notional = mine.fill_notional - entry.notional
            entry.filled, entry.notional = mine.filled_qty, mine.fill_notional
            ended = None if order.alive() else order.status  # a late fill keeps the ending
            if ended is not None and mine.state is OrderState.FILLED:
                ended = bt.Order.Completed
            self._execute(entry, new, notional / new, ended)
        state = mine.state
        if state is OrderState.REJECTED and order.status != bt.Order.Rejected:
            code, message = self._rejections.get(entry.ord_no, ("", ""))
            order.addinfo(code=code, message=message)
            order.reject(self)
            self._notify(order)
        elif state is OrderState.CANCELLED and order.alive():
            order.addinfo(cancelled_qty=mine.cancelled_qty, expired=entry.ord_no in self._expired)
            order.cancel()
            self._notify(order)
        if entry.deferred:
            deferred, entry.deferred = entry.deferred, []
            for qty in deferred:
                self._send_cancel(order, entry.ord_no, qty)

    def _execute(self, entry: _Entry, qty: int, price: float, ended: int | None) -> None:
        """Execute ``qty`` shares at ``price`` on the backtrader order: position, cash, trades.

        ``ended`` is the status of an order that had already ended (a late fill, which took
        shares back from the cancelled ones): it keeps that status.
        """
        order = entry.order
        data = entry.data
        size = qty if entry.side is Side.BUY else -qty
        comminfo = self.getcommissioninfo(data)
        position = self.positions[data]
        held_at = position.price
        psize, pprice, opened, closed = position.update(size, price, data.datetime.datetime())
        pnl = comminfo.profitandloss(-closed, held_at, price)
        closedvalue = comminfo.getvaluesize(-closed, held_at)
        closedcomm = comminfo.getcommission(closed, price)
        openedvalue = comminfo.getvaluesize(opened, price)
        openedcomm = comminfo.getcommission(opened, price)
        self.cash += closedvalue + pnl - closedcomm - openedvalue - openedcomm
        comminfo.confirmexec(size, price)
        order.execute(
            data.datetime[0],
            size,
            price,
            closed,
            closedvalue,
            closedcomm,
            opened,
            openedvalue,
            openedcomm,
            comminfo.margin,
            pnl,
            psize,
            pprice,
        )
        order.addcomminfo(comminfo)
        if ended is not None:
            order.status = ended
            order.addinfo(late_fill=True)
        self._notify(order)

    # -- market data -------------------------------------------------------------------------
    def _datas(self) -> list[Any]:
        cerebro = getattr(self, "cerebro", None)
        if cerebro is None:
            raise RuntimeError("EngineBroker runs inside a Cerebro: cerebro.setbroker(broker)")
        return list(cerebro.datas)

    def _bar(self, data: Any, stk_cd: str) -> Bar:
        when = data.datetime.datetime(0)
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.start_at.tzinfo)
        at_ms = ((when - self.start_at) // _ONE_US + 500) // 1000
        if at_ms < 0:
            raise ValueError(
                f"feed {stk_cd} has a bar at {when}, before the session start {self.start_at}"
            )
        volume = float(data.volume[0])
        try:
            return Bar(
                stk_cd,
                at_ms,
                _krw(data.open[0], "open"),
                _krw(data.high[0], "high"),
                _krw(data.low[0], "low"),
                _krw(data.close[0], "close"),
                int(volume) if math.isfinite(volume) else 0,
            )
        except ValueError as exc:
            raise ValueError(f"feed {stk_cd} at {when}: {exc}") from None


class BarFeed(bt.feed.DataBase):  # type: ignore[misc]
    """A backtrader data feed over simulated bars of one symbol: no pandas, no files.

    Each :class:`~adapters.sim.market.Bar` becomes a backtrader bar at ``start + at_ms`` (a
    naive wall-clock time in ``start``'s time zone, which :class:`EngineBroker` reads back).
    The feed's name defaults to the bars' stock code; ``name`` and the other backtrader
    parameters (``timeframe``, ``compression``, ...) are keywords, as for any backtrader feed.
    """

    def __init__(
        self, bars: Iterable[Bar], *, start: datetime = DEFAULT_START, **params: Any
    ) -> None:
        if params:  # backtrader took its own parameters (name, timeframe, ...) already
            raise TypeError(f"BarFeed got unknown parameters {sorted(params)}")
        super().__init__()
        self._bars = list(bars)
        codes = {bar.stk_cd for bar in self._bars}
        if len(codes) > 1:
            raise ValueError(f"a BarFeed carries one symbol, not {sorted(codes)}")
        if start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, not {start!r}")
        self._day_start = start.replace(tzinfo=None)
        self._cursor = 0
        if not self.p.name and codes:
            self._name = codes.pop()

    def start(self) -> None:
        """Rewind to the first bar (backtrader calls it before loading)."""
        super().start()
        self._cursor = 0

    def _load(self) -> bool:
        if self._cursor >= len(self._bars):
            return False
        bar = self._bars[self._cursor]
        self._cursor += 1
        lines = self.lines
        lines.datetime[0] = bt.date2num(self._day_start + timedelta(milliseconds=bar.at_ms))
        lines.open[0] = bar.open
        lines.high[0] = bar.high
        lines.low[0] = bar.low
        lines.close[0] = bar.close
        lines.volume[0] = bar.volume
        lines.openinterest[0] = 0
        return True
