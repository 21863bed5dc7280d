"""Latencies of the simulated exchange: fixed or drawn from a range, in whole milliseconds."""

from __future__ import annotations

import attrs

__all__ = ["Delay", "Latency"]


def _ms(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"a delay is a non-negative int of milliseconds, not {value!r}")
    return value


@attrs.frozen(slots=True)
class Delay:
    """A delay of ``low`` to ``high`` ms (inclusive, uniform); ``low == high`` is fixed."""

    low: int = attrs.field(default=0, converter=_ms)
    high: int = attrs.field(default=None)  # None: the same as low (a fixed delay)

    def __attrs_post_init__(self) -> None:
        if self.high is None:
            object.__setattr__(self, "high", self.low)
        _ms(self.high)
        if self.high < self.low:
            raise ValueError(f"a delay range must not be reversed: {self.low}-{self.high} ms")

    @classmethod
    def parse(cls, text: str) -> Delay:
        """Read ``"25"`` (fixed) or ``"10-300"`` (a range) in milliseconds."""
        parts = text.strip().split("-")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"a latency is N or LOW-HIGH in whole milliseconds, not {text!r}")
        low = int(parts[0])
        return cls(low, int(parts[-1]))

    @property
    def is_zero(self) -> bool:
        """Return True for no delay at all."""
        return self.high == 0

    def __str__(self) -> str:
        return f"{self.low} ms" if self.low == self.high else f"{self.low}-{self.high} ms"


@attrs.frozen(slots=True)
class Latency:
    """Where time passes between a strategy and the exchange, and back.

    - ``request``: from sending a request to the broker's order server answering it (the REST
      round trip's first half: numbering, or a rejection such as RC4033).
    - ``venue``: from the order server to the matching engine, where fills can still beat a
      cancel that the order server already accepted.
    - ``delivery``: from an exchange fact to the engine receiving it.

    Each channel keeps its order (first in, first out) unless ``reorder`` is set: then each
    delivery is delayed on its own and independent deliveries can overtake each other.
    """

    request: Delay = attrs.field(default=Delay(), validator=attrs.validators.instance_of(Delay))
    venue: Delay = attrs.field(default=Delay(), validator=attrs.validators.instance_of(Delay))
    delivery: Delay = attrs.field(default=Delay(), validator=attrs.validators.instance_of(Delay))
    reorder: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @classmethod
    def uniform(cls, delay: Delay | str | int, *, reorder: bool = False) -> Latency:
        """Return the same delay on all three channels."""
        if isinstance(delay, str):
            delay = Delay.parse(delay)
        elif type(delay) is int:
            delay = Delay(delay)
        elif not isinstance(delay, Delay):
            raise ValueError(f"a latency is a Delay, an int of ms or 'LOW-HIGH', not {delay!r}")
        return cls(delay, delay, delay, reorder)

    @property
    def is_zero(self) -> bool:
        """Return True when nothing is delayed: a cancel then always beats the next fill."""
        return self.request.is_zero and self.venue.is_zero and self.delivery.is_zero
