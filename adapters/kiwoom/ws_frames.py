"""Type-00 (주문체결) frames, in Kiwoom's official shape, from the simulated exchange's events.

:class:`FrameWriter` follows one trading day's events as the exchange delivers them (in order)
and returns, for each, the frames Kiwoom would send: one ``values`` dict per change of an order,
every field of the official ``00`` table present, every value a string.

=====================================  ===================================================
exchange event                         frames (9203 order number, 913 status)
=====================================  ===================================================
``OrderAccepted``                      the order, 접수
``OrderConfirmed``                     the order, 확인
``OrderFilled``                        the order, 체결: 909 execution number, 910/914 its
                                       price, 915 its shares, 911 the cumulative shares, 902
                                       the unfilled shares after it, 903 cumulative amount
``OrderRejected``                      the order, 거부, 919 the reason
``OrderExpired``                       the order, 취소, 902 0 (an IOC/FOK rest, the close)
``CancelAccepted``                     the cancel's own number, 905 매수취소/매도취소, 접수,
                                       904 the original, 900 the shares it takes
``CancelConfirmed``                    the cancel, 확인, 902 the shares it could not cancel;
                                       then the original's new state: 확인 while shares are
                                       still open, 취소 when none are
``CancelRejected`` (by the venue)      the cancel, 확인 with 902 = 900: nothing cancelled
``OrderAmended``                       the modify's own number, 905 매수정정/매도정정, 접수 and
                                       확인 (900/901 the shares moved and the new price);
                                       then the original's new state (확인, its 902)
=====================================  ===================================================

A cancel or modify the order server refused has no number and gets no frame, as on Kiwoom.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from adapters.sim.exchange import TruthOrder
from engine import Side
from engine import events as ev
from engine.sessions import KST

__all__ = ["FIELDS_00", "FrameWriter", "real_frame"]

#: Every field of the official type-00 table, in its documented order.
FIELDS_00: Final = [
    "9201",
    "9203",
    "9205",
    "9001",
    "912",
    "913",
    "302",
    "900",
    "901",
    "902",
    "903",
    "904",
    "905",
    "906",
    "907",
    "908",
    "909",
    "910",
    "911",
    "10",
    "27",
    "28",
    "914",
    "915",
    "938",
    "939",
    "919",
    "920",
    "921",
    "922",
    "923",
    "10010",
    "2134",
    "2135",
    "2136",
]
_NONE: Final = "0000000"
_STEX: Final = {"KRX": ("1", "KRX", "N"), "NXT": ("2", "NXT", "N"), "SOR": ("0", "SOR", "Y")}


def real_frame(entries: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Return a ``REAL`` message of type-00 ``(item, values)`` entries."""
    return {
        "trnm": "REAL",
        "data": [
            {"type": "00", "name": "주문체결", "item": item, "values": values}
            for item, values in entries
        ],
    }


class _Track:
    """What the frames have told of one order so far (events arrive in order)."""

    __slots__ = ("filled", "leaves", "notional")

    def __init__(self, qty: int) -> None:
        self.filled = 0
        self.leaves = qty
        self.notional = 0


