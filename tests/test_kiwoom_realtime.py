"""Kiwoom WebSocket type-00 (주문체결) frames mapped to engine events (adapters.kiwoom.realtime).

Frames are built as Kiwoom sends them (``docs/kiwoom.md``, "Real-time order events"): every value a
string, quantities zero padded to 12 digits, codes with an ``A`` prefix, prices with a direction
sign, and 919 ``"0"`` on normal events.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.kiwoom.realtime import RealtimeError, events_from_frame, events_from_values
from engine import OrderBook, OrderState, Side
from engine import events as ev
from engine.sessions import KST

DAY = date(2025, 3, 14)


def values(
    *,
    kind: str = "+매수",
    status: str = "접수",
    ord_no: str = "0000140",
    orig: str = "0000000",
    code: str = "A005930",
    qty: int = 10,
    price: str = "70100",
    unfilled: int | None = None,
    filled: int = 0,
    exec_qty: int = 0,
    exec_price: str = "",
    exec_no: str = "",
    at: str = "093015",
    reason: str = "0",
    venue: str = "1",
    sor: str = "N",
) -> dict[str, str]:
    """Return a full type-00 ``values`` dict with Kiwoom's padding."""
    return {
        "9201": "1234567890",  # account: present in real frames, unused by the mapping
        "9203": ord_no,
        "904": orig,
        "9001": code,
        "302": "삼성전자",
        "905": kind,
        "913": status,
        "900": f"{qty:012d}",
        "901": price,
        "902": f"{qty - filled if unfilled is None else unfilled:012d}",
        "911": f"{filled:012d}",
        "915": f"{exec_qty:012d}" if exec_qty else "",
        "914": exec_price,
        "909": exec_no,
        "908": at,
        "919": reason,
        "2134": venue,
        "2136": sor,
    }


def frame(*entries: dict[str, str], entry_type: str = "00") -> str:
    """Return a REAL frame as JSON text carrying ``entries`` as type-``entry_type`` values."""
    data = [
        {"type": entry_type, "name": "주문체결", "item": "005930", "values": v} for v in entries
    ]
    return json.dumps({"trnm": "REAL", "data": data}, ensure_ascii=False)


def one(v: dict[str, str]) -> ev.Event:
    """Map ``v`` and return its only event."""
    out = events_from_values(v, trade_date=DAY)
    assert len(out) == 1, out
    return out[0]


TS = datetime(2025, 3, 14, 9, 30, 15, tzinfo=KST)


# -- new orders ------------------------------------------------------------------------------


def test_new_buy_received_maps_to_order_accepted() -> None:
    event = one(values(kind="+매수", status="접수", qty=10, price="70100"))
    assert event == ev.OrderAccepted("0000140", "005930", Side.BUY, 10, 70100, "KRX", ts=TS)


def test_new_sell_received_maps_to_sell_side() -> None:
    event = one(values(kind="-매도", status="접수", price="-69900"))
    assert isinstance(event, ev.OrderAccepted)
    assert event.side is Side.SELL
    assert event.price == 69900


def test_order_confirmed() -> None:
    assert one(values(status="확인")) == ev.OrderConfirmed("0000140", ts=TS)


def test_execution_maps_to_fill_with_execution_number_and_unsigned_price() -> None:
    v = values(status="체결", filled=3, exec_qty=3, exec_price="-70100", exec_no="0000321")
    assert one(v) == ev.OrderFilled("0000140", "0000321", 3, 70100, cum_qty=3, ts=TS)


def test_execution_without_number_gets_id_from_cumulative_fill() -> None:
    first = one(values(status="체결", filled=3, exec_qty=3, exec_price="+70100"))
    second = one(values(status="체결", filled=5, exec_qty=2, exec_price="+70200"))
    assert isinstance(first, ev.OrderFilled)
    assert isinstance(second, ev.OrderFilled)
    assert (first.fill_id, second.fill_id) == ("0000140:3", "0000140:5")
    assert (second.qty, second.price, second.cum_qty) == (2, 70200, 5)


