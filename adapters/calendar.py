"""Korean market holidays from a maintained source, for :class:`engine.sessions.KoreaSessions`.

The engine takes holidays as plain dates and reads nothing itself; this adapter fills them in
from the ``holidays`` package's KRX calendar (``XKRX``: public holidays on weekdays, Labor Day,
election days and the year-end closing day, 31 December), so nobody types holiday lists by
hand. It needs the ``[holidays]`` extra::

    pip install 'kiwoom-order-engine[holidays]'

    from adapters.calendar import korea_sessions
    calendar = korea_sessions(years=range(2025, 2028))  # KRX and NXT hours, KRX holidays
    book = OrderBook(calendar=calendar)

The package is imported when a calendar is asked for, never when this module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, Final

from engine.frames import MissingExtra  # the one error for a missing extra, everywhere
from engine.sessions import KoreaSessions

__all__ = [
    "EXTRA_HINT",
    "FIRST_YEAR",
    "LAST_YEAR",
    "MissingExtra",
    "korea_sessions",
    "krx_holidays",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: What to install when the ``holidays`` package is missing.
EXTRA_HINT: Final = (
    "Korean market holidays need the [holidays] extra: pip install 'kiwoom-order-engine[holidays]'"
)

#: The years the source covers (its KRX calendar starts in 2000).
FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2100


def _holidays_module() -> Any:
    try:
        import holidays
    except ImportError as exc:
        raise MissingExtra(EXTRA_HINT) from exc
    return holidays


def _years(years: Iterable[int]) -> list[int]:
    if isinstance(years, (str, bytes)) or not isinstance(years, Iterable):
        raise TypeError(
            f"years must be an iterable of ints such as range(2025, 2028), not {years!r}"
        )
    chosen = list(years)
    for year in chosen:
        if type(year) is not int:
            raise TypeError(f"a year must be an int, not {year!r}")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"KRX holidays are known for {FIRST_YEAR}-{LAST_YEAR}, not {year}")
    if not chosen:
        raise ValueError("no years given: pass the years the calendar must cover")
    return sorted(set(chosen))


def krx_holidays(years: Iterable[int]) -> frozenset[date]:
    """Return the weekdays on which KRX does not trade in ``years`` (from the ``XKRX`` calendar).

    Raise :class:`MissingExtra` without the ``[holidays]`` extra, ``TypeError``/``ValueError``
    for years that are not ints from :data:`FIRST_YEAR` to :data:`LAST_YEAR`.
    """
    chosen = _years(years)
    module = _holidays_module()
    calendar = module.financial_holidays("XKRX", years=chosen)
    days = frozenset(day for day in calendar if day.weekday() < 5 and day.year in chosen)
    logger.debug("KRX holidays for %s: %d weekdays", chosen, len(days))
    return days


def korea_sessions(
    years: Iterable[int],
    *,
    guard: timedelta = timedelta(seconds=10),
    mock: bool = False,
    extra: Iterable[date] = (),
) -> KoreaSessions:
    """Return a :class:`KoreaSessions` whose holidays are KRX's in ``years`` (plus ``extra``).

    ``mock=True`` gives Kiwoom's mock-server hours (KRX only, 09:00-15:30). Days outside
    ``years`` have no holidays: cover every year the calendar will be asked about.
    """
    days = krx_holidays(years) | frozenset(extra)
    if mock:
        return KoreaSessions.mock(guard=guard, holidays=days)
    return KoreaSessions(guard=guard, holidays=days)
