"""HTTP to Kiwoom: one ``requests.Session``, explicit timeouts, and one translation of answers.

:meth:`Transport.post` is the only place where an HTTP answer or a ``requests`` exception
becomes either an :class:`Answer` or one of :mod:`adapters.kiwoom.errors`. It never retries by
itself: whether a request may be sent again is the caller's decision, made from the error's
:class:`~adapters.kiwoom.errors.Outcome`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from adapters.kiwoom.errors import (
    AuthError,
    ConfigError,
    ConnectFailed,
    ConnectionLost,
    InputError,
    KiwoomError,
    NotJson,
    OrderRejected,
    RateLimited,
    ServerError,
    ServerFault,
    Timeout,
    TokenInvalid,
    TransportError,
)
from adapters.kiwoom.pacing import allowed_rate_in

__all__ = [
    "MOCK_URL",
    "REAL_URL",
    "USER_AGENT",
    "Answer",
    "Transport",
    "classify",
    "embedded_code",
    "is_loopback",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

REAL_URL: Final = "https://api.kiwoom.com"
MOCK_URL: Final = "https://mockapi.kiwoom.com"
_KIWOOM_HOSTS: Final = {"api.kiwoom.com": REAL_URL, "mockapi.kiwoom.com": MOCK_URL}
USER_AGENT: Final = "kiwoom-order-engine/0.1 (+python-requests)"
JSON_CONTENT_TYPE: Final = "application/json;charset=UTF-8"

# "[1700:허용된 요청 ...]", "[8005:Token이 ...]", "[2000](RC4033:...)", "(800033:...)"
_BRACKET_CODE = re.compile(r"\[(\d{4})[:\]]")
_RC_CODE = re.compile(r"\((RC\d{4}|\d{6})[:)]")


@attrs.frozen
class Answer:
    """A successful answer (``return_code == 0``): the JSON ``body`` and continuation headers.

    The repr leaves the body out: an au10001 answer holds a token.
    """

    api_id: str
    body: dict[str, Any] = attrs.field(repr=False)
    cont_yn: bool = False
    next_key: str = ""
    http_status: int = 200


def embedded_code(message: str) -> str:
    """Return the specific code inside a ``return_msg`` (``RC4033``, ``1700``, ``8005``) or ""."""
    rc = _RC_CODE.search(message)
    if rc is not None:
        return rc.group(1)
    codes = _BRACKET_CODE.findall(message)
    # "[2000](RC...)" was handled above; otherwise the first 4-digit code is the specific one
    return codes[0] if codes else ""


def classify(
    api_id: str, return_code: object, message: str, http_status: int | None
) -> KiwoomError:
    """Return the error for an answer with ``return_code != 0`` (docs/kiwoom.md, "Answer codes").

    The specific code is the one embedded in ``return_msg``; a top-level ``return_code`` that is
    itself such a code (``8005``, ``1700``) counts when the message embeds none. Under HTTP 5xx
    only what certainly stopped the request before processing (a throttle, a refused token or
    key) is believed; any other answer is a :class:`ServerError` with an unknown outcome.
    """
    rc = return_code if type(return_code) is int else None
    code = embedded_code(message) or (str(rc) if rc is not None and rc >= 1000 else "")
    fields: dict[str, Any] = {
        "api_id": api_id,
        "return_code": rc,
        "code": code,
        "http_status": http_status,
    }
    if code in ("1700", "1701", "1702") or http_status == 429:
        return RateLimited(message, allowed_rate=allowed_rate_in(message), **fields)
    if code == "8005":
        return TokenInvalid(message, **fields)
    if rc == 3 or (len(code) == 4 and code.startswith("8")):
        return AuthError(message, **fields)
    if http_status is not None and http_status >= 500:
        return ServerError(f"HTTP {http_status}: {message}", **fields)
    if code.startswith("RC") or (len(code) == 6 and code.isdigit()) or rc == 20:
        return OrderRejected(message, **fields)
    if code == "1999":
        return ServerFault(message, **fields)
    if rc in (2, 5) or code.startswith(("15", "16", "19")):
        return InputError(message, **fields)
    # an answer we cannot place: the request may have been carried out
    return ServerFault(message, **fields)


def is_loopback(host: str) -> bool:
    """Return True when ``host`` names the loopback interface (``localhost``, 127.x, ``::1``)."""
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_loopback: bool = False) -> str:
    """Return ``base_url`` without a trailing slash, or raise :class:`ConfigError`.

    Only Kiwoom's real and mock hosts (over https) are accepted, and a loopback URL (a local
    simulator) when ``allow_loopback`` is set: tokens are never sent anywhere else.
    """
    if not isinstance(base_url, str):
        raise ConfigError(f"a base URL is a string, not {type(base_url).__name__}")
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("a base URL carries no credentials, query or fragment")
    if parts.path not in ("", "/"):
        raise ConfigError(f"a base URL has no path: {parts.path!r}")
    if host in _KIWOOM_HOSTS:
        if parts.scheme != "https" or parts.port not in (None, 443):
            raise ConfigError(f"Kiwoom's {host} is reached over https on port 443 only")
        return _KIWOOM_HOSTS[host]
    if is_loopback(host):
        if not allow_loopback:
            raise ConfigError(
                f"{base_url!r} is a loopback URL (a local simulator): pass allow_loopback=True"
            )
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"a base URL is http or https, not {parts.scheme!r}")
        return f"{parts.scheme}://{parts.netloc}"
    raise ConfigError(
        f"refusing host {host or base_url!r}: only {REAL_URL}, {MOCK_URL} or a loopback "
        "simulator (allow_loopback=True) receive tokens"
    )


class Transport:
    """POST JSON to one Kiwoom base URL over one ``requests.Session`` (connections reused).

    ``timeout`` is ``(connect, read)`` in seconds. TLS certificates are always verified,
    redirects are never followed and the transport never retries on its own.
    """

    def __init__(
        self,
        base_url: str = REAL_URL,
        *,
        allow_loopback: bool = False,
        timeout: tuple[float, float] = (3.05, 10.0),
        user_agent: str = USER_AGENT,
    ) -> None:
        self.base_url = check_base_url(base_url, allow_loopback=allow_loopback)
        connect, read = timeout
        if not (connect > 0 and read > 0):
            raise ConfigError(f"timeouts must be positive seconds, not {timeout!r}")
        self.timeout = (float(connect), float(read))
        self.session = requests.Session()
        self.session.verify = True
        self.session.trust_env = False  # no proxy or .netrc credentials from the environment
        adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=4)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._headers = {
            "User-Agent": user_agent,
            "Content-Type": JSON_CONTENT_TYPE,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "Connection": "keep-alive",
        }
        self.session.headers.clear()
        self.session.headers.update(self._headers)

    @property
    def is_mock(self) -> bool:
        """Return True when this transport talks to Kiwoom's mock (모의투자) server."""
        return self.base_url == MOCK_URL

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def post(
        self,
        path: str,
        api_id: str,
        body: dict[str, Any],
        *,
        token: str | None = None,
        cont_key: str | None = None,
    ) -> Answer:
        """Send one TR and return its :class:`Answer`, or raise the matching KiwoomError.

        ``cont_key`` (a ``next-key``) asks for the next page of a continued answer.
        """
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = self.base_url + path
        headers = CaseInsensitiveDict(self._headers)
        headers["api-id"] = api_id
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if cont_key is not None:
            headers["cont-yn"] = "Y"
            headers["next-key"] = cont_key
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers["Content-Length"] = str(len(data))
        request.headers = headers
        request.body = data
        try:
            # Sent as prepared: no cookies, no environment settings, nothing merged per call.
            response = self.session.send(request, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            failure = self._failure(api_id, exc)
        else:
            return self._translate(api_id, response)
        # Raised outside the handler: the requests exception (whose request holds the token and,
        # for au10001, the keys) is not kept as the error's __context__.
        raise failure

    def _failure(self, api_id: str, exc: requests.RequestException) -> TransportError:
        """Return the error for a request that got no HTTP answer."""
        if isinstance(exc, requests.ConnectTimeout):
            return ConnectFailed(f"connect timed out: {_short(exc)}", api_id=api_id)
        if isinstance(exc, requests.ReadTimeout):
            return Timeout(
                f"no answer within {self.timeout[1]:g} s (the request was sent)", api_id=api_id
            )
        if isinstance(exc, requests.ConnectionError):
            if _never_connected(exc):
                return ConnectFailed(f"cannot connect: {_short(exc)}", api_id=api_id)
            return ConnectionLost(f"connection lost after sending: {_short(exc)}", api_id=api_id)
        return TransportError(f"{type(exc).__name__}: {_short(exc)}", api_id=api_id)

    @staticmethod
    def _translate(api_id: str, response: requests.Response) -> Answer:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "return_code" not in body:
            if status >= 500:
                raise ServerError(f"HTTP {status}", api_id=api_id, http_status=status)
            kind = response.headers.get("Content-Type", "?").split(";")[0]
            raise NotJson(
                f"HTTP {status} with a body that is not a Kiwoom JSON answer ({kind}, "
                f"{len(response.content)} bytes)",
                api_id=api_id,
                http_status=status,
            )
        return_code = body.get("return_code")
        message = str(body.get("return_msg", ""))
        if return_code == 0 and status == 200:
            headers = response.headers
            return Answer(
                api_id,
                body,
                headers.get("cont-yn", "N").strip().upper() == "Y",
                headers.get("next-key", "").strip(),
                status,
            )
        if return_code == 0:  # a success body under an error status: not an answer we trust
            raise ServerError(
                f"HTTP {status} with return_code 0", api_id=api_id, http_status=status
            )
        raise classify(api_id, return_code, message, status)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Return True when the connection failed before the request could be sent."""
    reason: object = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    name = type(reason).__name__
    return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
