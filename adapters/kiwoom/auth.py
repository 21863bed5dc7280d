"""Tokens: au10001 issues one, au10002 revokes it; there is no refresh grant.

``expires_dt`` is Korea time (UTC+9) whatever the host's time zone; a token is re-issued a
margin ahead of its expiry, and once more when the server says 8005 (the caller sends again).
Credentials and tokens never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from adapters.kiwoom.errors import AuthError, ConfigError, KiwoomError
from adapters.kiwoom.transport import Transport
from engine.sessions import KST

__all__ = ["Credentials", "Token", "TokenManager", "parse_expires_dt"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

TOKEN_PATH: Final = "/oauth2/token"
REVOKE_PATH: Final = "/oauth2/revoke"
ENV_APPKEY: Final = "KIWOOM_APPKEY"
ENV_SECRETKEY: Final = "KIWOOM_SECRETKEY"


class Credentials:
    """An app key and its secret key. The repr shows neither."""

    __slots__ = ("appkey", "secretkey")

    def __init__(self, appkey: str, secretkey: str) -> None:
        if not isinstance(appkey, str) or not appkey.strip():
            raise ConfigError(f"the app key is missing (pass it or set {ENV_APPKEY})")
        if not isinstance(secretkey, str) or not secretkey.strip():
            raise ConfigError(f"the secret key is missing (pass it or set {ENV_SECRETKEY})")
        self.appkey = appkey.strip()
        self.secretkey = secretkey.strip()

    @classmethod
    def resolve(cls, appkey: str | None = None, secretkey: str | None = None) -> Credentials:
        """Take the keys from the arguments, else from ``KIWOOM_APPKEY`` / ``KIWOOM_SECRETKEY``."""
        return cls(
            appkey if appkey is not None else os.environ.get(ENV_APPKEY, ""),
            secretkey if secretkey is not None else os.environ.get(ENV_SECRETKEY, ""),
        )

    def __repr__(self) -> str:
        return "Credentials(appkey=<hidden>, secretkey=<hidden>)"


class Token:
    """An access token and when it expires (timezone-aware). The repr hides the value."""

    __slots__ = ("expires_at", "value")

    def __init__(self, value: str, expires_at: datetime) -> None:
        self.value = value
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"Token(<hidden>, expires_at={self.expires_at.isoformat()})"


def parse_expires_dt(text: object) -> datetime:
    """Read au10001's ``expires_dt`` (``YYYYMMDDHHMMSS``, Korea time) as an aware datetime."""
    if not isinstance(text, str) or len(text) != 14 or not text.isdigit():
        raise AuthError(f"expires_dt must be YYYYMMDDHHMMSS, not {text!r}", api_id="au10001")
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError as exc:
        raise AuthError(f"expires_dt is not a date: {text!r}", api_id="au10001") from exc


class TokenManager:
    """Own the token of one app key: issue it when needed, refresh it ahead of expiry.

    ``now`` is the wall clock (passed in for tests); ``refresh_margin`` is how long before
    ``expires_dt`` a new token is issued. Thread-safe: concurrent callers share one issue.
    """

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials,
        *,
        refresh_margin: timedelta = timedelta(minutes=10),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self.refresh_margin = refresh_margin
        self._now = now
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.issued = 0  # how many tokens this manager obtained

    def __repr__(self) -> str:
        state = "none" if self._token is None else repr(self._token)
        return f"TokenManager({self._transport.base_url!r}, token={state})"

    def fingerprint(self) -> str:
        """Return a short digest naming the app key (never the key itself), e.g. for a journal."""
        return hashlib.sha256(self._credentials.appkey.encode()).hexdigest()[:16]

    @property
    def expires_at(self) -> datetime | None:
        """Return when the current token expires (None before the first issue)."""
        token = self._token
        return None if token is None else token.expires_at

    def token(self) -> str:
        """Return a token valid for at least ``refresh_margin``, issuing one when needed."""
        with self._lock:
            token = self._token
            if token is None or self._now() + self.refresh_margin >= token.expires_at:
                token = self._token = self._issue()
            return token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the server said 8005) so the next :meth:`token` issues a new one."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _issue(self) -> Token:
        answer = self._transport.post(
            TOKEN_PATH,
            "au10001",
            {
                "grant_type": "client_credentials",
                "appkey": self._credentials.appkey,
                "secretkey": self._credentials.secretkey,
            },
        )
        value = answer.body.get("token")
        if not isinstance(value, str) or not value:
            raise AuthError("au10001 answered without a token", api_id="au10001")
        token = Token(value, parse_expires_dt(answer.body.get("expires_dt")))
        self.issued += 1
        log.debug("issued a token expiring %s", token.expires_at.isoformat())
        return token

    def revoke(self) -> bool:
        """Revoke the current token (au10002); return True when one was revoked.

        A failure is logged and swallowed: revoking is a courtesy at close time.
        """
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return False
        try:
            self._transport.post(
                REVOKE_PATH,
                "au10002",
                {
                    "appkey": self._credentials.appkey,
                    "secretkey": self._credentials.secretkey,
                    "token": token.value,
                },
            )
        except KiwoomError as exc:
            log.warning("au10002 failed: %s", exc)
            return False
        log.debug("revoked the token")
        return True