def test_an_execution_without_911_is_not_positioned_and_needs_its_number() -> None:
    v = values(status="체결", filled=3, exec_qty=3, exec_price="70100", exec_no="0000321")
    del v["911"]
    fill = one(v)
    assert isinstance(fill, ev.OrderFilled) and fill.cum_qty is None
    del v["909"]
    with pytest.raises(RealtimeError) as err:
        events_from_values(v, trade_date=DAY)
    assert err.value.field == "911"


def test_execution_with_zero_quantity_is_refused() -> None:
    v = values(status="체결", exec_price="70100", exec_no="1")
    v["915"] = "000000000000"
    with pytest.raises(RealtimeError, match="915") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "915"


def test_order_rejected_takes_rc_code_from_919() -> None:
    v = values(status="거부", reason="[2000](RC4025:주문가능금액이 부족합니다)")
    event = one(v)
    assert isinstance(event, ev.OrderRejected)
    assert (event.ord_no, event.code) == ("0000140", "RC4025")
    assert "주문가능금액" in event.message


def test_order_rejected_without_reason_has_generic_code() -> None:
    event = one(values(status="거부", reason="0"))
    assert isinstance(event, ev.OrderRejected)
    assert event.code == "REJECTED"


def test_non_empty_919_on_received_is_not_a_rejection() -> None:
    for reason in ("0", "", "RC4025"):
        event = one(values(status="접수", reason=reason))
        assert type(event) is ev.OrderAccepted


def test_a_cancelled_status_on_the_order_itself_moves_nothing() -> None:
    # It names neither the shares nor the cancel: expiring the rest after a partial user
    # cancel would lose shares, so the cancel's own 확인 (or reconciliation) carries them.
    assert events_from_values(values(status="취소"), trade_date=DAY) == []
    with pytest.raises(RealtimeError):
        events_from_values(values(status="취소", ord_no=""), trade_date=DAY)


# -- modifies --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["매수정정", "매도정정", "+매수정정", "-매도정정"])
def test_modify_received_gives_no_event(kind: str) -> None:
    v = values(kind=kind, status="접수", ord_no="0000142", orig="0000140", qty=4)
    assert events_from_values(v, trade_date=DAY) == []


def test_modify_confirmed_maps_to_amended_with_new_number() -> None:
    v = values(
        kind="매수정정", status="확인", ord_no="0000142", orig="0000140", qty=4, price="70000"
    )
    assert one(v) == ev.OrderAmended("0000142", "0000140", 4, 70000, ts=TS)


def test_modify_confirmed_of_zero_shares_is_refused_not_all() -> None:
    v = values(kind="매수정정", status="확인", ord_no="0000142", orig="0000140", qty=0)
    with pytest.raises(RealtimeError, match="900") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "900"


def test_modify_execution_fills_the_new_number() -> None:
    v = values(
        kind="+매수정정",
        status="체결",
        ord_no="0000142",
        orig="0000140",
        qty=4,
        filled=1,
        exec_qty=1,
        exec_price="+70000",
        exec_no="0000400",
    )
    assert one(v) == ev.OrderFilled("0000142", "0000400", 1, 70000, cum_qty=1, ts=TS)


def test_modify_rejected_gives_no_event() -> None:
    v = values(kind="매도정정", status="거부", ord_no="0000142", orig="0000140", reason="RC4042")
    assert events_from_values(v, trade_date=DAY) == []


# -- cancels ---------------------------------------------------------------------------------


def cancel(
    status: str, *, qty: int = 7, unfilled: int = 0, kind: str = "매수취소", **kw: Any
) -> dict[str, str]:
    """Return the values of cancel 0000141 of order 0000140."""
    return values(
        kind=kind, status=status, ord_no="0000141", orig="0000140", qty=qty, unfilled=unfilled, **kw
    )


@pytest.mark.parametrize("kind", ["매수취소", "매도취소", "+매수취소", "-매도취소"])
def test_cancel_received_maps_to_cancel_accepted(kind: str) -> None:
    assert one(cancel("접수", kind=kind, unfilled=7)) == ev.CancelAccepted(
        "0000141", "0000140", 7, ts=TS
    )


