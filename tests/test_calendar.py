"""adapters.calendar: KRX holidays from the ``holidays`` package, plugged into KoreaSessions."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta

import pytest

from adapters.calendar import EXTRA_HINT, MissingExtra, korea_sessions, krx_holidays
from engine import OrderBook, Refusal, Side
from engine import events as ev
from engine.sessions import KST

pytest.importorskip("holidays", reason="the [holidays] extra is part of [test]")


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=KST)


def test_the_krx_closing_days_of_2026() -> None:
    days = krx_holidays([2026])
    # Chuseok, the year-end closing day (not a public holiday), Labor Day, an election day
    for closed in (date(2026, 9, 25), date(2026, 12, 31), date(2026, 5, 1), date(2026, 6, 3)):
        assert closed in days, closed
    assert date(2026, 9, 28) not in days  # an ordinary Monday
    assert all(day.weekday() < 5 and day.year == 2026 for day in days)
    assert 10 <= len(days) <= 25


def test_a_calendar_with_them_refuses_cancels_on_a_holiday() -> None:
    calendar = korea_sessions(years=range(2026, 2028))
    assert not calendar.accepts_cancel("KRX", at(date(2026, 9, 25)))  # Chuseok
    assert calendar.accepts_cancel("KRX", at(date(2026, 9, 28)))
    assert not calendar.accepts_cancel("NXT", at(date(2026, 12, 31)))
    assert calendar.accepts_cancel("KRX", at(date(2027, 1, 4)))
    book = OrderBook(calendar=calendar)
    book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, qty=10, price=70_000))
    decision = book.decide_cancel("0000001", "0", at=at(date(2026, 9, 25)))
    assert decision.reason is Refusal.MARKET_CLOSED
    assert book.decide_cancel("0000001", "0", at=at(date(2026, 9, 28))).allowed


def test_mock_hours_and_extra_days() -> None:
    company_day = date(2026, 9, 29)
    calendar = korea_sessions([2026], mock=True, extra=[company_day], guard=timedelta(0))
    assert not calendar.accepts_cancel("NXT", at(date(2026, 9, 28)))  # mock: KRX only
    assert calendar.accepts_cancel("KRX", at(date(2026, 9, 28), 15).replace(minute=29))
    assert not calendar.accepts_cancel("KRX", at(company_day))


@pytest.mark.parametrize(
    ("years", "error"),
    [
        (2026, TypeError),
        ("2026", TypeError),
        ([2026.0], TypeError),
        ([1990], ValueError),
        ([], ValueError),
    ],
)
def test_bad_years_are_refused(years: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        krx_holidays(years)  # type: ignore[arg-type]


def test_without_the_extra_the_error_names_it() -> None:
    code = (
        "import sys; sys.modules['holidays'] = None\n"
        "from adapters.calendar import korea_sessions, MissingExtra\n"
        "try:\n    korea_sessions([2026])\n"
        "except MissingExtra as exc:\n    print(type(exc).__mro__[1].__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == f"ImportError {EXTRA_HINT}"
    assert "pip install 'kiwoom-order-engine[holidays]'" in EXTRA_HINT
    assert issubclass(MissingExtra, ImportError)


def test_neither_the_engine_nor_the_adapter_imports_the_package_up_front() -> None:
    code = (
        "import sys, engine, engine.sessions, adapters.calendar\nprint('holidays' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
