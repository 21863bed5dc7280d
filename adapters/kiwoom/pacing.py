"""Per-api-id pacing: space the calls of each TR so that the server never has to throttle them.

Kiwoom counts its limit per api-id (``docs/kiwoom.md``, "Rate limits"): quoted terms say 5
calls/s, measurements on mock saw 1/s. A :class:`Pacer` spaces the calls of each api-id by
``1 / rate`` seconds (plus a small safety margin), learns a lower rate from the ``유량=N`` of a
1700 answer, and backs off every caller of that api-id after a throttled call. The clock and the
sleep are passed in, so tests can drive it without waiting.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["MOCK_RATES", "REAL_RATES", "Pacer", "allowed_rate_in"]

#: Calls per second per api-id on the real server (quoted terms: 5 orders/s, 5 queries/s).
REAL_RATES: Final[Mapping[str, float]] = MappingProxyType({"*": 5.0})
#: The mock server throttled a second back-to-back call within a second: 1 call/s per api-id.
MOCK_RATES: Final[Mapping[str, float]] = MappingProxyType({"*": 1.0})

_RATE = re.compile(r"유량\s*=\s*(\d+)")


def allowed_rate_in(message: str) -> int | None:
    """Return the ``N`` of ``유량=N`` in a 1700 message, or None when it names no rate."""
    match = _RATE.search(message)
    if match is None:
        return None
    rate = int(match.group(1))
    return rate if rate > 0 else None


def _positive(rate: float, what: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise ValueError(f"{what} must be a positive number of calls per second, not {rate!r}")
    return float(rate)


class Pacer:
    """Space the calls of each api-id; thread-safe.

    ``rates`` maps api-ids to calls per second, with ``"*"`` the default for the others (None
    there means unpaced). ``margin`` widens each interval by that fraction, so that the server's
    clock never sees two calls closer than it allows (2%: 98% of the limit is used).
    """

    def __init__(
        self,
        rates: Mapping[str, float | None] = REAL_RATES,
        *,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise ValueError(f"margin must be a fraction from 0 to 1, not {margin!r}")
        self._rates: dict[str, float | None] = {
            api_id: None if rate is None else _positive(rate, f"the rate of {api_id}")
            for api_id, rate in rates.items()
        }
        self.margin = float(margin)
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def rate(self, api_id: str) -> float | None:
        """Return the calls per second allowed for ``api_id`` (None: unpaced)."""
        return self._rates.get(api_id, self._rates.get("*"))

    def set_rate(self, api_id: str, rate: float | None) -> None:
        """Pace ``api_id`` at ``rate`` calls per second from now on (None: unpaced)."""
        value = None if rate is None else _positive(rate, f"the rate of {api_id}")
        with self._lock:
            self._rates[api_id] = value

    def learn(self, api_id: str, allowed: int) -> None:
        """Take the server's ``유량=N`` for ``api_id``: never pace faster than it allows."""
        allowed_rate = _positive(allowed, "the allowed rate")
        with self._lock:
            current = self._rates.get(api_id, self._rates.get("*"))
            if current is None or allowed_rate < current:
                self._rates[api_id] = allowed_rate

    def interval(self, api_id: str) -> float:
        """Return the seconds between two calls of ``api_id`` (0 when unpaced)."""
        rate = self.rate(api_id)
        return 0.0 if rate is None else (1.0 + self.margin) / rate

    def acquire(self, api_id: str) -> float:
        """Wait for ``api_id``'s next slot and take it; return the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(api_id, now))
            interval = self.interval(api_id)
            self._next[api_id] = slot + interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
            # A late wake-up sends late: the next call is spaced from when this one really
            # goes out, so that no window of the server's ever sees one call too many.
            with self._lock:
                sent = self._clock()
                if self._next.get(api_id, 0.0) < sent + interval:
                    self._next[api_id] = sent + interval
        return wait

    def back_off(self, api_id: str, seconds: float) -> None:
        """Push ``api_id``'s next slot at least ``seconds`` from now (after a throttled call)."""
        with self._lock:
            later = self._clock() + seconds
            if self._next.get(api_id, 0.0) < later:
                self._next[api_id] = later
