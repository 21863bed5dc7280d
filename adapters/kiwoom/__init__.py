"""The Kiwoom REST adapter: transport, tokens, pacing, typed errors, the broker and a simulator.

- :class:`KiwoomClient`: every TR through one ``requests.Session``, per-api-id pacing, tokens.
- :class:`KiwoomBroker`: the broker port; cancels only what the engine allows; reconciles.
- :mod:`adapters.kiwoom.errors`: what failed, and whether sending again is safe.
- :mod:`adapters.kiwoom.realtime`: type-00 real-time frames to engine events.
- :mod:`adapters.kiwoom.simserver`: a Kiwoom-compatible server over the simulated exchange.

See ``docs/kiwoom.md``.
"""

from adapters.kiwoom.auth import Credentials, TokenManager
from adapters.kiwoom.broker import NOT_RECEIVED, KiwoomBroker, Reconciliation
from adapters.kiwoom.client import KiwoomClient, OpenOrder, OrderAnswer, OrderDetail
from adapters.kiwoom.errors import (
    AnswerTooLarge,
    ApiError,
    AuthError,
    ConfigError,
    ConnectFailed,
    ConnectionLost,
    InputError,
    KiwoomError,
    NotJson,
    OrderRejected,
    Outcome,
    PagingError,
    RateLimited,
    RequestNotSent,
    ServerError,
    ServerFault,
    StaleBook,
    Timeout,
    TokenInvalid,
    TokenUnavailable,
    TransportError,
    UnexpectedFailure,
)
from adapters.kiwoom.pacing import Pacer
from adapters.kiwoom.realtime import RealtimeError, events_from_frame, events_from_values
from adapters.kiwoom.secret import Secret
from adapters.kiwoom.transport import MOCK_URL, REAL_URL, Transport

__all__ = [
    "MOCK_URL",
    "NOT_RECEIVED",
    "REAL_URL",
    "AnswerTooLarge",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConnectFailed",
    "ConnectionLost",
    "Credentials",
    "InputError",
    "KiwoomBroker",
    "KiwoomClient",
    "KiwoomError",
    "NotJson",
    "OpenOrder",
    "OrderAnswer",
    "OrderDetail",
    "OrderRejected",
    "Outcome",
    "Pacer",
    "PagingError",
    "RateLimited",
    "RealtimeError",
    "Reconciliation",
    "RequestNotSent",
    "Secret",
    "ServerError",
    "ServerFault",
    "StaleBook",
    "Timeout",
    "TokenInvalid",
    "TokenManager",
    "TokenUnavailable",
    "Transport",
    "TransportError",
    "UnexpectedFailure",
    "events_from_frame",
    "events_from_values",
]
