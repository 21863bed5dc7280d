"""Map Kiwoom WebSocket type ``00`` (주문체결) frames to engine events. Pure: no I/O, no clock.

A frame is ``{"trnm": "REAL", "data": [{"type": "00", "values": {...}}]}``; every ``values`` dict
is one fact about one order number. The order kind (field ``905``) and the status (``913``) pick
the engine event (``docs/kiwoom.md``, "Real-time order events"):

==========================  ========  ===================================================
905 (kind)                  913       engine event
==========================  ========  ===================================================
``+매수`` / ``-매도``       접수      ``OrderAccepted(9203, 9001, side, qty=900, price=901,
                                      exchange)``
``+매수`` / ``-매도``       확인      ``OrderConfirmed(9203)``
``+매수`` / ``-매도``       체결      ``OrderFilled(9203, fill_id=909, qty=915, price=|914|,
                                      cum_qty=911)``
``+매수`` / ``-매도``       거부      ``OrderRejected(9203, code, message)`` (from 919)
``+매수`` / ``-매도``       취소      nothing (``[]``): it says neither how many shares nor
                                      whose cancel; the cancel's own 확인 carries that, and
                                      :meth:`KiwoomBroker.reconcile` a venue expiry
``매수정정`` / ``매도정정``  접수      nothing yet (``[]``): no shares move until 확인
``매수정정`` / ``매도정정``  확인      ``OrderAmended(9203, orig=904, qty=900, price=901)``
``매수정정`` / ``매도정정``  체결      ``OrderFilled`` of the new number 9203, as above
``매수정정`` / ``매도정정``  거부      nothing (``[]``): the engine has no modify-rejection event;
                                      the original order simply stays as it was
``매수취소`` / ``매도취소``  접수      ``CancelAccepted(9203, orig=904, qty=900)``
``매수취소`` / ``매도취소``  확인      ``CancelConfirmed(9203, 904, qty=900-902)`` when that is
                                      above 0, else ``CancelRejected(904, "RC4033", ...)``
``매수취소`` / ``매도취소``  거부      ``CancelRejected(904, code, message, ord_no=9203)``
==========================  ========  ===================================================

Any other pair of kind and status (an unknown 905 or 913, a 체결 of a cancel, a 취소 of a
modify or cancel) raises :class:`RealtimeError`, as does a malformed field.

Field formats:

- Order numbers (9203, 904) are zero-padded digit strings kept as sent (``"0000140"``); ``""`` or
  all zeros means "none", which is an error wherever a number is needed.
- Codes (9001) lose an ``A`` prefix: ``"A005930"`` gives ``"005930"``.
- Quantities (900, 902, 911, 915) are zero padded and may carry a ``+``; a ``-`` is refused.
- Prices (901, 914) carry a ``+``/``-`` that marks the direction of the move, not a sign:
  ``"-70100"`` is 70 100 KRW.
- 919 is the reject reason and is ``"0"`` on normal events: only 913 ``거부`` means rejected.
  The code is the ``RCxxxx`` inside it when there is one, else the whole short token, else
  ``"REJECTED"``.
- 2134 ``"0"``/``"1"`` (or missing) is KRX, ``"2"`` NXT; a 2136 of ``Y``/``1`` makes it SOR.
- 908 (``HHmmss``) on the caller's trade date, in Korea time, gives ``ts``; missing or empty
  gives None.

Quantities that mean "all" when 0 in the engine (on ``CancelAccepted``, ``CancelConfirmed``
and ``OrderAmended``) are never produced as 0: a frame that would give 0 there is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from enum import Enum
from typing import Any, Final

from adapters.kiwoom.errors import KiwoomError, Outcome
from engine import events as ev
from engine.sessions import KST
from engine.states import Side

__all__ = ["RealtimeError", "events_from_frame", "events_from_values"]

# Type-00 field ids.
ORD_NO: Final = "9203"
ORIG_ORD_NO: Final = "904"
STK_CD: Final = "9001"
STATUS: Final = "913"
KIND: Final = "905"
ORD_QTY: Final = "900"
ORD_PRICE: Final = "901"
UNFILLED_QTY: Final = "902"
FILLED_QTY: Final = "911"
EXEC_QTY: Final = "915"
EXEC_PRICE: Final = "914"
EXEC_NO: Final = "909"
EXEC_TIME: Final = "908"
REJECT_REASON: Final = "919"
VENUE: Final = "2134"
SOR_FLAG: Final = "2136"

_FIELD_NAMES: Final[dict[str, str]] = {
    ORD_NO: "order number",
    ORIG_ORD_NO: "original order number",
    STK_CD: "stock code",
    STATUS: "order status",
    KIND: "order kind",
    ORD_QTY: "order quantity",
    ORD_PRICE: "order price",
    UNFILLED_QTY: "unfilled quantity",
    FILLED_QTY: "cumulative filled quantity",
    EXEC_QTY: "execution quantity",
    EXEC_PRICE: "execution price",
    EXEC_NO: "execution number",
    EXEC_TIME: "execution time",
    REJECT_REASON: "reject reason",
    VENUE: "venue",
    SOR_FLAG: "SOR flag",
}

_MAX_NUMBER: Final = 10**12 - 1  # 12 digits, as the engine allows
_RC_CODE: Final = re.compile(r"RC\d{3,6}")
_CODE_TOKEN: Final = re.compile(r"[A-Za-z]{0,4}\d{1,8}")
_STATUSES: Final = frozenset({"접수", "확인", "체결", "거부", "취소"})


class RealtimeError(KiwoomError, ValueError):
    """A type-00 frame could not be read: a field is missing, malformed or contradictory.

    ``field`` names the Kiwoom field id (``"900"``) or the frame key (``"data"``) at fault, or is
    empty when the frame as a whole is wrong. Reading the same frame again fails the same way:
    the frame is a fact to log and reconcile (from ka10075 / kt00007), not a transient error.
    """

    outcome = Outcome.DEFINITIVE

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        return self.message


class _Kind(Enum):
    ORDER = "order"
    MODIFY = "modify"
    CANCEL = "cancel"


# -- field parsing ---------------------------------------------------------------------------


def _label(field: str) -> str:
    name = _FIELD_NAMES.get(field)
    return f"field {field} ({name})" if name else f"field {field}"


def _error(field: str, problem: str) -> RealtimeError:
    return RealtimeError(f"{_label(field)} {problem}", field=field)


def _raw(values: Mapping[str, Any], field: str) -> str | None:
    """Return the stripped text of ``field``, or None when it is absent."""
    value = values.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(field, f"must be a string, not {type(value).__name__} {value!r}")
    return value.strip()


def _required(values: Mapping[str, Any], field: str) -> str:
    text = _raw(values, field)
    if text is None:
        raise _error(field, "is missing")
    if not text:
        raise _error(field, "is empty")
    return text


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _ord_no(values: Mapping[str, Any], field: str) -> str:
    """Return an order number as sent (``"0000140"``); refuse none, ``"0000000"`` or non-digits."""
    text = _raw(values, field)
    if text is None:
        raise _error(field, "is missing")
    if not text.strip("0"):
        raise _error(field, f"names no order ({text!r})")
    if not _digits(text):
        raise _error(field, f"must be a zero-padded order number, not {text!r}")
    return text


def _qty(values: Mapping[str, Any], field: str) -> int:
    """Return a share count from ``"000000000010"`` or ``"+10"``; a ``-`` is refused."""
    text = _required(values, field)
    body = text[1:] if text[0] == "+" else text
    if text[0] == "-":
        raise _error(field, f"is a negative quantity ({text!r})")
    if not _digits(body):
        raise _error(field, f"is not a whole number of shares ({text!r})")
    number = int(body)
    if number > _MAX_NUMBER:
        raise _error(field, f"exceeds 12 digits ({text!r})")
    return number


def _price(values: Mapping[str, Any], field: str) -> int:
    """Return a price in KRW; a leading ``+``/``-`` marks the direction of the move, not a sign."""
    text = _required(values, field)
    body = text[1:] if text[0] in "+-" else text
    if not _digits(body):
        raise _error(field, f"is not a whole number of KRW ({text!r})")
    number = int(body)
    if number > _MAX_NUMBER:
        raise _error(field, f"exceeds 12 digits ({text!r})")
    return number


def _positive_qty(values: Mapping[str, Any], field: str, why: str) -> int:
    qty = _qty(values, field)
    if qty == 0:
        raise _error(field, f"is 0: {why}")
    return qty


def _stk_cd(values: Mapping[str, Any]) -> str:
    text = _required(values, STK_CD)
    code = text[1:] if text[0] == "A" else text
    if not (code.isascii() and code.isalnum()):
        raise _error(STK_CD, f"is not a stock code ({text!r})")
    return code


def _exchange(values: Mapping[str, Any]) -> str:
    """Return ``KRX``, ``NXT`` or ``SOR`` from 2134 (venue) and 2136 (SOR flag)."""
    sor = (_raw(values, SOR_FLAG) or "").upper()
    if sor in ("Y", "1"):
        return "SOR"
    if sor not in ("", "N", "0"):
        raise _error(SOR_FLAG, f"must be Y/N or 1/0, not {sor!r}")
    venue = (_raw(values, VENUE) or "").upper()
    if venue in ("", "0", "1", "KRX"):
        return "KRX"
    if venue in ("2", "NXT"):
        return "NXT"
    if venue == "SOR":
        return "SOR"
    raise _error(VENUE, f"must be 0, 1 or 2, not {venue!r}")


def _timestamp(values: Mapping[str, Any], trade_date: date) -> datetime | None:
    text = _raw(values, EXEC_TIME)
    if not text:
        return None
    if len(text) != 6 or not _digits(text):
        raise _error(EXEC_TIME, f"must be HHmmss, not {text!r}")
    try:
        clock = time(int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError as exc:
        raise _error(EXEC_TIME, f"is not a time of day ({text!r})") from exc
    return datetime.combine(trade_date, clock, tzinfo=KST)


def _kind(values: Mapping[str, Any]) -> tuple[_Kind, Side, str]:
    """Return the kind of order, its side and the raw 905 text (for messages)."""
    text = _required(values, KIND)
    body = text[1:] if text[0] in "+-" else text
    side_word, rest = body[:2], body[2:]
    side = {"매수": Side.BUY, "매도": Side.SELL}.get(side_word)
    kind = {"": _Kind.ORDER, "정정": _Kind.MODIFY, "취소": _Kind.CANCEL}.get(rest)
    if side is None or kind is None:
        raise _error(
            KIND,
            f"is not a known order kind ({text!r}; expected +매수, -매도, 매수정정, "
            "매도정정, 매수취소 or 매도취소)",
        )
    return kind, side, text


def _status(values: Mapping[str, Any]) -> str:
    text = _required(values, STATUS)
    if text not in _STATUSES:
        raise _error(STATUS, f"is not a known order status ({text!r})")
    return text


def _reason(values: Mapping[str, Any], kind_text: str) -> tuple[str, str]:
    """Return (code, message) of a 거부 from 919; the code is ``"REJECTED"`` when none is given."""
    raw = _raw(values, REJECT_REASON) or ""
    if raw in ("", "0"):
        return "REJECTED", f"{kind_text} rejected (거부); no reason given"
    found = _RC_CODE.search(raw)
    if found is not None:
        code = found.group(0)
    elif _CODE_TOKEN.fullmatch(raw):
        code = raw
    else:
        code = "REJECTED"
    return code, f"{kind_text} rejected (거부): {raw}"


# -- the mapping rows ------------------------------------------------------------------------


class _Frame:
    """One ``values`` dict with the parts every row needs already read."""

    __slots__ = ("kind_text", "side", "ts", "values")

    def __init__(
        self, values: Mapping[str, Any], side: Side, kind_text: str, ts: datetime | None
    ) -> None:
        self.values = values
        self.side = side
        self.kind_text = kind_text
        self.ts = ts


def _order_accepted(f: _Frame) -> list[ev.Event]:
    v = f.values
    return [
        ev.OrderAccepted(
            _ord_no(v, ORD_NO),
            _stk_cd(v),
            f.side,
            _positive_qty(v, ORD_QTY, "an order of no shares"),
            _price(v, ORD_PRICE),
            _exchange(v),
            ts=f.ts,
        )
    ]


def _order_confirmed(f: _Frame) -> list[ev.Event]:
    return [ev.OrderConfirmed(_ord_no(f.values, ORD_NO), ts=f.ts)]


def _filled(f: _Frame) -> list[ev.Event]:
    v = f.values
    ord_no = _ord_no(v, ORD_NO)
    qty = _positive_qty(v, EXEC_QTY, "an execution of no shares")
    price = _price(v, EXEC_PRICE)
    # 911, the order's filled quantity after this execution, positions the fill in the order:
    # the book then counts these shares once, also when a reconciliation reported them first.
    cumulative: int | None = None
    if _raw(v, FILLED_QTY):
        cumulative = _positive_qty(v, FILLED_QTY, "a fill with no cumulative shares")
        if cumulative < qty:
            raise _error(FILLED_QTY, f"({cumulative}) is below this execution's {qty} shares")
    fill_id = _raw(v, EXEC_NO) or ""
    if not fill_id.strip("0"):
        # No execution number: the cumulative filled quantity names this fill uniquely within
        # the order, and is the same on a redelivery.
        if cumulative is None:
            raise _error(FILLED_QTY, "is missing, and so is the execution number 909")
        fill_id = f"{ord_no}:{cumulative}"
    return [ev.OrderFilled(ord_no, fill_id, qty, price, cumulative, ts=f.ts)]


def _order_rejected(f: _Frame) -> list[ev.Event]:
    code, message = _reason(f.values, f.kind_text)
    return [ev.OrderRejected(_ord_no(f.values, ORD_NO), code, message, ts=f.ts)]


def _status_only(f: _Frame) -> list[ev.Event]:
    # A status without a quantity to attribute: check the number, report nothing.
    _ord_no(f.values, ORD_NO)
    return []


def _nothing(f: _Frame) -> list[ev.Event]:
    # Still check the numbers, so that a malformed frame is reported, not silently dropped.
    _ord_no(f.values, ORD_NO)
    _ord_no(f.values, ORIG_ORD_NO)
    return []


def _amended(f: _Frame) -> list[ev.Event]:
    v = f.values
    return [
        ev.OrderAmended(
            _ord_no(v, ORD_NO),
            _ord_no(v, ORIG_ORD_NO),
            _positive_qty(v, ORD_QTY, "a modify must move at least one share (0 means all)"),
            _price(v, ORD_PRICE),
            ts=f.ts,
        )
    ]


def _cancel_accepted(f: _Frame) -> list[ev.Event]:
    v = f.values
    return [
        ev.CancelAccepted(
            _ord_no(v, ORD_NO),
            _ord_no(v, ORIG_ORD_NO),
            _positive_qty(v, ORD_QTY, "a cancel must name at least one share (0 means all)"),
            ts=f.ts,
        )
    ]


def _cancel_confirmed(f: _Frame) -> list[ev.Event]:
    v = f.values
    ord_no = _ord_no(v, ORD_NO)
    orig_ord_no = _ord_no(v, ORIG_ORD_NO)
    asked = _positive_qty(v, ORD_QTY, "a cancel must name at least one share (0 means all)")
    unfilled = _qty(v, UNFILLED_QTY)
    if unfilled > asked:
        raise _error(UNFILLED_QTY, f"({unfilled}) exceeds the cancel's quantity 900 ({asked})")
    cancelled = asked - unfilled  # 902 > 0 on a cancel's 확인: an incomplete cancel
    if cancelled:
        return [ev.CancelConfirmed(ord_no, orig_ord_no, cancelled, ts=f.ts)]
    return [
        ev.CancelRejected(
            orig_ord_no,
            "RC4033",
            "incomplete cancel: nothing cancelled",
            ord_no=ord_no,
            ts=f.ts,
        )
    ]


def _cancel_rejected(f: _Frame) -> list[ev.Event]:
    v = f.values
    code, message = _reason(v, f.kind_text)
    return [
        ev.CancelRejected(
            _ord_no(v, ORIG_ORD_NO), code, message, ord_no=_ord_no(v, ORD_NO), ts=f.ts
        )
    ]


#: The mapping, one line per (kind, 913 status); a pair not here is refused.
_ROWS: Final[dict[tuple[_Kind, str], Callable[[_Frame], list[ev.Event]]]] = {
    (_Kind.ORDER, "접수"): _order_accepted,
    (_Kind.ORDER, "확인"): _order_confirmed,
    (_Kind.ORDER, "체결"): _filled,
    (_Kind.ORDER, "거부"): _order_rejected,
    # 취소 on the order itself: after a partial user cancel, expiring the rest would be wrong
    (_Kind.ORDER, "취소"): _status_only,
    (_Kind.MODIFY, "접수"): _nothing,  # no shares move until 확인
    (_Kind.MODIFY, "확인"): _amended,
    (_Kind.MODIFY, "체결"): _filled,  # fills of the new order number
    (_Kind.MODIFY, "거부"): _nothing,  # no engine event: the original order stays as it was
    (_Kind.CANCEL, "접수"): _cancel_accepted,
    (_Kind.CANCEL, "확인"): _cancel_confirmed,
    (_Kind.CANCEL, "거부"): _cancel_rejected,
}


# -- public functions ------------------------------------------------------------------------


def events_from_values(values: Mapping[str, str], *, trade_date: date) -> list[ev.Event]:
    """Map one type-00 ``values`` dict to the engine events it reports (zero or more).

    ``trade_date`` is the Korea-time date the frame belongs to; field 908 (``HHmmss``) on that
    date in KST becomes each event's ``ts`` (None when 908 is missing or empty). Raise
    :class:`RealtimeError`, naming the field, when the dict is malformed or its kind (905) and
    status (913) make no known pair. See the module docstring for the table.
    """
    if not isinstance(trade_date, date):
        raise TypeError(f"trade_date must be a date, not {trade_date!r}")
    if not isinstance(values, Mapping):
        raise RealtimeError(
            f"values must be a mapping of field ids to strings, not {type(values).__name__}"
        )
    kind, side, kind_text = _kind(values)
    status = _status(values)
    row = _ROWS.get((kind, status))
    if row is None:
        raise _error(STATUS, f"{status!r} is not expected for a {kind_text!r} ({kind.value})")
    return row(_Frame(values, side, kind_text, _timestamp(values, trade_date)))


def events_from_frame(
    frame: Mapping[str, Any] | str | bytes, *, trade_date: date
) -> list[ev.Event]:
    """Map a whole WebSocket frame (JSON text or already parsed) to engine events, in order.

    Only ``REAL`` frames carry events: ``PING``, ``LOGIN`` and ``REG`` answers give ``[]``, and
    entries of a type other than ``"00"`` are skipped. Raise :class:`RealtimeError` when the
    frame is not JSON, lacks ``trnm`` or a ``data`` list, or an ``00`` entry is malformed; the
    message says which entry (``data[1]``) and field. One bad entry refuses the whole frame.
    """
    if isinstance(frame, str | bytes | bytearray):
        try:
            parsed: Any = json.loads(frame)
        except (ValueError, RecursionError) as exc:
            raise RealtimeError(f"frame is not valid JSON: {exc}") from exc
    else:
        parsed = frame
    if not isinstance(parsed, Mapping):
        raise RealtimeError(f"frame must be a JSON object, not {type(parsed).__name__}")
    trnm = parsed.get("trnm")
    if not isinstance(trnm, str):
        raise RealtimeError(f"frame has no 'trnm' string (got {trnm!r})", field="trnm")
    if trnm != "REAL":
        return []
    data = parsed.get("data")
    if not isinstance(data, Sequence) or isinstance(data, str | bytes | bytearray):
        raise RealtimeError(
            f"REAL frame must carry a 'data' list, not {type(data).__name__}", field="data"
        )
    out: list[ev.Event] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise RealtimeError(
                f"data[{index}] must be an object, not {type(entry).__name__}", field="data"
            )
        entry_type = entry.get("type")
        if not isinstance(entry_type, str):
            raise RealtimeError(
                f"data[{index}] has no 'type' string (got {entry_type!r})", field="type"
            )
        if entry_type != "00":
            continue
        values = entry.get("values")
        if not isinstance(values, Mapping):
            raise RealtimeError(
                f"data[{index}] (type 00) has no 'values' object (got {type(values).__name__})",
                field="values",
            )
        try:
            out.extend(events_from_values(values, trade_date=trade_date))
        except RealtimeError as exc:
            raise RealtimeError(f"data[{index}]: {exc}", field=exc.field) from exc
    return out
