"""The engine's errors: one base, leaves that say what was wrong and whether to try again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.decision import CancelDecision

__all__ = [
    "CancelRefused",
    "EngineError",
    "EventDecodeError",
    "InvalidEvent",
    "InvalidTime",
    "ModifyRefused",
    "ParkingFull",
    "UnknownOrder",
]


class EngineError(Exception):
    """Base of every error the domain core raises. The book is unchanged when one is raised."""


class InvalidEvent(EngineError, ValueError):
    """An event contradicts the book (bad values, an illegal edge, an overfill, a conflict).

    The book is left exactly as it was. Applying the same event again fails the same way; it is a
    fact to reconcile, not a transient error.
    """

    def __init__(self, message: str, *, event: Any = None, ord_no: str = "") -> None:
        super().__init__(message)
        self.event = event
        self.ord_no = ord_no


class UnknownOrder(EngineError, KeyError):
    """The book does not know this order number. Safe to ask again once the order is known."""

    def __init__(self, ord_no: str) -> None:
        super().__init__(ord_no)
        self.ord_no = ord_no

    def __str__(self) -> str:
        return f"unknown order {self.ord_no!r}"


class CancelRefused(InvalidEvent):
    """A cancel was refused by the engine's decision; nothing was reserved or sent.

    ``decision`` carries the reason (a :class:`engine.Refusal`). Sending the same request again
    gets the same answer until a broker fact changes the order.
    """

    def __init__(self, decision: CancelDecision) -> None:
        super().__init__(_refused("cancel", decision), ord_no=decision.ord_no)
        self.decision = decision


def _refused(what: str, decision: CancelDecision) -> str:
    """Return the message of a refused ``what`` ("cancel", "modify"): reason, text, successor."""
    reason = decision.reason
    text = reason.description if reason is not None else "refused"
    if decision.successor:
        text += f" ({what} {decision.successor} instead)"
    return f"{what} of {decision.ord_no!r} refused: {reason.name if reason else '?'}: {text}"


class ModifyRefused(InvalidEvent):
    """A modify was refused by the engine's decision; nothing was reserved or sent.

    ``decision`` carries the reason (a :class:`engine.Refusal`), ``price`` the price asked.
    """

    def __init__(self, decision: CancelDecision, price: object = None) -> None:
        super().__init__(_refused("modify", decision), ord_no=decision.ord_no)
        self.decision = decision
        self.price = price


class ParkingFull(EngineError):
    """The bounded set of parked events (for unknown orders) is full; the event was not taken.

    Safe to deliver again once the awaited orders arrived or the bound was raised.
    """


class InvalidTime(EngineError, ValueError):
    """A time passed to the engine is not a timezone-aware ``datetime``. Nothing was decided."""


class EventDecodeError(EngineError, ValueError):
    """A serialised event (``events.from_dict``) is malformed. Nothing was applied."""
