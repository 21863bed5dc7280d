"""Korea-time session calendars (engine.sessions) and their use by the cancel decision."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from engine import CancelRefused, OrderBook, Refusal, Side
from engine import events as ev
from engine.sessions import KST, KoreaSessions, NaiveTimeError

MONDAY = date(2024, 6, 3)
FRIDAY = date(2024, 6, 7)
SATURDAY = date(2024, 6, 8)
SUNDAY = date(2024, 6, 9)
HOLIDAY = date(2024, 6, 6)  # 현충일, a Thursday


def kst(hh: int, mm: int, ss: int = 0, day: date = MONDAY, us: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss, us), KST)


def test_the_test_dates_are_what_they_claim() -> None:
    assert MONDAY.weekday() == 0
    assert FRIDAY.weekday() == 4
    assert SATURDAY.weekday() == 5
    assert SUNDAY.weekday() == 6
    assert HOLIDAY.weekday() == 3


@pytest.mark.parametrize(
    ("at", "accepts"),
    [
        (kst(8, 29), False),
        (kst(8, 29, 59), False),
        (kst(8, 30), True),
        (kst(9, 0), True),
        (kst(12, 0), True),
        (kst(15, 20), True),  # closing call
        (kst(15, 29, 49), True),
        (kst(15, 29, 49, us=999_999), True),
        (kst(15, 29, 50), False),  # the 10 s guard before 15:30
        (kst(15, 29, 55), False),
        (kst(15, 30), False),
        (kst(15, 35), False),
        (kst(15, 39, 59), False),
        (kst(15, 40), True),
        (kst(15, 45), True),
        (kst(17, 59, 49), True),
        (kst(17, 59, 50), False),
        (kst(18, 0), False),
        (kst(0, 0), False),
        (kst(23, 59), False),
    ],
)
def test_krx_hours_with_the_default_guard(at: datetime, accepts: bool) -> None:
    assert KoreaSessions().accepts_cancel("KRX", at) is accepts


@pytest.mark.parametrize(
    ("at", "accepts"),
    [
        (kst(7, 59, 59), False),
        (kst(8, 0), True),
        (kst(8, 49, 49), True),
        (kst(8, 49, 50), False),
        (kst(8, 50), False),
        (kst(8, 55), False),  # halted 08:50-09:00
        (kst(9, 0), True),
        (kst(15, 19, 49), True),
        (kst(15, 19, 50), False),
        (kst(15, 20), False),
        (kst(15, 25), False),  # halted 15:20-15:30
        (kst(15, 30), True),
        (kst(18, 0), True),
        (kst(19, 59, 49), True),
        (kst(19, 59, 50), False),  # 20:00 minus the guard
        (kst(20, 0), False),
    ],
)
def test_nxt_hours_with_the_default_guard(at: datetime, accepts: bool) -> None:
    assert KoreaSessions().accepts_cancel("NXT", at) is accepts


def test_the_guard_is_configurable() -> None:
    none = KoreaSessions(guard=timedelta(0))
    assert none.accepts_cancel("KRX", kst(15, 29, 59, us=999_999))
    assert not none.accepts_cancel("KRX", kst(15, 30))
    minute = KoreaSessions(guard=timedelta(minutes=1))
    assert minute.accepts_cancel("KRX", kst(15, 28, 59))
    assert not minute.accepts_cancel("KRX", kst(15, 29))
    assert not minute.accepts_cancel("NXT", kst(19, 59, 30))
    with pytest.raises(ValueError):
        KoreaSessions(guard=timedelta(seconds=-1))


@pytest.mark.parametrize("day", [SATURDAY, SUNDAY])
@pytest.mark.parametrize("exchange", ["KRX", "NXT", "SOR"])
def test_weekends_are_closed(day: date, exchange: str) -> None:
    calendar = KoreaSessions()
    for hh, mm in ((8, 10), (8, 40), (10, 0), (15, 45), (19, 0)):
        assert not calendar.accepts_cancel(exchange, kst(hh, mm, day=day))
    assert not calendar.is_business_day(day)


@pytest.mark.parametrize("exchange", ["KRX", "NXT", "SOR"])
def test_holidays_are_closed(exchange: str) -> None:
    at = kst(10, 0, day=HOLIDAY)
    assert KoreaSessions().accepts_cancel(exchange, at)  # not a holiday unless told
    calendar = KoreaSessions(holidays=[HOLIDAY])
    assert not calendar.accepts_cancel(exchange, at)
    assert not calendar.is_business_day(HOLIDAY)
    assert calendar.is_business_day(MONDAY)
    assert calendar.accepts_cancel(exchange, kst(10, 0, day=FRIDAY))


def test_an_aware_time_in_another_zone_is_converted_to_korea_time() -> None:
    calendar = KoreaSessions()
    assert calendar.accepts_cancel("KRX", datetime(2024, 6, 3, 0, 30, tzinfo=UTC))  # 09:30 KST
    assert not calendar.accepts_cancel("KRX", datetime(2024, 6, 3, 9, 30, tzinfo=UTC))  # 18:30
    assert calendar.accepts_cancel("NXT", datetime(2024, 6, 3, 9, 30, tzinfo=UTC))
    # Sunday 23:30 UTC is Monday 08:30 KST: the day is taken in Korea time.
    assert calendar.accepts_cancel("KRX", datetime(2024, 6, 2, 23, 30, tzinfo=UTC))
    # Friday 23:30 UTC is Saturday 08:30 KST: closed.
    assert not calendar.accepts_cancel("KRX", datetime(2024, 6, 7, 23, 30, tzinfo=UTC))
    # A holiday in Korea time, whatever the UTC date.
    holidays = KoreaSessions(holidays=[HOLIDAY])
    assert not holidays.accepts_cancel("KRX", datetime(2024, 6, 5, 23, 30, tzinfo=UTC))


def test_a_naive_time_is_refused() -> None:
    calendar = KoreaSessions()
    for exchange in ("KRX", "NXT", "SOR", "XYZ"):
        with pytest.raises(NaiveTimeError) as info:
            calendar.accepts_cancel(exchange, datetime(2024, 6, 3, 10, 0))
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("at", "krx", "nxt"),
    [
        (kst(7, 30), False, False),
        (kst(8, 10), False, True),
        (kst(8, 52), True, False),
        (kst(8, 55), True, False),
        (kst(10, 0), True, True),
        (kst(15, 25), True, False),
        (kst(15, 35), False, True),
        (kst(16, 0), True, True),
        (kst(19, 0), False, True),
        (kst(20, 30), False, False),
    ],
)
def test_sor_accepts_when_either_venue_does(at: datetime, krx: bool, nxt: bool) -> None:
    calendar = KoreaSessions()
    assert calendar.accepts_cancel("KRX", at) is krx
    assert calendar.accepts_cancel("NXT", at) is nxt
    assert calendar.accepts_cancel("SOR", at) is (krx or nxt)


def test_an_unknown_venue_accepts_nothing() -> None:
    assert not KoreaSessions().accepts_cancel("XYZ", kst(10, 0))


def test_mock_is_krx_from_nine_to_half_past_three_only() -> None:
    mock = KoreaSessions.mock()
    assert not mock.accepts_cancel("KRX", kst(8, 40))
    assert not mock.accepts_cancel("KRX", kst(8, 59, 59))
    assert mock.accepts_cancel("KRX", kst(9, 0))
    assert mock.accepts_cancel("KRX", kst(15, 29, 49))
    assert not mock.accepts_cancel("KRX", kst(15, 29, 50))
    assert not mock.accepts_cancel("KRX", kst(15, 45))
    assert not mock.accepts_cancel("NXT", kst(10, 0))
    assert not mock.accepts_cancel("NXT", kst(19, 0))
    assert not mock.accepts_cancel("SOR", kst(19, 0))
    assert not mock.accepts_cancel("KRX", kst(10, 0, day=SATURDAY))
    with_holiday = KoreaSessions.mock(holidays=[HOLIDAY], guard=timedelta(0))
    assert not with_holiday.accepts_cancel("KRX", kst(10, 0, day=HOLIDAY))
    assert with_holiday.accepts_cancel("KRX", kst(15, 29, 59))


# -- the calendar in the cancel decision --------------------------------------------------------

NO = "0000001"


def _book(exchange: str = "KRX") -> OrderBook:
    book = OrderBook(calendar=KoreaSessions())
    book.apply(ev.OrderAccepted(NO, "005930", Side.BUY, 10, 70_000, exchange=exchange))
    book.apply(ev.OrderConfirmed(NO))
    return book


@pytest.mark.parametrize(
    "at",
    [kst(8, 0), kst(15, 29, 55), kst(15, 35), kst(18, 0), kst(10, 0, day=SATURDAY)],
)
def test_decide_cancel_outside_hours_is_market_closed(at: datetime) -> None:
    book = _book()
    before = book.snapshot()
    for qty in (0, "0", 3, 10):
        decision = book.decide_cancel(NO, qty, at=at)
        assert not decision.allowed
        assert decision.reason is Refusal.MARKET_CLOSED
        assert decision.qty == 0
    assert book.snapshot() == before


@pytest.mark.parametrize("at", [kst(8, 30), kst(9, 0), kst(15, 29, 49), kst(15, 45)])
def test_decide_cancel_inside_hours_is_allowed(at: datetime) -> None:
    book = _book()
    decision = book.decide_cancel(NO, 3, at=at)
    assert (decision.allowed, decision.qty, decision.reason) == (True, 3, None)
    everything = book.decide_cancel(NO, "0", at=at)
    assert (everything.allowed, everything.qty, everything.cancel_all) == (True, 10, True)


def test_the_order_venue_decides_the_hours() -> None:
    at = kst(19, 0)
    assert _book("KRX").decide_cancel(NO, 1, at=at).reason is Refusal.MARKET_CLOSED
    assert _book("NXT").decide_cancel(NO, 1, at=at).allowed
    assert _book("SOR").decide_cancel(NO, 1, at=at).allowed
    assert _book("NXT").decide_cancel(NO, 1, at=kst(8, 55)).reason is Refusal.MARKET_CLOSED


def test_request_cancel_outside_hours_raises_without_reserving() -> None:
    book = _book()
    before = book.snapshot()
    n_events = len(book.events)
    for qty in (0, 4):
        with pytest.raises(CancelRefused) as info:
            book.request_cancel(NO, qty, at=kst(15, 35))
        assert info.value.decision.reason is Refusal.MARKET_CLOSED
    assert book.snapshot() == before
    assert len(book.events) == n_events
    order = book.get(NO)
    assert (order.pending_cancel_qty, order.cancel_all_pending) == (0, False)
    request = book.request_cancel(NO, 4, at=kst(15, 45))
    assert (request.qty, request.cancel_all) == (4, False)
    assert order.pending_cancel_qty == 4