def test_cancel_received_of_zero_shares_is_refused_not_all() -> None:
    with pytest.raises(RealtimeError, match="field 900") as info:
        events_from_values(cancel("접수", qty=0), trade_date=DAY)
    assert info.value.field == "900"


def test_cancel_confirmed_in_full() -> None:
    assert one(cancel("확인", qty=7, unfilled=0)) == ev.CancelConfirmed(
        "0000141", "0000140", 7, ts=TS
    )


def test_incomplete_cancel_confirms_only_what_was_cancelled() -> None:
    assert one(cancel("확인", qty=7, unfilled=2)) == ev.CancelConfirmed(
        "0000141", "0000140", 5, ts=TS
    )


def test_cancel_confirmed_with_nothing_cancelled_is_a_rejection() -> None:
    assert one(cancel("확인", qty=7, unfilled=7)) == ev.CancelRejected(
        "0000140", "RC4033", "incomplete cancel: nothing cancelled", ord_no="0000141", ts=TS
    )


def test_cancel_confirmed_with_unfilled_above_quantity_is_refused() -> None:
    with pytest.raises(RealtimeError, match="902") as info:
        events_from_values(cancel("확인", qty=3, unfilled=4), trade_date=DAY)
    assert info.value.field == "902"


def test_cancel_rejected_with_code() -> None:
    event = one(cancel("거부", reason="RC4033"))
    assert isinstance(event, ev.CancelRejected)
    assert (event.orig_ord_no, event.ord_no, event.code) == ("0000140", "0000141", "RC4033")


def test_cancel_rejected_without_code() -> None:
    event = one(cancel("거부", reason="0"))
    assert isinstance(event, ev.CancelRejected)
    assert event.code == "REJECTED"
    assert event.ord_no == "0000141"


@pytest.mark.parametrize("orig", ["0000000", "", None])
def test_cancel_without_original_number_is_refused(orig: str | None) -> None:
    v = cancel("접수")
    if orig is None:
        del v["904"]
    else:
        v["904"] = orig
    with pytest.raises(RealtimeError, match="904") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "904"


# -- pairs that make no sense, unknown kinds and statuses ------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"), [("매수취소", "체결"), ("매수취소", "취소"), ("매도정정", "취소")]
)
def test_impossible_pairs_are_refused(kind: str, status: str) -> None:
    v = values(kind=kind, status=status, ord_no="0000141", orig="0000140", exec_qty=1)
    with pytest.raises(RealtimeError, match="913") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "913"


@pytest.mark.parametrize("kind", ["+매수신용", "매매", "", "정정", "+"])
def test_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(RealtimeError, match="905") as info:
        events_from_values(values(kind=kind), trade_date=DAY)
    assert info.value.field == "905"


@pytest.mark.parametrize("status", ["완료", "", "접수 확인"])
def test_unknown_status_is_refused(status: str) -> None:
    with pytest.raises(RealtimeError, match="913") as info:
        events_from_values(values(status=status), trade_date=DAY)
    assert info.value.field == "913"


# -- field formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "code"), [("A005930", "005930"), ("005930", "005930")])
def test_code_loses_a_prefix(raw: str, code: str) -> None:
    event = one(values(code=raw))
    assert isinstance(event, ev.OrderAccepted)
    assert event.stk_cd == code


@pytest.mark.parametrize(("raw", "qty"), [("000000000010", 10), ("+10", 10), ("10", 10)])
def test_quantity_formats(raw: str, qty: int) -> None:
    v = values()
    v["900"] = raw
    event = one(v)
    assert isinstance(event, ev.OrderAccepted)
    assert event.qty == qty


@pytest.mark.parametrize("raw", ["-3", "1O", "", "1.5", "+", "1234567890123"])
def test_bad_quantity_is_refused_naming_the_field(raw: str) -> None:
    v = values()
    v["900"] = raw
    with pytest.raises(RealtimeError, match="field 900") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "900"


@pytest.mark.parametrize(("raw", "price"), [("+70100", 70100), ("-70100", 70100), ("0", 0)])
def test_price_sign_marks_direction_not_sign(raw: str, price: int) -> None:
    event = one(values(price=raw))
    assert isinstance(event, ev.OrderAccepted)
    assert event.price == price


