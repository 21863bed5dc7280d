"""The broker port over the simulated exchange."""

from __future__ import annotations

from datetime import datetime

from adapters.broker import CancelOutcome, CancelStatus, Ticket
from adapters.sim.exchange import SimExchange
from engine import CancelRefused, OrderBook, Side

__all__ = ["SimBroker"]


class SimBroker:
    """:class:`adapters.broker.BrokerPort` over a :class:`SimExchange`.

    Answers are asynchronous: a ticket is pending until the exchange's answer is delivered, and
    every fact reaches the engine as events through the exchange's ``sink``.
    """

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange

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
        """Send a new order; see :meth:`SimExchange.place`."""
        return self.exchange.place(
            stk_cd=stk_cd, side=side, qty=qty, price=price, trde_tp=trde_tp, exchange=exchange
        )

    def modify(self, *, orig_ord_no: str, stk_cd: str, qty: int, price: int) -> Ticket:
        """Send a modify; see :meth:`SimExchange.modify`."""
        del stk_cd  # the order server knows the order's symbol
        return self.exchange.modify(orig_ord_no=orig_ord_no, qty=qty, price=price)

    def cancel(
        self, book: OrderBook, ord_no: str, qty: int | str = 0, *, at: datetime | None = None
    ) -> CancelOutcome:
        """Reserve the cancel in ``book`` if the engine allows it, then send it to the exchange.

        A refused cancel sends nothing and comes back with the engine's decision and reason.
        """
        if ord_no in book:  # what the exchange would refuse as malformed, before reserving
            self.exchange._check_target(ord_no, 0)
        try:
            request = book.request_cancel(ord_no, qty, at=at, ts=self.exchange.now)
        except CancelRefused as refused:
            return CancelOutcome(refused.decision, CancelStatus.REFUSED)
        ticket = self.exchange.cancel(
            orig_ord_no=request.orig_ord_no, qty=request.qty, request_id=request.request_id
        )
        return CancelOutcome(request.decision, CancelStatus.SENT, request, ticket)
