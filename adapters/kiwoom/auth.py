"""Tokens: au10001 issues one, au10002 revokes it; there is no refresh grant.

``expires_dt`` is Korea time (UTC+9) whatever the host's time zone; a token is re-issued a
margin ahead of its expiry, and once more when the server says 8005 (the caller sends again).

A token that is already inside the margin when it arrives (a short-lived token, an expiry
already past by this host's clock) is not re-issued on every call: it is the best token there
is, so it is used until ``reissue_interval`` has passed since it was issued (measured on the
monotonic clock) or until the server refuses it with 8005.

Credentials and tokens are held as :class:`~adapters.kiwoom.secret.Secret`: they never appear in
a repr, a log line, an exception message or a traceback's local variables.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from adapters.kiwoom.errors import AuthError, ConfigError, KiwoomError
from adapters.kiwoom.secret import Secret
from adapters.kiwoom.transport import Answer, Transport
from engine.sessions import KST

__all__ = ["Credentials", "Token", "TokenManager", "parse_expires_dt"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

TOKEN_PATH: Final = "/oauth2/token"
REVOKE_PATH: Final = "/oauth2/revoke"
ENV_APPKEY: Final = "KIWOOM_APPKEY"
ENV_SECRETKEY: Final = "KIWOOM_SECRETKEY"


class Credentials:
    """An app key and its secret key, each a :class:`Secret`. The repr shows neither."""

    __slots__ = ("appkey", "secretkey")

    def __init__(self, appkey: Secret | str, secretkey: Secret | str) -> None:
        self.appkey = _key(appkey, f"the app key is missing (pass it or set {ENV_APPKEY})")
        self.secretkey = _key(
            secretkey, f"the secret key is missing (pass it or set {ENV_SECRETKEY})"
        )

    @classmethod
    def resolve(cls, appkey: str | None = None, secretkey: str | None = None) -> Credentials:
        """Take the keys from the arguments, else from ``KIWOOM_APPKEY`` / ``KIWOOM_SECRETKEY``."""
        return cls(
            appkey if appkey is not None else os.environ.get(ENV_APPKEY, ""),
            secretkey if secretkey is not None else os.environ.get(ENV_SECRETKEY, ""),
        )

    def __repr__(self) -> str:
        return "Credentials(appkey=<hidden>, secretkey=<hidden>)"


def _key(value: object, missing: str) -> Secret:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(missing)
    return Secret(text.strip())


class Token:
    """An access token (a :class:`Secret`) and when it expires (timezone-aware)."""

    __slots__ = ("expires_at", "value")

    def __init__(self, value: Secret | str, expires_at: datetime) -> None:
        self.value = Secret.of(value)
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


def _token_of(answer: Answer) -> Token:
    """Read au10001's answer; the token goes straight into a :class:`Secret`.

    Only ``answer`` (whose repr leaves the body out) is a local here, never the body itself.
    """
    expires_at = parse_expires_dt(answer.body.get("expires_dt"))
    value = answer.body.get("token")
    if not isinstance(value, str) or not value:
        raise AuthError("au10001 answered without a token", api_id="au10001")
    return Token(Secret(value), expires_at)


class TokenManager:
    """Own the token of one app key: issue it when needed, refresh it ahead of expiry.

    ``now`` is the wall clock that ``expires_dt`` is compared with (passed in for tests);
    ``refresh_margin`` is how long before ``expires_dt`` a new token is issued. A token that arrives
    already inside the margin is used as the best there is for ``reissue_interval`` seconds
    (``clock``, monotonic) before another is asked for, or until the server refuses it (8005).
    Thread-safe: concurrent callers share one issue.
    """

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials,
        *,
        refresh_margin: timedelta = timedelta(minutes=10),
        reissue_interval: float = 60.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(reissue_interval, bool) or not reissue_interval >= 0:
            raise ConfigError(f"reissue_interval must be >= 0 seconds, not {reissue_interval!r}")
        self._transport = transport
        self._credentials = credentials
        self.refresh_margin = refresh_margin
        self.reissue_interval = float(reissue_interval)
        self._now = now
        self._clock = clock
        self._token: Token | None = None
        # on ``clock``, when the current token came already expiring (else None)
        self._stale_since: float | None = None
        self._lock = threading.Lock()
        self.issued = 0  # how many tokens this manager obtained

    def __repr__(self) -> str:
        state = "none" if self._token is None else repr(self._token)
        return f"TokenManager({self._transport.base_url!r}, token={state})"

    def fingerprint(self) -> str:
        """Return a short digest naming the app key (never the key itself), e.g. for a journal."""
        return hashlib.sha256(self._credentials.appkey.reveal().encode()).hexdigest()[:16]

    @property
    def expires_at(self) -> datetime | None:
        """Return when the current token expires (None before the first issue)."""
        token = self._token
        return None if token is None else token.expires_at

    def token(self) -> Secret:
        """Return the token to send, issuing one when needed.

        A new one is issued when there is none, or when the current one is within
        ``refresh_margin`` of its expiry; but a token that was already that close when it was
        issued is kept until ``reissue_interval`` has passed since (asking again at once would
        only bring the same kind of token, on every call).
        """
        with self._lock:
            token = self._token
            if token is None or (self._expiring(token) and self._may_reissue()):
                token = self._token = self._issue()
            return token.value

    def _expiring(self, token: Token) -> bool:
        return self._now() + self.refresh_margin >= token.expires_at

    def _may_reissue(self) -> bool:
        since = self._stale_since
        return since is None or self._clock() - since >= self.reissue_interval

    def invalidate(self, value: Secret | str) -> None:
        """Forget ``value`` (the server said 8005) so the next :meth:`token` issues a new one."""
        with self._lock:
            if self._token is not None and self._token.value == Secret.of(value):
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
        token = _token_of(answer)
        self.issued += 1
        self._stale_since = None
        if self._expiring(token):
            self._stale_since = self._clock()
            log.warning(
                "au10001 gave a token expiring %s, within %s of this host's clock (%s): using "
                "it, and not asking again for %g s unless the server refuses it",
                token.expires_at.isoformat(),
                self.refresh_margin,
                self._now().isoformat(),
                self.reissue_interval,
            )
        else:
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
