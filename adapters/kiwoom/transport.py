"""HTTP to Kiwoom: one ``requests.Session``, explicit timeouts, and one translation of answers.

:meth:`Transport.post` is the only place where an HTTP answer or a ``requests`` exception
becomes either an :class:`Answer` or one of :mod:`adapters.kiwoom.errors`. It never retries by
itself: whether a request may be sent again is the caller's decision, made from the error's
:class:`~adapters.kiwoom.errors.Outcome`.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import json
import logging
import math
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import requests
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from adapters.kiwoom.errors import (
    AnswerTooLarge,
    AuthError,
    ConfigError,
    ConnectFailed,
    ConnectionLost,
    InputError,
    KiwoomError,
    NotJson,
    OrderRejected,
    RateLimited,
    RequestNotSent,
    ServerError,
    ServerFault,
    Timeout,
    TokenInvalid,
    TransportError,
    UnexpectedFailure,
)
from adapters.kiwoom.pacing import allowed_rate_in
from adapters.kiwoom.secret import Secret

__all__ = [
    "DEFAULT_MAX_ANSWER",
    "MAX_DEPTH",
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
#: The largest answer body read, as received and once decompressed (a Kiwoom page is ~100 KiB).
DEFAULT_MAX_ANSWER: Final = 8 * 1024 * 1024
#: The deepest nesting of lists and objects accepted in an answer (Kiwoom's is 3).
MAX_DEPTH: Final = 32
_CHUNK: Final = 64 * 1024

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
    #: the ``cont-yn`` header as received ("" when absent), for a strict reading of it
    cont_header: str = ""


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
    """POST JSON to one Kiwoom base URL over one pool of connections (reused, kept alive).

    ``timeout`` is ``(connect, read)`` in seconds; the read timeout bounds each wait for a byte.
    ``deadline`` bounds the whole call, connect to the last byte of the body (default: connect +
    read): past it the connection is shut down, even in the middle of a status line or a body a
    server trickles byte by byte, and the call raises :class:`Timeout`. ``max_answer`` bounds the
    body, both as received and once decompressed (default 8 MiB). TLS certificates are always
    verified, redirects are never followed and the transport never retries on its own.
    """

    def __init__(
        self,
        base_url: str = REAL_URL,
        *,
        allow_loopback: bool = False,
        timeout: tuple[float, float] = (3.05, 10.0),
        deadline: float | None = None,
        max_answer: int = DEFAULT_MAX_ANSWER,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.base_url = check_base_url(base_url, allow_loopback=allow_loopback)
        connect, read = timeout
        if not (connect > 0 and read > 0):
            raise ConfigError(f"timeouts must be positive seconds, not {timeout!r}")
        self.timeout = (float(connect), float(read))
        total = connect + read if deadline is None else deadline
        if isinstance(total, bool) or not isinstance(total, int | float) or not total > 0:
            raise ConfigError(f"the deadline must be positive seconds, not {deadline!r}")
        self.deadline = float(total)
        if type(max_answer) is not int or max_answer < 1024:
            raise ConfigError(f"max_answer must be an int of at least 1024 bytes: {max_answer!r}")
        self.max_answer = max_answer
        self.session = requests.Session()
        self.session.verify = True
        self.session.trust_env = False  # no proxy or .netrc credentials from the environment
        self._adapter = _WatchedAdapter(max_retries=0, pool_connections=1, pool_maxsize=4)
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
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
        return f"Transport({self.base_url!r}, timeout={self.timeout!r}, deadline={self.deadline:g})"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def post(
        self,
        path: str,
        api_id: str,
        body: dict[str, Any],
        *,
        token: Secret | str | None = None,
        cont_key: str | None = None,
    ) -> Answer:
        """Send one TR and return its :class:`Answer`, or raise the matching KiwoomError.

        ``cont_key`` (a ``next-key``) asks for the next page of a continued answer. ``body`` may
        hold :class:`Secret` values (au10001's keys): they are revealed only when it is encoded.
        Whatever goes wrong, a :class:`KiwoomError` is raised, never another exception:
        NOT_PROCESSED only when the request certainly did not leave, UNKNOWN otherwise. The
        error keeps no traceback, cause or context from below this call (their frames held the
        token, the keys or an au10001 answer).
        """
        failure: KiwoomError
        try:
            request, secrets = _prepare(
                self.base_url + path, self._headers, api_id, body, token, cont_key
            )
        except KiwoomError as exc:
            failure = _bare(exc)
        except Exception as exc:  # nothing has left yet
            failure = RequestNotSent(
                f"the request cannot be built ({type(exc).__name__}); nothing was sent",
                api_id=api_id,
            )
        else:
            try:
                return self._exchange(api_id, request, secrets)
            except KiwoomError as exc:
                failure = _bare(exc)
            except Exception as exc:  # a bug below: never let it pass as "nothing happened"
                failure = UnexpectedFailure(
                    f"unexpected {type(exc).__name__} after the request may have been sent",
                    api_id=api_id,
                )
        raise failure

    def _exchange(
        self, api_id: str, request: requests.PreparedRequest, secrets: list[Secret]
    ) -> Answer:
        """Send ``request`` under the call's deadline; read, decode and translate its answer.

        ``secrets`` (the token and keys the request carries) are blanked out of any message.
        """
        watch = _Watch(time.monotonic() + self.deadline, api_id)
        bound = _CURRENT.set(watch)
        _WATCHDOG.arm(watch)
        response: requests.Response | None = None
        complete = False
        try:
            try:
                # The adapter, not the session: no cookies, no hooks, no redirect handling (a
                # 3xx made the session's redirect code raise AttributeError), nothing merged.
                response = self._adapter.send(request, stream=True, timeout=self.timeout)
                data = _read_body(response.raw, watch, self.max_answer)
            except KiwoomError:
                raise
            except Exception as exc:
                failure = self._failure(api_id, exc, watch)
            else:
                complete = not watch.fired
                if complete:
                    return self._translate(api_id, response.status_code, response.headers, data)
                failure = self._failure(api_id, None, watch)
            failure.message = _blanked(failure.message, secrets)
            failure.args = (failure.message,)
            raise failure
        finally:
            watch.finish()
            _CURRENT.reset(bound)
            if response is not None:
                if complete:
                    response.raw.release_conn()
                else:  # a body read half-way, or a socket shut down: never reuse it
                    response.close()

    def _failure(self, api_id: str, exc: Exception | None, watch: _Watch) -> TransportError:
        """Return the error for a request that got no complete answer."""
        if not watch.sent:
            what = "the deadline passed" if watch.fired else _short(exc)
            return ConnectFailed(f"not sent: {what}", api_id=api_id)
        if watch.fired:
            return Timeout(
                f"no complete answer within the {self.deadline:g} s deadline (the request was "
                "sent)",
                api_id=api_id,
            )
        if isinstance(exc, requests.ConnectTimeout):
            return ConnectFailed(f"connect timed out: {_short(exc)}", api_id=api_id)
        if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
            return Timeout(
                f"no answer within {self.timeout[1]:g} s (the request was sent)", api_id=api_id
            )
        if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
            return ConnectFailed(f"cannot connect: {_short(exc)}", api_id=api_id)
        if isinstance(exc, requests.ConnectionError | urllib3.exceptions.ProtocolError | OSError):
            return ConnectionLost(f"connection lost after sending: {_short(exc)}", api_id=api_id)
        if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError):
            return TransportError(f"{type(exc).__name__}: {_short(exc)}", api_id=api_id)
        return UnexpectedFailure(
            f"unexpected {type(exc).__name__} after sending: {_short(exc)}", api_id=api_id
        )

    @staticmethod
    def _translate(api_id: str, status: int, headers: Mapping[str, str], data: bytes) -> Answer:
        body = _json_object(data)
        if body is None or "return_code" not in body:
            if status >= 500:
                raise ServerError(f"HTTP {status}", api_id=api_id, http_status=status)
            kind = headers.get("Content-Type", "?").split(";")[0]
            raise NotJson(
                f"HTTP {status} with a body that is not a Kiwoom JSON answer ({kind[:40]}, "
                f"{len(data)} bytes)",
                api_id=api_id,
                http_status=status,
            )
        return_code = body.get("return_code")
        message = str(body.get("return_msg", ""))
        if return_code == 0 and status == 200:
            cont = headers.get("cont-yn", "")
            return Answer(
                api_id,
                body,
                cont.strip().upper() == "Y",
                headers.get("next-key", "").strip(),
                status,
                cont,
            )
        if return_code == 0:  # a success body under an error status: not an answer we trust
            raise ServerError(
                f"HTTP {status} with return_code 0", api_id=api_id, http_status=status
            )
        raise classify(api_id, return_code, message, status)


# -- the pieces of one call ----------------------------------------------------------------------
def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _prepare(
    url: str,
    base_headers: Mapping[str, str],
    api_id: str,
    body: dict[str, Any],
    token: Secret | str | None,
    cont_key: str | None,
) -> tuple[requests.PreparedRequest, list[Secret]]:
    """Build the request, and list the secrets it carries (to blank them out of messages).

    The token and the keys are revealed here only, never kept by the caller. Raises
    :class:`RequestNotSent` for what cannot be sent (nothing has left yet).
    """
    secrets: list[Secret] = []

    def reveal(value: object) -> str:  # json.dumps' hook for what it cannot encode itself
        if isinstance(value, Secret):
            secrets.append(value)
            return value.reveal()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        data = json.dumps(body, ensure_ascii=False, default=reveal).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        reason = f"{type(exc).__name__}: {_short(exc)}"
    else:
        reason = ""
    if reason:
        raise RequestNotSent(
            f"the body cannot be encoded ({reason}); nothing was sent", api_id=api_id
        )
    headers = CaseInsensitiveDict(base_headers)
    headers["api-id"] = api_id
    if cont_key is not None:
        headers["cont-yn"] = "Y"
        headers["next-key"] = cont_key
    if token is not None:
        secrets.append(Secret.of(token))
        headers["authorization"] = "Bearer " + secrets[-1].reveal()
    if not all(_header_safe(v) for v in headers.values()):
        raise RequestNotSent(
            "a header (api-id, next-key or token) is not printable ASCII; nothing was sent",
            api_id=api_id,
        )
    headers["Content-Length"] = str(len(data))
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = url
    request.headers = headers
    request.body = data
    return request, secrets


def _blanked(text: str, secrets: list[Secret]) -> str:
    """Return ``text`` with every secret's value replaced by ``<hidden>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret.reveal(), "<hidden>")
    return text


def _bare(exc: KiwoomError) -> KiwoomError:
    """Return ``exc`` without the traceback, cause and context it picked up below the caller."""
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return exc.with_traceback(None)


def _json_object(data: bytes) -> dict[str, Any] | None:
    """Return ``data`` as a JSON object no deeper than :data:`MAX_DEPTH`, else None."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return None
    if not isinstance(value, dict) or _deeper_than(value, MAX_DEPTH):
        return None
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Return True when ``value`` nests lists/objects more than ``limit`` deep (no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class _Decoder:
    """Decompress one ``Content-Encoding`` (gzip or deflate), never more than asked at a time."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        wbits = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        """Return what ``data`` decodes to, stopping once it is more than ``room`` bytes."""
        try:
            out = self._inflate.decompress(data, room + 1)
        except zlib.error:
            if not (self._first and self.coding == "deflate"):
                raise
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream
            out = self._inflate.decompress(data, room + 1)
        self._first = False
        while self._inflate.unconsumed_tail and len(out) <= room:
            out += self._inflate.decompress(self._inflate.unconsumed_tail, room + 1 - len(out))
        return out

    def finish(self) -> bytes:
        """Return the last bytes; a stream that did not end is a truncated body."""
        tail = self._inflate.flush()
        if not self._inflate.eof:
            raise zlib.error(f"the {self.coding} stream ends early")
        return tail


def _decoder(codings: str, status: int, api_id: str) -> _Decoder | None:
    names = [c.strip().lower() for c in codings.split(",") if c.strip()]
    names = [n for n in names if n != "identity"]
    if not names:
        return None
    if len(names) == 1 and names[0] in ("gzip", "x-gzip", "deflate"):
        return _Decoder(names[0])
    raise NotJson(
        f"HTTP {status} with Content-Encoding {codings[:40]!r}, which this client does not decode",
        api_id=api_id,
        http_status=status,
    )


def _read_body(raw: Any, watch: _Watch, limit: int) -> bytes:
    """Read the body in chunks, decoding it, within the deadline and ``limit`` bytes.

    ``raw`` is urllib3's response, read undecoded: the decompression here is bounded, so a
    compressed bomb is stopped at ``limit`` bytes instead of being inflated whole.
    """
    status: int = raw.status
    api_id = watch.api_id
    decoder = _decoder(raw.headers.get("Content-Encoding", ""), status, api_id)
    declared = raw.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise AnswerTooLarge(
            f"HTTP {status} announced {int(declared)} bytes; the limit is {limit}",
            api_id=api_id,
            http_status=status,
        )
    out = bytearray()
    received = 0
    for chunk in raw.stream(_CHUNK, decode_content=False):
        received += len(chunk)
        part = chunk if decoder is None else decoder.feed(chunk, limit - len(out))
        out += part
        if received > limit or len(out) > limit:
            raise AnswerTooLarge(
                f"HTTP {status} answer larger than {limit} bytes (abandoned)",
                api_id=api_id,
                http_status=status,
            )
        if watch.fired or time.monotonic() >= watch.deadline:
            watch.fire()
            return bytes(out)  # the caller sees watch.fired: a Timeout
    if decoder is not None:
        try:
            out += decoder.finish()
        except zlib.error:
            raise NotJson(
                f"HTTP {status} with a truncated {decoder.coding} body", api_id=api_id
            ) from None
        if len(out) > limit:
            raise AnswerTooLarge(f"HTTP {status} answer larger than {limit} bytes", api_id=api_id)
    return bytes(out)


# -- the whole-call deadline ---------------------------------------------------------------------
class _Watch:
    """One call's deadline, and the connection it runs on (bound by the connection itself).

    Firing shuts the connection's socket down, which wakes a read blocked in ``recv``. A
    connection returned to the pool and taken by another call is bound to that call's watch, so
    a late firing never touches it.
    """

    __slots__ = ("_conn", "api_id", "deadline", "done", "fired", "sent")

    def __init__(self, deadline: float, api_id: str = "") -> None:
        self.deadline = deadline
        self.api_id = api_id
        self.done = False
        self.fired = False
        self.sent = False
        self._conn: Any = None

    def bind(self, conn: Any, *, sending: bool) -> None:
        """Note ``conn`` as this call's connection (``sending``: its request is about to leave)."""
        with _WATCH_LOCK:
            conn._kiwoom_watch = self
            self._conn = conn
            self.sent = self.sent or sending
            fired = self.fired
        if fired:
            _shut(conn)

    def fire(self) -> None:
        """The deadline passed: shut the connection down, if it is still this call's."""
        with _WATCH_LOCK:
            if self.done:
                return
            self.fired = True
            conn = self._conn
            if conn is None or getattr(conn, "_kiwoom_watch", None) is not self:
                return
            _shut(conn)

    def finish(self) -> None:
        """The call is over: firing from now on does nothing."""
        with _WATCH_LOCK:
            self.done = True
            self._conn = None


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


_WATCH_LOCK: Final = threading.Lock()
_CURRENT: ContextVar[_Watch | None] = ContextVar("kiwoom_call_watch", default=None)


class _Watchdog:
    """One daemon thread firing the watches whose deadline passed (started on first use).

    Arming never wakes the thread unless the new deadline comes before the thread's own
    wake-up: a notify at every call would have the thread ask for the GIL just as the request
    is being sent, delaying it by a scheduler's time slice on a busy machine (enough to push two
    paced calls into one rate-limit window). Idle, the thread sleeps the shortest deadline span
    it has seen, so a watch armed meanwhile is never due before the thread looks again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._idle = 1.0  # the shortest deadline span seen
        self._wake_at = -math.inf  # -inf: awake, it will look at the heap before sleeping
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch) -> None:
        """Fire ``watch`` at its deadline unless it finished before."""
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (watch.deadline, self._seq, watch))
            self._idle = max(0.001, min(self._idle, watch.deadline - time.monotonic()))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="kiwoom-deadline", daemon=True
                )
                self._thread.start()
            elif watch.deadline < self._wake_at:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._wake_at = -math.inf
                while True:
                    while self._heap and self._heap[0][2].done:
                        heapq.heappop(self._heap)
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        due = heapq.heappop(self._heap)[2]
                        break
                    self._wake_at = self._heap[0][0] if self._heap else now + self._idle
                    self._cond.wait(self._wake_at - now)
                    self._wake_at = -math.inf
            due.fire()


_WATCHDOG: Final = _Watchdog()


def _bind_current(conn: Any, *, sending: bool) -> None:
    watch = _CURRENT.get()
    if watch is not None:
        watch.bind(conn, sending=sending)


class _Watched:
    """Mixed into urllib3's connections: bind to the running call's watch, note the sending."""

    sock: Any
    _kiwoom_watch: _Watch | None = None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _bind_current(self, sending=False)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is None:
            self.connect()  # a connect failure happens before anything was sent
        _bind_current(self, sending=True)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _bind_current(self, sending=True)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    """A plain connection that the call's deadline can shut down."""


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    """A TLS connection that the call's deadline can shut down."""


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose pools make watched connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Return True when the connection failed before the request could be sent."""
    reason: object = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    name = type(reason).__name__
    return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


def _short(exc: BaseException | None) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
