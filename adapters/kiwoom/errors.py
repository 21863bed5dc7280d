"""Errors of the Kiwoom adapter, by where the failure happened, each saying what is safe next.

Every error carries ``api_id``, the top-level ``return_code`` (None when no JSON answer came),
the embedded ``code`` (``1700``, ``8005``, ``RC4033``, ...) and the server's ``message``, and an
:class:`Outcome`:

- :attr:`Outcome.NOT_PROCESSED`: the server did not act on the request (throttled, token refused,
  connection refused before sending). Sending it again is safe.
- :attr:`Outcome.DEFINITIVE`: the server gave a final answer for this request (an input error, an
  order-server rejection such as RC4033). Do not send it again; it would be answered the same way.
- :attr:`Outcome.UNKNOWN`: the request may or may not have been carried out (timeout, reset, HTTP
  5xx, a body that is not JSON, 1999, an answer over the size cap, anything unexpected once the
  request may have left). **Never send it again blindly**: reconcile first, from the
  order-status TRs (ka10075, kt00007) or the real-time events.

Only a failure that certainly happened before the request left this process is NOT_PROCESSED.

Messages never contain the app key, the secret key or a token.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "AnswerTooLarge",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConnectFailed",
    "ConnectionLost",
    "InputError",
    "KiwoomError",
    "NotJson",
    "OrderRejected",
    "Outcome",
    "PagingError",
    "RateLimited",
    "RequestNotSent",
    "ServerError",
    "ServerFault",
    "StaleBook",
    "Timeout",
    "TokenInvalid",
    "TokenUnavailable",
    "TransportError",
    "UnexpectedFailure",
]


class Outcome(Enum):
    """What a failed request did on the server, and so what is safe to do next."""

    NOT_PROCESSED = "not processed"  # safe to send again
    DEFINITIVE = "definitive"  # a final answer: do not send again
    UNKNOWN = "unknown"  # may have happened: reconcile, never re-send blindly


class KiwoomError(Exception):
    """Base of every error of the Kiwoom adapter."""

    outcome: Outcome = Outcome.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        api_id: str = "",
        return_code: int | None = None,
        code: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.api_id = api_id
        self.return_code = return_code
        self.code = code
        self.http_status = http_status

    @property
    def safe_to_resend(self) -> bool:
        """Return True when the server certainly did not act on the request."""
        return self.outcome is Outcome.NOT_PROCESSED

    def __str__(self) -> str:
        parts = [p for p in (self.api_id, self.code) if p]
        where = f"[{' '.join(parts)}] " if parts else ""
        return f"{where}{self.message} (outcome: {self.outcome.value})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(api_id={self.api_id!r}, return_code={self.return_code!r}, "
            f"code={self.code!r}, http_status={self.http_status!r}, message={self.message!r})"
        )


class ConfigError(KiwoomError, ValueError):
    """The client is set up wrongly (a refused base URL, missing credentials). Nothing was sent."""

    outcome = Outcome.NOT_PROCESSED


class StaleBook(ConfigError):
    """The broker's book is of an earlier trading day (order numbers restart every day).

    Nothing was sent: start a new day's book with ``KiwoomBroker.start_day()``.
    """


# -- transport: no usable answer came back ------------------------------------------------------
class TransportError(KiwoomError):
    """No usable answer came back from the server. The outcome is unknown unless said otherwise."""


class RequestNotSent(TransportError):
    """The request failed inside this process before any byte of it left (a body that cannot be
    encoded as JSON, a header value HTTP cannot carry). Safe to send again once fixed.
    """

    outcome = Outcome.NOT_PROCESSED


class ConnectFailed(TransportError, ConnectionError):
    """The connection could not be opened, so nothing was sent. Safe to send again."""

    outcome = Outcome.NOT_PROCESSED


class Timeout(TransportError, TimeoutError):
    """The request was sent but no complete answer came in time: the read timeout between two
    bytes, or the whole call's deadline (a server trickling bytes). Outcome unknown: reconcile.
    """


class ConnectionLost(TransportError, ConnectionError):
    """The connection broke after the request was sent. Outcome unknown: reconcile."""


class ServerError(TransportError):
    """HTTP 5xx (or another non-200 answer without a Kiwoom body). Outcome unknown: reconcile."""


class NotJson(TransportError):
    """The body was not a Kiwoom JSON answer (a firewall's HTML page, a truncated or nested-too-deep
    body, a redirect, an encoding this client does not decode). Outcome unknown: reconcile.
    """


class AnswerTooLarge(TransportError):
    """The answer was larger than the transport's ``max_answer`` bytes (as received or once
    decompressed): the read was abandoned and the connection closed. Outcome unknown: reconcile.
    """


class UnexpectedFailure(TransportError):
    """Something no other error describes failed after the request may have left (a bug in an
    HTTP library, a hostile answer). Outcome unknown: reconcile, never send again blindly.
    """


class PagingError(KiwoomError):
    """A status TR's continuation broke: the same ``next-key`` twice, a ``cont-yn`` other than
    ``Y``/``N``, or more pages than ``max_pages``.

    No rows are returned: the list read so far is incomplete and must never be taken for the
    account's state (a short list would reconcile as "clean"). Status TRs change nothing on the
    server; the outcome is UNKNOWN because the account's state is not known from this read.
    """


# -- the API answered with a code ---------------------------------------------------------------
class ApiError(KiwoomError):
    """The API answered with ``return_code != 0`` (usually with HTTP 200)."""


class AuthError(ApiError):
    """Authentication failed (``return_code 3``, 8xxx codes) before processing: nothing happened.

    Wrong app key or secret (8001/8002/8020/8030/8031) will fail the same way again.
    """

    outcome = Outcome.NOT_PROCESSED


class TokenInvalid(AuthError):
    """8005: the token is invalid or expired. Re-issue it once and send again (safe)."""


class TokenUnavailable(KiwoomError):
    """No token could be obtained (au10001 failed), so the TR was never sent. Safe to send again.

    ``code`` is the code of the token request's failure, when it had one.
    """

    outcome = Outcome.NOT_PROCESSED


class RateLimited(ApiError):
    """1700/1701/1702 (HTTP 429): throttled before processing. Safe to send again after a pause.

    ``allowed_rate`` is the ``유량=N`` the server named, when it did.
    """

    outcome = Outcome.NOT_PROCESSED

    def __init__(self, message: str, *, allowed_rate: int | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.allowed_rate = allowed_rate


class InputError(ApiError, ValueError):
    """The request was malformed (return_code 2, or 5 without a 17xx code; 15xx codes).

    Definitive: sending it again gives the same answer.
    """

    outcome = Outcome.DEFINITIVE


class OrderRejected(ApiError):
    """The order server refused the request (``return_code 20``, ``RC4033``, ``RC4032``, ...).

    Definitive for this request. RC4033 on a cancel means nothing was left to cancel: it does not
    prove that anything filled.
    """

    outcome = Outcome.DEFINITIVE


class ServerFault(ApiError):
    """1999, an unexpected server error: the request may have been carried out. Reconcile."""