@pytest.mark.parametrize(
    ("venue", "sor", "exchange"),
    [
        ("0", "N", "KRX"),
        ("1", "N", "KRX"),
        ("1", "", "KRX"),
        ("2", "N", "NXT"),
        ("1", "Y", "SOR"),
        ("2", "1", "SOR"),
        ("0", "y", "SOR"),
    ],
)
def test_venue_and_sor_flag(venue: str, sor: str, exchange: str) -> None:
    event = one(values(venue=venue, sor=sor))
    assert isinstance(event, ev.OrderAccepted)
    assert event.exchange == exchange


def test_missing_venue_fields_mean_krx() -> None:
    v = values()
    del v["2134"], v["2136"]
    event = one(v)
    assert isinstance(event, ev.OrderAccepted)
    assert event.exchange == "KRX"


@pytest.mark.parametrize(("field", "raw"), [("2134", "9"), ("2136", "maybe")])
def test_unknown_venue_is_refused(field: str, raw: str) -> None:
    v = values()
    v[field] = raw
    with pytest.raises(RealtimeError, match=field) as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == field


def test_timestamp_is_korea_time_on_the_trade_date() -> None:
    event = one(values(at="153001"))
    assert event.ts == datetime(2025, 3, 14, 15, 30, 1, tzinfo=KST)
    assert event.ts is not None
    assert event.ts.utcoffset() is not None
    assert event.ts.isoformat() == "2025-03-14T15:30:01+09:00"


@pytest.mark.parametrize("at", ["", None])
def test_missing_time_gives_no_timestamp(at: str | None) -> None:
    v = values()
    if at is None:
        del v["908"]
    else:
        v["908"] = at
    assert one(v).ts is None


@pytest.mark.parametrize("at", ["9301", "0930150", "250000", "096000", "09:30:"])
def test_bad_time_is_refused(at: str) -> None:
    with pytest.raises(RealtimeError, match="908") as info:
        events_from_values(values(at=at), trade_date=DAY)
    assert info.value.field == "908"


@pytest.mark.parametrize("ord_no", ["0000000", "", "14O"])
def test_bad_order_number_is_refused(ord_no: str) -> None:
    with pytest.raises(RealtimeError, match="9203"):
        events_from_values(values(ord_no=ord_no), trade_date=DAY)


@pytest.mark.parametrize("field", ["9203", "9001", "905", "913", "900", "901"])
def test_missing_field_raises_realtime_error_naming_it(field: str) -> None:
    v = values()
    del v[field]
    with pytest.raises(RealtimeError) as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == field
    assert f"field {field}" in str(info.value)
    assert "missing" in str(info.value)


@pytest.mark.parametrize("field", ["915", "914"])
def test_missing_execution_field_raises_realtime_error(field: str) -> None:
    v = values(status="체결", exec_qty=1, exec_price="70100", exec_no="0000001")
    del v[field]
    with pytest.raises(RealtimeError) as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == field


def test_execution_without_number_or_cumulative_is_refused() -> None:
    v = values(status="체결", exec_qty=1, exec_price="70100", exec_no="")
    v["911"] = "000000000000"
    with pytest.raises(RealtimeError) as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "911"


def test_non_string_value_is_refused() -> None:
    v: dict[str, Any] = values()
    v["900"] = 10
    with pytest.raises(RealtimeError, match="900") as info:
        events_from_values(v, trade_date=DAY)
    assert info.value.field == "900"


def test_whitespace_around_values_is_ignored() -> None:
    v = values()
    v["913"] = " 접수 "
    v["9001"] = "A005930 "
    event = one(v)
    assert isinstance(event, ev.OrderAccepted)
    assert event.stk_cd == "005930"


# -- whole frames ----------------------------------------------------------------------------


def test_frame_as_text_bytes_or_parsed_gives_the_same_events() -> None:
    text = frame(values(status="접수"), values(status="확인"))
    expected = [
        ev.OrderAccepted("0000140", "005930", Side.BUY, 10, 70100, "KRX", ts=TS),
        ev.OrderConfirmed("0000140", ts=TS),
    ]
    assert events_from_frame(text, trade_date=DAY) == expected
    assert events_from_frame(text.encode("utf-8"), trade_date=DAY) == expected
    assert events_from_frame(json.loads(text), trade_date=DAY) == expected


