"""A string that hides itself: app keys, secret keys and tokens.

A :class:`Secret` shows ``Secret(<hidden>)`` in every repr, str and f-string, so a traceback that
renders local variables (``traceback.TracebackException(..., capture_locals=True)``, pytest's
``--showlocals``), a log line or a debugger's variable view never shows the value. The value is
taken out with :meth:`Secret.reveal` only where a request's header or body is built.
"""

from __future__ import annotations

import hmac

__all__ = ["Secret"]


class Secret:
    """A credential or a token. Its repr, str and format are ``Secret(<hidden>)``.

    Two secrets are equal when their values are (compared in constant time).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    @classmethod
    def of(cls, value: Secret | str) -> Secret:
        """Return ``value`` itself when it is a Secret, else wrap it."""
        return value if isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        """Return the value: only where a header or a request body is built."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __format__(self, _spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))
