"""Events: JSON round trips, strict decoding, and refusal of malformed events by the book."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from engine import EngineError, EventDecodeError, InvalidEvent, OrderBook, Side
from engine import events as ev
from engine._fastinit import fast_init
from engine.decision import CancelDecision, CancelRequest, ModifyRequest

KST = timezone(timedelta(hours=9), "KST")
TS_KST = datetime(2024, 6, 3, 9, 30, 15, 123456, tzinfo=KST)
TS_UTC = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)
TS_IST = datetime(2024, 6, 3, 6, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))

NO = "0000001"


def _samples(ts: datetime | None) -> list[Any]:
    """One instance of every event class, every field set away from its default."""
    return [
        ev.OrderAccepted(NO, "005930", Side.SELL, 10, 70_000, exchange="NXT", ts=ts),
        ev.OrderAccepted(NO, "005930", Side.BUY, 10, 0, ts=ts),
        ev.OrderConfirmed(NO, ts=ts),
        ev.OrderFilled(NO, "F-1", 3, 70_100, ts=ts),
        ev.OrderRejected(NO, code="RC4007", message="거래제한 종목", ts=ts),
        ev.CancelRequested(NO, "R0000001", 0, ts=ts),
        ev.CancelAccepted("0000101", NO, 4, request_id="R0000002", ts=ts),
        ev.CancelConfirmed("0000101", NO, 4, request_id="R0000002", ts=ts),
        ev.CancelRejected(
            NO, code="RC4033", message="취소가능수량 없음", ord_no="0000102", request_id="R3", ts=ts
        ),
        ev.OrderAmended("0000002", NO, 0, 71_000, ts=ts),
        ev.OrderExpired(NO, ts=ts),
        ev.CancelOutcomeUnknown(NO, "R0000004", ts=ts),
        ev.ModifyRequested(NO, "R0000005", 3, 71_000, ts=ts),
        ev.ModifyAccepted("0000103", NO, 3, request_id="R0000005", ts=ts),
        ev.ModifyRejected(
            NO, code="RC4033", message="정정가능수량 없음", ord_no="0000103", request_id="R5", ts=ts
        ),
    ]


def _wire(event: Any) -> Any:
    return ev.from_dict(json.loads(json.dumps(event.to_dict())))


def test_the_samples_cover_every_event_class() -> None:
    names = {type(e).__name__ for e in _samples(None)}
    assert names == set(ev.EVENT_TYPES)
    assert names == set(ev.__all__) - {"Event", "from_dict"}


@pytest.mark.parametrize("ts", [None, TS_KST, TS_UTC, TS_IST], ids=["none", "kst", "utc", "ist"])
def test_every_event_round_trips_through_json(ts: datetime | None) -> None:
    for event in _samples(ts):
        data = event.to_dict()
        assert data["type"] == type(event).__name__
        back = _wire(event)
        assert type(back) is type(event)
        assert back == event
        assert back.to_dict() == data
        if ts is None:
            assert back.ts is None
            assert data["ts"] is None
        else:
            assert isinstance(back.ts, datetime)
            assert back.ts.utcoffset() == ts.utcoffset()
            assert back.ts == ts
            assert data["ts"] == ts.isoformat()


def test_to_dict_is_json_ready_with_side_as_its_value() -> None:
    event = ev.OrderAccepted(NO, "005930", Side.SELL, 10, 70_000, ts=TS_KST)
    data = event.to_dict()
    assert data == {
        "type": "OrderAccepted",
        "ord_no": NO,
        "stk_cd": "005930",
        "side": "SELL",
        "qty": 10,
        "price": 70_000,
        "exchange": "KRX",
        "ts": "2024-06-03T09:30:15.123456+09:00",
    }
    back = _wire(event)
    assert back.side is Side.SELL


def test_defaults_may_be_left_out_when_decoding() -> None:
    assert ev.from_dict({"type": "OrderConfirmed", "ord_no": NO}) == ev.OrderConfirmed(NO)
    rejected = ev.from_dict({"type": "CancelRejected", "orig_ord_no": NO})
    assert rejected == ev.CancelRejected(NO)
    assert (rejected.code, rejected.ord_no, rejected.request_id, rejected.ts) == ("", "", "", None)


def _good(**changes: Any) -> dict[str, Any]:
    data = ev.OrderFilled(NO, "F1", 5, 70_000, ts=TS_KST).to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "data",
    [
        {"type": "OrderFilledd", "ord_no": NO},
        {"type": "Event", "ord_no": NO},
        {"type": "from_dict"},
        {"type": 5, "ord_no": NO},
        {"type": None},
        {"ord_no": NO},
        _good(extra=1),
        _good(fill_no="F1"),
        {k: v for k, v in _good().items() if k != "qty"},
        {k: v for k, v in _good().items() if k != "fill_id"},
        {k: v for k, v in _good().items() if k != "ord_no"},
        _good(qty="5"),
        _good(qty=5.0),
        _good(qty=True),
        _good(qty=None),
        _good(price="70000"),
        _good(price=70_000.5),
        _good(ord_no=1),
        _good(fill_id=None),
        _good(ts=5),
        _good(ts=1717374615.0),
        _good(ts="not a time"),
        _good(ts="2024-13-40T00:00:00"),
        {"type": "OrderAccepted", "ord_no": NO, "stk_cd": "005930", "side": "HOLD", "qty": 1,
         "price": 1},
        {"type": "OrderAccepted", "ord_no": NO, "stk_cd": "005930", "side": "buy", "qty": 1,
         "price": 1},
        {"type": "OrderAccepted", "ord_no": NO, "stk_cd": "005930", "side": None, "qty": 1,
         "price": 1},
        {"type": "CancelRejected", "orig_ord_no": NO, "code": 4033},
    ],
)  # fmt: skip
def test_from_dict_refuses_malformed_data(data: dict[str, Any]) -> None:
    with pytest.raises(EventDecodeError) as info:
        ev.from_dict(data)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, EngineError)


@pytest.mark.parametrize("data", [[], "OrderConfirmed", None, 5])
def test_from_dict_refuses_what_is_not_a_dict(data: Any) -> None:
    with pytest.raises(EventDecodeError):
        ev.from_dict(data)


def test_events_are_frozen_values() -> None:
    event = ev.OrderFilled(NO, "F1", 5, 70_000)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.qty = 6  # type: ignore[misc]
    assert event == ev.OrderFilled(NO, "F1", 5, 70_000)
    assert hash(event) == hash(ev.OrderFilled(NO, "F1", 5, 70_000))


def _attrs_signature(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter attrs's own __init__ would take for ``cls``."""
    out = []
    for f in attrs.fields(cls):
        kind = (
            inspect.Parameter.KEYWORD_ONLY if f.kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        default = inspect.Parameter.empty if f.default is attrs.NOTHING else f.default
        out.append((f.name, kind, default))
    return out


VALUE_CLASSES = [*ev.EVENT_TYPES.values(), CancelDecision, CancelRequest, ModifyRequest]


@pytest.mark.parametrize("cls", VALUE_CLASSES, ids=[c.__name__ for c in VALUE_CLASSES])
def test_the_faster_constructors_take_what_attrs_would_and_stay_frozen(cls: type) -> None:
    params = list(inspect.signature(cls).parameters.values())
    assert [(p.name, p.kind, p.default) for p in params] == _attrs_signature(cls)
    assert all(p.annotation is not inspect.Parameter.empty for p in params)
    # Every field is stored where attrs reads it: by position, by keyword, defaults left out.
    values = {f.name: object() for f in attrs.fields(cls)}
    positional = [values[f.name] for f in attrs.fields(cls) if not f.kw_only]
    keyword = {f.name: values[f.name] for f in attrs.fields(cls) if f.kw_only}
    for made in (cls(*positional, **keyword), cls(**values)):
        assert attrs.asdict(made, recurse=False) == values
        name = attrs.fields(cls)[0].name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(made, name, "changed")
        assert attrs.asdict(made, recurse=False) == values
    required = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
    with pytest.raises(TypeError, match=required[-1]):
        cls(*positional[: len(required) - 1])
    with pytest.raises(TypeError, match="unexpected"):
        cls(*positional, nonsense=1, **keyword)


def test_the_faster_constructor_refuses_what_it_cannot_build() -> None:
    @attrs.frozen
    class Checked:
        qty: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match=r"Checked\.qty"):
        fast_init(Checked)

    @attrs.frozen
    class Hooked:
        qty: int

        def __attrs_post_init__(self) -> None:
            if self.qty < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="__attrs_post_init__"):
        fast_init(Hooked)