def test_entries_of_other_types_are_skipped() -> None:
    parsed = json.loads(frame(values(status="확인")))
    parsed["data"].insert(0, {"type": "04", "name": "잔고", "item": "005930", "values": {}})
    parsed["data"].append({"type": "0B", "item": "005930", "values": {"10": "+70100"}})
    assert events_from_frame(parsed, trade_date=DAY) == [ev.OrderConfirmed("0000140", ts=TS)]
    assert events_from_frame(frame(values(), entry_type="04"), trade_date=DAY) == []


@pytest.mark.parametrize(
    "message",
    [
        {"trnm": "PING"},
        {"trnm": "LOGIN", "return_code": 0, "return_msg": ""},
        {"trnm": "REG", "return_code": 0, "return_msg": ""},
    ],
)
def test_non_real_frames_give_no_events(message: dict[str, Any]) -> None:
    assert events_from_frame(message, trade_date=DAY) == []
    assert events_from_frame(json.dumps(message), trade_date=DAY) == []


def test_real_frame_with_empty_data_gives_no_events() -> None:
    assert events_from_frame({"trnm": "REAL", "data": []}, trade_date=DAY) == []


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("{not json", ""),
        (b"\xff\xfe", ""),
        ("[1, 2]", ""),
        ({"data": []}, "trnm"),
        ({"trnm": "REAL"}, "data"),
        ({"trnm": "REAL", "data": "00"}, "data"),
        ({"trnm": "REAL", "data": [5]}, "data"),
        ({"trnm": "REAL", "data": [{"values": {}}]}, "type"),
        ({"trnm": "REAL", "data": [{"type": "00"}]}, "values"),
    ],
)
def test_malformed_frames_raise_realtime_error(message: Any, field: str) -> None:
    with pytest.raises(RealtimeError) as info:
        events_from_frame(message, trade_date=DAY)
    assert info.value.field == field


def test_bad_entry_is_named_by_its_index_and_field() -> None:
    bad = values(status="체결", exec_price="70100", exec_no="1")  # 915 empty
    with pytest.raises(RealtimeError, match=r"data\[1\].*field 915") as info:
        events_from_frame(frame(values(), bad), trade_date=DAY)
    assert info.value.field == "915"


# -- into the book ---------------------------------------------------------------------------


def apply_all(book: OrderBook, text: str) -> None:
    for event in events_from_frame(text, trade_date=DAY):
        book.apply(event)


def execution(filled: int, exec_qty: int, exec_no: str) -> dict[str, str]:
    """Return a 체결 of ``exec_qty`` shares of order 0000140 (Q 10), ``filled`` in all."""
    return values(
        status="체결",
        qty=10,
        filled=filled,
        exec_qty=exec_qty,
        exec_price="-70100",
        exec_no=exec_no,
    )


def test_incomplete_cancel_sequence_keeps_quantities_exact() -> None:
    book = OrderBook()
    apply_all(book, frame(values(status="접수", qty=10)))
    apply_all(book, frame(values(status="확인", qty=10)))
    apply_all(book, frame(execution(3, 3, "0000901")))
    request = book.request_cancel("0000140", 0)
    assert request.cancel_all
    apply_all(book, frame(cancel("접수", qty=7, unfilled=7)))
    # Two shares filled before the cancel reached the venue: 902 > 0, an incomplete cancel.
    apply_all(book, frame(cancel("확인", qty=7, unfilled=2)))
    before = book.get("0000140")
    assert (before.filled_qty, before.cancelled_qty, before.leaves_qty) == (3, 5, 2)
    assert before.state is OrderState.PARTIALLY_FILLED
    apply_all(book, frame(execution(5, 2, "0000905")))
    order = book.get("0000140")
    assert order.filled_qty + order.cancelled_qty + order.leaves_qty == order.qty == 10
    assert (order.filled_qty, order.cancelled_qty, order.leaves_qty) == (5, 5, 0)
    assert order.state is OrderState.CANCELLED
    assert order.pending_cancel_qty == 0
    assert not book.anomalies
    assert not book.parked