class FrameWriter:
    """Turn one day's exchange events into type-00 ``values`` dicts (see the module docstring).

    ``orders`` are the exchange's records (for what never changes: code, side, price, venue);
    ``account`` the 10-digit account number; ``quote`` the signed last price of a code;
    ``names`` a code's name; ``trade_type`` an order's 906 text.
    """

    def __init__(
        self,
        orders: Callable[[], Any],
        *,
        account: str,
        quote: Callable[[str], str],
        names: Callable[[str], str],
        trade_type: Callable[[TruthOrder], str],
    ) -> None:
        self._orders = orders
        self.account = account
        self._quote = quote
        self._names = names
        self._trade_type = trade_type
        self._tracks: dict[str, _Track] = {}
        self._cancels: dict[str, int] = {}  # cancel number -> the shares it takes
        self.cancel_all_qty = 0  # set by the server before a cancel of "all" is sent

    def _track(self, order: TruthOrder) -> _Track:
        track = self._tracks.get(order.ord_no)
        if track is None:
            track = self._tracks[order.ord_no] = _Track(order.qty)
        return track

    def frames(self, event: ev.Event) -> list[tuple[str, dict[str, str]]]:
        """Return the ``(item, values)`` entries ``event`` gives (often one, sometimes three)."""
        orders = self._orders()
        if isinstance(event, ev.OrderAccepted):
            order = orders[event.ord_no]
            return [self._order(order, "접수", event.ts)]
        if isinstance(event, ev.OrderConfirmed):
            return [self._order(orders[event.ord_no], "확인", event.ts)]
        if isinstance(event, ev.OrderFilled):
            order = orders[event.ord_no]
            track = self._track(order)
            track.filled += event.qty
            track.leaves -= event.qty
            track.notional += event.qty * event.price
            execution = {
                "909": event.fill_id,
                "910": str(event.price),
                "911": str(track.filled),
                "914": str(event.price),
                "915": str(event.qty),
            }
            return [self._order(order, "체결", event.ts, execution)]
        if isinstance(event, ev.OrderRejected):
            order = orders[event.ord_no]
            self._track(order).leaves = 0
            reason = f"{event.code}:{event.message}" if event.code else event.message
            return [self._order(order, "거부", event.ts, {"919": reason or "거부"})]
        if isinstance(event, ev.OrderExpired):
            order = orders[event.ord_no]
            self._track(order).leaves = 0
            return [self._order(order, "취소", event.ts)]
        if isinstance(event, ev.CancelAccepted):
            orig = orders[event.orig_ord_no]
            qty = event.qty or self.cancel_all_qty or self._track(orig).leaves
            self._cancels[event.ord_no] = qty
            return [self._cancel(orig, event.ord_no, "접수", qty, qty, event.ts)]
        if isinstance(event, ev.CancelConfirmed):
            orig = orders[event.orig_ord_no]
            qty = self._cancels.get(event.ord_no, event.qty)
            track = self._track(orig)
            track.leaves -= event.qty
            entries = [self._cancel(orig, event.ord_no, "확인", qty, qty - event.qty, event.ts)]
            entries.append(self._order(orig, "확인" if track.leaves else "취소", event.ts))
            return entries
        if isinstance(event, ev.CancelRejected) and event.ord_no:  # the venue found nothing
            orig = orders[event.orig_ord_no]
            qty = self._cancels.get(event.ord_no, 0) or self._track(orig).leaves or 1
            return [self._cancel(orig, event.ord_no, "확인", qty, qty, event.ts)]
        if isinstance(event, ev.OrderAmended):
            orig = orders[event.orig_ord_no]
            new = orders[event.ord_no]
            self._track(orig).leaves -= event.qty
            self._tracks[new.ord_no] = _Track(event.qty)
            return [
                self._order(new, "접수", event.ts),
                self._order(new, "확인", event.ts),
                self._order(orig, "확인", event.ts),
            ]
        return []  # a cancel the order server refused: it has no number, so no frame

    def _base(
        self, order: TruthOrder, ord_no: str, status: str, ts: datetime | None
    ) -> dict[str, str]:
        code, text, sor = _STEX.get(order.exchange, ("1", order.exchange, "N"))
        quote = self._quote(order.stk_cd)
        values = dict.fromkeys(FIELDS_00, "")
        values.update(
            {
                "9201": self.account,
                "9203": ord_no,
                "9001": order.stk_cd,
                "912": "JJ",
                "913": status,
                "302": self._names(order.stk_cd),
                "904": _NONE,
                "906": self._trade_type(order),
                "907": "1" if order.side is Side.SELL else "2",
                "908": ts.astimezone(KST).strftime("%H%M%S") if ts is not None else "",
                "10": quote,
                "27": quote,
                "28": quote,
                "938": "0",
                "939": "0",
                "919": "0",
                "922": "00",
                "923": "00000000",
                "2134": code,
                "2135": text,
                "2136": sor,
            }
        )
        return values

    def _order(
        self,
        order: TruthOrder,
        status: str,
        ts: datetime | None,
        extra: dict[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        track = self._track(order)
        values = self._base(order, order.ord_no, status, ts)
        sign = "+" if order.side is Side.BUY else "-"
        values.update(
            {
                "900": str(order.qty),
                "901": str(order.price),
                "902": str(track.leaves),
                "903": str(track.notional),
                "904": order.origin or _NONE,
                "905": sign + order.side.label + ("정정" if order.origin else ""),
            }
        )
        if extra:
            values.update(extra)
        return order.stk_cd, values

    def _cancel(
        self,
        orig: TruthOrder,
        cancel_no: str,
        status: str,
        qty: int,
        unfilled: int,
        ts: datetime | None,
    ) -> tuple[str, dict[str, str]]:
        values = self._base(orig, cancel_no, status, ts)
        values.update(
            {
                "900": str(qty),
                "901": str(orig.price),
                "902": str(unfilled),
                "903": "0",
                "904": orig.ord_no,
                "905": orig.side.label + "취소",
            }
        )
        return orig.stk_cd, values