# -- apply() of malformed events ----------------------------------------------------------------


def _book() -> OrderBook:
    book = OrderBook()
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, 10, 70_000))
    book.apply(ev.OrderConfirmed(NO))
    book.apply(ev.OrderFilled(NO, "F1", 2, 70_000))
    book.apply(ev.OrderFilled("0000009", "Z1", 1, 70_000))  # parked
    return book


MALFORMED: list[Any] = [
    # quantities
    ev.OrderFilled(NO, "F2", 0, 70_000),
    ev.OrderFilled(NO, "F2", -1, 70_000),
    ev.OrderFilled(NO, "F2", "5", 70_000),
    ev.OrderFilled(NO, "F2", 5.0, 70_000),
    ev.OrderFilled(NO, "F2", True, 70_000),
    ev.OrderFilled(NO, "F2", 10**12, 70_000),
    ev.OrderFilled("0000009", "Z2", 0, 70_000),  # for an unknown order: refused, not parked
    ev.OrderAccepted("0000002", "005930", Side.BUY, 0, 70_000),
    ev.OrderAccepted("0000002", "005930", Side.BUY, -1, 70_000),
    ev.OrderAccepted("0000002", "005930", Side.BUY, "5", 70_000),
    ev.CancelRequested(NO, "R9", -1),
    ev.CancelRequested(NO, "R9", "5"),
    ev.CancelAccepted("0000101", NO, -1),
    ev.CancelConfirmed("0000101", NO, -1),
    ev.CancelConfirmed("0000101", NO, "0"),
    ev.OrderAmended("0000002", NO, -1, 70_000),
    # prices
    ev.OrderFilled(NO, "F2", 1, -1),
    ev.OrderFilled(NO, "F2", 1, 70_000.0),
    ev.OrderAccepted("0000002", "005930", Side.BUY, 10, -1),
    ev.OrderAmended("0000002", NO, 0, -1),
    # identifiers
    ev.OrderFilled("", "F2", 1, 70_000),
    ev.OrderFilled(NO, "", 1, 70_000),
    ev.OrderFilled(1, "F2", 1, 70_000),
    ev.OrderConfirmed(""),
    ev.OrderExpired(""),
    ev.OrderRejected(""),
    ev.OrderAccepted("", "005930", Side.BUY, 10, 70_000),
    ev.OrderAccepted("0000002", "", Side.BUY, 10, 70_000),
    ev.OrderAccepted("0000002", "005930", Side.BUY, 10, 70_000, exchange=""),
    ev.CancelRequested("", "R9", 1),
    ev.CancelRequested(NO, "", 1),
    ev.CancelConfirmed("", NO, 1),
    ev.CancelConfirmed("0000101", "", 1),
    ev.CancelRejected(""),
    ev.CancelRejected(NO, code=None),
    ev.OrderAmended("", NO, 0, 70_000),
    # sides
    ev.OrderAccepted("0000002", "005930", "BUY", 10, 70_000),
    ev.OrderAccepted("0000002", "005930", None, 10, 70_000),
    # times
    ev.OrderConfirmed(NO, ts="2024-06-03T09:00:00+09:00"),
    ev.OrderFilled(NO, "F2", 1, 70_000, ts=5),
    ev.OrderExpired(NO, ts=TS_KST.date()),
    ev.OrderAccepted("0000002", "005930", Side.BUY, 10, 70_000, ts=1717374615),
]