def test_modify_sequence_moves_the_rest_to_the_new_number() -> None:
    book = OrderBook()
    apply_all(book, frame(values(status="접수", qty=10), values(status="확인", qty=10)))
    apply_all(book, frame(execution(2, 2, "0000901")))

    def modify(status: str, **kw: Any) -> str:
        return frame(
            values(kind="매수정정", status=status, ord_no="0000142", orig="0000140", qty=8, **kw)
        )

    apply_all(book, modify("접수", price="70000"))
    assert book.get("0000140").state is OrderState.PARTIALLY_FILLED  # 접수 moved nothing
    apply_all(book, modify("확인", price="70000"))
    apply_all(book, modify("체결", price="70000", filled=3, exec_qty=3, exec_price="+70000"))
    old, new = book.get("0000140"), book.get("0000142")
    assert old.state is OrderState.REPLACED
    assert (old.filled_qty, old.replaced_qty, old.leaves_qty) == (2, 8, 0)
    assert (new.qty, new.filled_qty, new.leaves_qty, new.price) == (8, 3, 5, 70000)
    assert new.state is OrderState.PARTIALLY_FILLED


@st.composite
def fills_and_cancel(draw: st.DrawFn) -> tuple[int, list[int], int, list[bool], bool]:
    """Draw Q, fills summing to at most Q, the fill count before the cancel request, whether
    each later fill reaches us before the cancel's 확인, and whether fills carry a 909."""
    q = draw(st.integers(1, 500))
    fills: list[int] = []
    total = 0
    while total < q and draw(st.booleans()):
        part = draw(st.integers(1, q - total))
        fills.append(part)
        total += part
    # The cancel is requested after the first k fills, while something is still open.
    limits = [k for k in range(len(fills) + 1) if sum(fills[:k]) < q]
    k = draw(st.sampled_from(limits))
    early = draw(st.lists(st.booleans(), min_size=len(fills) - k, max_size=len(fills) - k))
    numbered = draw(st.booleans())
    return q, fills, k, early, numbered


@given(fills_and_cancel())
def test_mapped_fills_and_final_cancel_give_exact_quantities(
    case: tuple[int, list[int], int, list[bool], bool],
) -> None:
    q, fills, k, early, numbered = case
    book = OrderBook()
    apply_all(book, frame(values(status="접수", qty=q)))
    apply_all(book, frame(values(status="확인", qty=q)))
    cumulative = 0
    fill_frames: list[str] = []
    for i, part in enumerate(fills):
        cumulative += part
        exec_no = f"{i + 1:07d}" if numbered else ""
        fill_frames.append(
            frame(
                values(
                    status="체결",
                    qty=q,
                    filled=cumulative,
                    exec_qty=part,
                    exec_price="+70100" if i % 2 else "-70100",
                    exec_no=exec_no,
                )
            )
        )
    for text in fill_frames[:k]:
        apply_all(book, text)
    open_at_request = q - sum(fills[:k])
    book.request_cancel("0000140", 0)
    apply_all(book, frame(cancel("접수", qty=open_at_request, unfilled=open_at_request)))
    later = list(zip(fill_frames[k:], early, strict=True))
    for text, before in later:
        if before:
            apply_all(book, text)
    still_unfilled = sum(fills) - sum(fills[:k])  # filled while the cancel travelled
    apply_all(book, frame(cancel("확인", qty=open_at_request, unfilled=still_unfilled)))
    for text, before in later:
        if not before:
            apply_all(book, text)
    order = book.get("0000140")
    assert order.filled_qty == sum(fills)
    assert order.cancelled_qty == q - sum(fills)
    assert order.leaves_qty == 0
    assert order.filled_qty + order.cancelled_qty + order.leaves_qty == q
    assert order.pending_cancel_qty == 0
    assert order.state is (OrderState.FILLED if sum(fills) == q else OrderState.CANCELLED)
    # Exact mapping needs none of the book's repairs (clamped confirmations, late fills).
    assert not book.anomalies
    assert not book.parked
