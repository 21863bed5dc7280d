"""Korea-time session calendars for KRX and NXT: when does a venue accept cancels?

Hours from Kiwoom's documentation (``docs/kiwoom.md``, "Trading sessions"). A cancel is accepted
in every window in which orders are taken, up to a configurable guard window before each window's
close (a cancel sent seconds before 15:30 races the closing match). Weekends are closed; holidays
are passed in. The module reads no clock: the caller passes the instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

import attrs

from engine.errors import InvalidTime

__all__ = [
    "KRX_WINDOWS",
    "KST",
    "MOCK_WINDOWS",
    "NXT_WINDOWS",
    "KoreaSessions",
    "NaiveTimeError",
]

#: Korea Standard Time (UTC+9, no daylight saving).
KST: Final = timezone(timedelta(hours=9), "KST")

#: KRX: opening call 08:30-09:00 and continuous 09:00-15:20 and closing call 15:20-15:30 form one
#: accepting stretch; then after-hours close-price 15:40-16:00 and single-price 16:00-18:00.
KRX_WINDOWS: Final = ((time(8, 30), time(15, 30)), (time(15, 40), time(18, 0)))

#: NXT: pre-market 08:00-08:50, main 09:00-15:20, after-market 15:30-20:00 (halted between).
NXT_WINDOWS: Final = (
    (time(8, 0), time(8, 50)),
    (time(9, 0), time(15, 20)),
    (time(15, 30), time(20, 0)),
)

#: Kiwoom's mock server behaves as KRX 09:00-15:30.
MOCK_WINDOWS: Final = ((time(9, 0), time(15, 30)),)

Windows = tuple[tuple[time, time], ...]


class NaiveTimeError(InvalidTime):
    """A session question was asked with a time that is not a timezone-aware datetime."""


def _dates(values: Iterable[date]) -> frozenset[date]:
    """Return the holidays as dates (a datetime counts as its date); refuse anything else."""
    days = set()
    for value in values:
        day = value.date() if isinstance(value, datetime) else value
        if not isinstance(day, date):
            raise TypeError(f"a holiday must be a date, not {value!r}")
        days.add(day)
    return frozenset(days)


def _windows_default() -> dict[str, Windows]:
    return {"KRX": KRX_WINDOWS, "NXT": NXT_WINDOWS}


@attrs.frozen
class KoreaSessions:
    """A calendar of cancel-accepting windows per venue, in Korea time.

    ``guard`` closes each window that much early. ``holidays`` are closed business days.
    ``SOR`` orders rest on KRX or NXT, so an SOR cancel is accepted when either venue accepts.
    Use :meth:`mock` for Kiwoom's mock server (KRX only, 09:00-15:30).
    """

    guard: timedelta = attrs.field(
        default=timedelta(seconds=10), validator=attrs.validators.instance_of(timedelta)
    )
    holidays: frozenset[date] = attrs.field(factory=frozenset, converter=_dates)
    windows: dict[str, Windows] = attrs.field(factory=_windows_default)

    def __attrs_post_init__(self) -> None:
        if self.guard < timedelta(0):
            raise ValueError(f"guard must not be negative, not {self.guard}")

    @classmethod
    def mock(
        cls, *, guard: timedelta = timedelta(seconds=10), holidays: Iterable[date] = ()
    ) -> KoreaSessions:
        """Return the calendar of Kiwoom's mock server."""
        return cls(guard=guard, holidays=_dates(holidays), windows={"KRX": MOCK_WINDOWS})

    def is_business_day(self, day: date) -> bool:
        """Return True for a weekday that is not a holiday."""
        return day.weekday() < 5 and day not in self.holidays

    def accepts_cancel(self, exchange: str, at: datetime) -> bool:
        """Return True when ``exchange`` (KRX, NXT or SOR) accepts a cancel at ``at``.

        ``at`` must be timezone-aware (any zone; it is converted to Korea time). An unknown venue
        accepts nothing.
        """
        if not isinstance(at, datetime) or at.utcoffset() is None:
            raise NaiveTimeError(f"a session time must carry a time zone, not {at!r}")
        if exchange == "SOR":
            return self.accepts_cancel("KRX", at) or self.accepts_cancel("NXT", at)
        local = at.astimezone(KST)
        if not self.is_business_day(local.date()):
            return False
        for start, end in self.windows.get(exchange, ()):
            opens = datetime.combine(local.date(), start, KST)
            closes = datetime.combine(local.date(), end, KST) - self.guard
            if opens <= local < closes:
                return True
        return False