@pytest.mark.parametrize(
    "event", MALFORMED, ids=[f"{i}-{type(e).__name__}" for i, e in enumerate(MALFORMED)]
)
def test_apply_refuses_malformed_events_and_changes_nothing(event: Any) -> None:
    book = _book()
    before = book.snapshot()
    n_events = len(book.events)
    with pytest.raises(InvalidEvent) as info:
        book.apply(event)
    assert info.value.event is event
    assert book.snapshot() == before
    assert len(book.events) == n_events
    assert book.get(NO).filled_qty == 2


@pytest.mark.parametrize(
    "thing",
    [None, object(), {"type": "OrderConfirmed", "ord_no": NO}, "OrderConfirmed", 5, Side.BUY],
)
def test_apply_refuses_what_is_not_an_event(thing: Any) -> None:
    book = _book()
    before = book.snapshot()
    n_events = len(book.events)
    with pytest.raises(InvalidEvent):
        book.apply(thing)
    assert book.snapshot() == before
    assert len(book.events) == n_events


def test_valid_edges_of_the_schema_are_taken() -> None:
    book = _book()
    book.apply(ev.OrderAccepted("0000002", "005930", Side.SELL, 10**12 - 1, 0, ts=TS_UTC))
    order = book.get("0000002")
    assert order.qty == 10**12 - 1 and order.price == 0
    book.apply(ev.OrderFilled("0000002", "F1", 1, 0))
    assert order.filled_qty == 1
