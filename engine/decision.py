"""The cancel decision and the cancel request: pure values."""

from __future__ import annotations

import re
from typing import Final

import attrs

from engine._fastinit import fast_init
from engine.states import Refusal

__all__ = [
    "MAX_QTY_DIGITS",
    "CancelDecision",
    "CancelRequest",
    "ModifyRequest",
    "parse_cancel_qty",
]

#: kt10003 carries ``cncl_qty`` as a string of at most 12 characters.
MAX_QTY_DIGITS: Final = 12
_MAX_QTY: Final = 10**MAX_QTY_DIGITS - 1
_DIGITS = re.compile(r"[0-9]{1,12}")


def parse_cancel_qty(qty: object) -> int | None:
    """Return a cancel quantity as an int (0 = all), or None when it is not a valid quantity.

    Accepts a non-negative ``int`` (not ``bool``) or the kt10003 string form (``"0"``, ``"5"``,
    ``"000000000005"``): ASCII digits only, 1 to 12 of them. Negative, fractional, non-numeric,
    empty, signed or padded with spaces: None.
    """
    if type(qty) is int:
        return qty if 0 <= qty <= _MAX_QTY else None
    if type(qty) is str and _DIGITS.fullmatch(qty):
        return int(qty)
    return None


@fast_init
@attrs.frozen
class CancelDecision:
    """What the engine says about cancelling ``qty`` shares of ``ord_no``.

    ``allowed`` with ``qty`` > 0 shares it would cancel now (for a cancel-all, what is
    cancellable now; the confirmation settles the final count), or refused with one ``reason``.
    ``successor`` names the order to cancel instead when the order was modified.
    """

    ord_no: str
    requested: object
    allowed: bool
    qty: int
    cancel_all: bool
    reason: Refusal | None = None
    successor: str | None = None

    @classmethod
    def refuse(
        cls,
        ord_no: str,
        requested: object,
        reason: Refusal,
        *,
        cancel_all: bool = False,
        successor: str | None = None,
    ) -> CancelDecision:
        """Return a refused decision with ``reason``."""
        return cls(ord_no, requested, False, 0, cancel_all, reason, successor)

    def describe(self) -> str:
        """Return one human line: "allowed, 6 shares (all open)" or "refused: REASON (text)"."""
        if self.allowed:
            what = f"{self.qty} share{'s' if self.qty != 1 else ''}"
            return f"allowed, {what}" + (" (cancel all that is open)" if self.cancel_all else "")
        assert self.reason is not None
        text = f"refused: {self.reason.name} ({self.reason.description})"
        if self.successor:
            text += f"; cancel {self.successor} instead"
        return text


@fast_init
@attrs.frozen
class CancelRequest:
    """A reserved cancel, ready to be sent: ``qty`` shares of ``orig_ord_no`` (0 = all open).

    ``decision`` is the engine's decision that allowed it.
    """

    request_id: str
    orig_ord_no: str
    stk_cd: str
    exchange: str
    qty: int
    cancel_all: bool
    decision: CancelDecision

    @property
    def cncl_qty(self) -> str:
        """Return the quantity in kt10003's string form (``"0"`` = all remaining)."""
        return str(self.qty)


@fast_init
@attrs.frozen
class ModifyRequest:
    """A reserved modify, ready to be sent as kt10002: ``qty`` shares of ``orig_ord_no`` (0 =
    all open) to ``price``. ``decision`` is the engine's decision on the shares it may move."""

    request_id: str
    orig_ord_no: str
    stk_cd: str
    exchange: str
    qty: int
    modify_all: bool
    price: int
    decision: CancelDecision

    @property
    def mdfy_qty(self) -> str:
        """Return the quantity in kt10002's string form (``"0"`` = all remaining)."""
        return str(self.qty)
