"""The broker port: what a strategy or a harness needs from a broker, whatever the broker is.

Two implementations sit behind it: :class:`adapters.sim.SimBroker` (the simulated exchange) and
the Kiwoom REST adapter. Both take cancels only through the engine's decision: a cancel the
engine refuses never reaches the broker, and the refusal comes back with its reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Protocol

import attrs

from engine import CancelDecision, CancelRequest, OrderBook, Side

__all__ = ["BrokerPort", "CancelOutcome", "CancelStatus", "Ticket", "TicketStatus"]


class TicketStatus(Enum):
    """Where a request to the broker stands."""

    PENDING = "pending"  # sent, no answer yet
    ACCEPTED = "accepted"  # the broker numbered it (an order, a modify or a cancel)
    REJECTED = "rejected"  # a definitive refusal, with a code
    UNKNOWN = "unknown"  # no answer will come (timeout, reset): reconcile, never re-send blindly


@attrs.define(slots=True, eq=False)
class Ticket:
    """One request to the broker and its answer, filled in when the answer arrives.

    ``kind`` is ``"place"``, ``"modify"`` or ``"cancel"``; ``ord_no`` is the number the broker
    gave (the new order, the modify's new order, or the cancel's own number); ``code`` is the
    rejection code (``RC4033``...) and ``message`` its text.
    """

    kind: str
    request_id: str
    status: TicketStatus = TicketStatus.PENDING
    ord_no: str = ""
    code: str = ""
    message: str = ""

    def resolve(
        self, status: TicketStatus, ord_no: str = "", code: str = "", message: str = ""
    ) -> None:
        """Record the broker's answer."""
        self.status = status
        self.ord_no = ord_no
        self.code = code
        self.message = message


class CancelStatus(Enum):
    """What became of a cancel asked through a broker."""

    REFUSED = "refused"  # the engine refused it: nothing was sent
    SENT = "sent"  # sent; the answer comes later as events (asynchronous brokers)
    ACCEPTED = "accepted"  # the broker numbered the cancel; fills can still race it
    REJECTED = "rejected"  # the broker refused it (RC4033, RC4042...): definitive
    UNKNOWN = "unknown"  # the outcome is not known: it stays pending until reconciled


@attrs.frozen
class CancelOutcome:
    """The engine's ``decision`` and, when it allowed the cancel, what the broker did with it."""

    decision: CancelDecision
    status: CancelStatus
    request: CancelRequest | None = None
    ticket: Ticket | None = None

    @property
    def refused(self) -> bool:
        """Return True when the engine refused the cancel (nothing was sent)."""
        return self.status is CancelStatus.REFUSED


class BrokerPort(Protocol):
    """A broker the engine's users can trade through: simulated or Kiwoom."""

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
        """Send a new order (kt10000 buy / kt10001 sell); ``price`` 0 for market orders."""
        ...

    def modify(self, *, orig_ord_no: str, stk_cd: str, qty: int, price: int) -> Ticket:
        """Send a modify (kt10002) of ``qty`` shares (0 = all remaining) to ``price``."""
        ...

    def cancel(
        self, book: OrderBook, ord_no: str, qty: int | str = 0, *, at: datetime | None = None
    ) -> CancelOutcome:
        """Ask the engine, then send the cancel (kt10003) only if it is allowed."""
        ...
