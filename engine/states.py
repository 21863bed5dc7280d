"""Order states, sides and refusal reasons: the vocabulary of the domain core."""

from __future__ import annotations

from enum import Enum

__all__ = ["OrderState", "Refusal", "Side"]


class OrderState(Enum):
    """The state of one order; each member's value is its Korean label.

    The state is never stored as a free variable: it is derived from the order's quantities and a
    few facts (confirmed, rejected), see ``docs/lifecycle.md``.
    """

    RECEIVED = "접수"
    CONFIRMED = "확인"
    PARTIALLY_FILLED = "부분체결"
    FILLED = "전량체결"
    CANCELLED = "취소"
    REPLACED = "정정"
    REJECTED = "거부"

    @property
    def label(self) -> str:
        """Return the Korean label (the member's value)."""
        return self.value

    @property
    def is_terminal(self) -> bool:
        """Return True for states an order never leaves by its own fills or cancels."""
        return self in TERMINAL_STATES

    @property
    def is_open(self) -> bool:
        """Return True while the order may still have shares open on the exchange."""
        return self not in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REPLACED, OrderState.REJECTED}
)


class Side(Enum):
    """Buy or sell; ``label`` gives the Korean word used in Kiwoom's messages."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def label(self) -> str:
        """Return 매수 or 매도."""
        return "매수" if self is Side.BUY else "매도"


class Refusal(Enum):
    """Why a cancel was refused. Exactly one reason accompanies every refused decision."""

    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    FULLY_FILLED = "FULLY_FILLED"
    ALREADY_CANCELLED = "ALREADY_CANCELLED"
    REJECTED = "REJECTED"
    REPLACED = "REPLACED"
    CANCEL_ALL_PENDING = "CANCEL_ALL_PENDING"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    NOTHING_CANCELLABLE = "NOTHING_CANCELLABLE"
    EXCEEDS_CANCELLABLE = "EXCEEDS_CANCELLABLE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    MARKET_CLOSED = "MARKET_CLOSED"

    @property
    def description(self) -> str:
        """Return a one-line English explanation of the reason."""
        return _REFUSAL_TEXT[self]


_REFUSAL_TEXT = {
    Refusal.UNKNOWN_ORDER: "the book does not know this order number",
    Refusal.FULLY_FILLED: "every share is filled (전량체결); filled shares can never be cancelled",
    Refusal.ALREADY_CANCELLED: "the order is already cancelled; nothing is open",
    Refusal.REJECTED: "the order was rejected (거부); nothing is open",
    Refusal.REPLACED: "the order was modified (정정); cancel its successor order instead",
    Refusal.CANCEL_ALL_PENDING: "a cancel of all remaining shares is already pending",
    Refusal.OUTCOME_UNKNOWN: (
        "the answer to an earlier cancel of this order was lost (it may have been carried "
        "out); reconcile before asking again"
    ),
    Refusal.NOTHING_CANCELLABLE: (
        "every open share is already reserved by pending cancels or modifies"
    ),
    Refusal.EXCEEDS_CANCELLABLE: "the quantity exceeds what is still cancellable",
    Refusal.INVALID_QUANTITY: "the quantity is not a whole number of shares from 0 to 12 digits",
    Refusal.MARKET_CLOSED: "the venue does not accept cancels at this time",
}
