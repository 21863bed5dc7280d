"""A Kiwoom-compatible REST server around the simulated exchange, for tests, demos and benchmarks.

:class:`SimServer` speaks Kiwoom's wire protocol (``docs/kiwoom.md``) (tokens, the order TRs
kt10000-kt10003, the status lists ka10075 and kt00007 with header continuation, the 1700 rate limit,
the error envelopes) over real HTTP/1.1 with keep-alive, on loopback by default. The orders go to a
:class:`~adapters.sim.exchange.SimExchange` whose simulated clock follows the wall clock
(milliseconds since the server was made). Its order server answers every request at once (numbered,
or rejected); the venue acts on it ``venue_ms`` later (0 by default), so with a venue delay a cancel
shows as 접수 in kt00007 until the venue has done it, and fills can beat it. Symbols that have been
ordered get a seeded random walk of bars, one per ``step_ms`` of wall time, fed lazily at the start
of each request, so fills happen along a real price path and race cancels for real;
:meth:`SimServer.trade` prints a trade on demand. Faults are scripted with :meth:`SimServer.inject`.

A Korea-time midnight starts a fresh exchange for the new day: the old day's open orders expire,
order numbers restart at ``0000001``, the old day stays readable through kt00007 (``ord_dt``) and
its numbers are unknown to the order TRs (RC4032).

Secrets (app keys, secret keys, tokens, the ``Authorization`` header) never reach a log record,
a ``repr`` or :attr:`SimServer.log`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from datetime import time as clock_time
from email.message import Message
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from types import TracebackType
from typing import Any, Final

import attrs

from adapters.broker import Ticket, TicketStatus
from adapters.sim.exchange import ORDER_TYPES, RC_UNKNOWN_ORDER, SimError, SimExchange, TruthOrder
from adapters.sim.latency import Delay, Latency
from adapters.sim.market import Bar, random_walk
from engine import SessionCalendar, Side
from engine import events as ev
from engine.sessions import KST, KoreaSessions

__all__ = ["KRX_SESSIONS", "MOCK_SESSIONS", "Fault", "FaultKind", "ServerCall", "SimServer"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: The session calendar of ``sessions=True``: KRX hours (08:30-15:30 with the opening and closing
#: calls, 15:40-18:00 after hours) and NXT hours, in Korea time, with no guard window (a guard is
#: the client's business, not the venue's).
KRX_SESSIONS: Final = KoreaSessions(guard=timedelta(0))
#: Kiwoom's mock server (KRX only, 09:00-15:30), for ``sessions=MOCK_SESSIONS``.
MOCK_SESSIONS: Final = KoreaSessions.mock(guard=timedelta(0))

_TOKEN_PATHS: Final = {"/oauth2/token": "au10001", "/oauth2/revoke": "au10002"}
_TR_PATHS: Final = {
    "/api/dostk/ordr": frozenset({"kt10000", "kt10001", "kt10002", "kt10003"}),
    "/api/dostk/acnt": frozenset({"ka10075", "kt00007"}),
}
_KNOWN_TRS: Final = frozenset().union(*_TR_PATHS.values())
_API_ID: Final = re.compile(r"[A-Za-z0-9_]{1,20}")
_QTY: Final = re.compile(r"[0-9]{1,12}")
_ORD_NO: Final = re.compile(r"[0-9]{7}")
_DATE: Final = re.compile(r"[0-9]{8}")
_VENUES: Final = ("KRX", "NXT", "SOR")
_NONE: Final = "0000000"
_MAX_BODY: Final = 1 << 20
#: At most this many bar steps are fed per request: a long idle period jumps instead.
_MAX_CATCH_UP: Final = 25

_OK: Final = "정상적으로 처리되었습니다"
_QUERY_OK: Final = "조회가 완료되었습니다"
_AUTH_FAILED: Final = "인증에 실패했습니다"
_TOKEN_INVALID: Final = f"{_AUTH_FAILED}[8005:Token이 유효하지 않습니다]"
_UNEXPECTED: Final = "[1999:예기치 못한 에러가 발생했습니다]"
_TOO_MANY: Final = "허용된 요청 개수를 초과하였습니다"
_TRDE_NAMES: Final = {
    "0": "보통",
    "3": "시장가",
    "10": "보통(IOC)",
    "13": "시장가(IOC)",
    "20": "보통(FOK)",
    "23": "시장가(FOK)",
}
_TRDE_CODES: Final = {kind: code for code, kind in ORDER_TYPES.items()}
_STEX: Final = {"KRX": ("1", "KRX", "N"), "NXT": ("2", "NXT", "N"), "SOR": ("0", "SOR", "Y")}
_FIREWALL_PAGE: Final = (
    b"<html><head><title>400 Request Blocked</title></head>"
    b"<body><h1>400 Request Blocked</h1></body></html>"
)
_ERROR_PAGE: Final = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>500 Internal Server Error</h1></body></html>"
)
_JSON: Final = "application/json;charset=UTF-8"
_HTML: Final = "text/html; charset=UTF-8"


def _korea_now() -> datetime:
    return datetime.now(KST)


class FaultKind(Enum):
    """A scripted misbehaviour of the server; :attr:`processed` says if the order server acted."""

    DELAY = "delay"  # process, then wait ``delay`` seconds before answering
    CLOSE_BEFORE = "close_before"  # close the connection without processing or answering
    CLOSE_AFTER = "close_after"  # process, then close without answering
    HTTP_500 = "http_500"  # process, answer 500 with an HTML body
    FIREWALL_400 = "firewall_400"  # do not process; an HTML "400 Request Blocked" page
    MALFORMED_JSON = "malformed_json"  # process; answer 200 with a truncated JSON body
    HTTP_429 = "http_429"  # do not process; the 1700 answer
    SERVER_ERROR_1999 = "server_error_1999"  # process; answer 200 with return_code 1 [1999]

    @property
    def processed(self) -> bool:
        """Return True when the request really reaches the order server under this fault."""
        return self not in (FaultKind.CLOSE_BEFORE, FaultKind.FIREWALL_400, FaultKind.HTTP_429)


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, not {value!r}")


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive int, not {value!r}")


@attrs.frozen
class Fault:
    """Misbehave ``times`` times on the next requests of ``api_id`` (None: any request).

    ``delay`` (seconds) is used by :attr:`FaultKind.DELAY` only.
    """

    kind: FaultKind = attrs.field(validator=attrs.validators.instance_of(FaultKind))
    api_id: str | None = "kt10003"
    delay: float = attrs.field(default=1.0, validator=_non_negative)
    times: int = attrs.field(default=1, validator=_positive_int)


@attrs.frozen
class ServerCall:
    """One request the server received, as it was answered.

    ``body`` is the parsed JSON body of a TR (empty for the token endpoints, whose bodies hold
    secrets, and for bodies that are not a JSON object). ``http_status`` and ``return_code`` are
    what the client was sent (0 and None when the connection was closed without an answer).
    ``outcome`` says what the server did: ``ok``, ``rejected`` (return_code 20), ``input-error``,
    ``auth-error``, ``throttled``, ``not-found``, ``error`` (1999) or ``blocked`` (a fault that
    stopped the request before processing). ``fault`` is the injected fault it met, if any.
    """

    api_id: str
    body: dict[str, Any]
    http_status: int
    return_code: int | None
    outcome: str
    fault: FaultKind | None = None

    @property
    def processed(self) -> bool:
        """Return True when the order server acted on the request (``ok`` or ``rejected``).

        Throttled, blocked, unauthenticated and malformed requests changed nothing.
        """
        return self.outcome in ("ok", "rejected")


@attrs.define(slots=True)
class _Reply:
    """An answer being prepared (internal)."""

    status: int
    api_id: str
    outcome: str
    payload: dict[str, Any] | None = None
    raw: bytes = b""
    content_type: str = _JSON
    cont_yn: str = "N"
    next_key: str = ""
    answer: bool = True  # False: close the connection without answering
    delay: float = 0.0

    @property
    def return_code(self) -> int | None:
        if self.payload is None or not self.answer:
            return None
        code = self.payload.get("return_code")
        return code if type(code) is int else None

    def body(self) -> bytes:
        if self.payload is None:
            return self.raw
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


def _reply(
    api_id: str, payload: dict[str, Any], outcome: str | None = None, status: int = 200
) -> _Reply:
    if outcome is None:
        code = payload.get("return_code")
        outcome = {0: "ok", 2: "input-error", 3: "auth-error", 20: "rejected"}.get(
            code if type(code) is int else -1, "error"
        )
    return _Reply(status, api_id, outcome, payload)


class _BadInput(Exception):
    """A request body field that is missing (1511) or malformed (1517)."""

    def __init__(self, code: str, field: str) -> None:
        super().__init__(code, field)
        self.code = code
        self.field = field

    def payload(self) -> dict[str, Any]:
        text = (
            "필수 입력 값에 값이 존재하지 않습니다"
            if self.code == "1511"
            else ("입력 값 형식이 올바르지 않습니다")
        )
        return {"return_code": 2, "return_msg": f"[{self.code}:{text}({self.field})]"}


def _api_error(code: str, text: str) -> dict[str, Any]:
    return {"return_code": 2, "return_msg": f"[{code}:{text}]"}


def _rc(code: str, message: str) -> dict[str, Any]:
    return {"return_code": 20, "return_msg": f"[2000]({code}:{message})"}


def _field(body: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """Return the string value of ``name``; "" when absent and optional."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _BadInput("1511", name)
        return ""
    if not isinstance(value, str):
        raise _BadInput("1517", name)
    return value


def _quantity(body: Mapping[str, Any], name: str, *, all_allowed: bool) -> int:
    """Return a 1-12 ASCII digit quantity; 0 (all) only where ``all_allowed``."""
    text = _field(body, name)
    if not _QTY.fullmatch(text):
        raise _BadInput("1517", name)
    qty = int(text)
    if qty == 0 and not all_allowed:
        raise _BadInput("1517", name)
    return qty


def _plain_code(text: str) -> bool:
    return len(text) == 6 and text.isascii() and text.isalnum()


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], **kw: bool) -> str:
    value = _field(body, name, **kw)
    if value and value not in allowed:
        raise _BadInput("1517", name)
    return value


def _q(n: int) -> str:
    return f"{n:012d}"


def _hhmmss(ts: datetime | None) -> str:
    return ts.astimezone(KST).strftime("%H%M%S") if ts is not None else "000000"


class _CancelRow:
    """A cancel order number of the day, for kt00007."""

    __slots__ = ("done", "ord_no", "orig_ord_no", "qty", "status", "tm")

    def __init__(self, ord_no: str, orig_ord_no: str, qty: int, tm: str) -> None:
        self.ord_no = ord_no
        self.orig_ord_no = orig_ord_no
        self.qty = qty  # requested, or for "all" the shares open when the order server took it
        self.done = 0  # shares the venue really cancelled
        self.status = "접수"
        self.tm = tm


class _Day:
    """One Korea-time day: its exchange and what the status lists need beyond the truth."""

    def __init__(self, exchange: SimExchange, origin_ms: int, end_ms: int) -> None:
        self.exchange = exchange
        self.date = exchange.start.astimezone(KST).strftime("%Y%m%d")
        self.origin_ms = origin_ms  # server ms at the exchange's ms 0
        self.end_ms = end_ms  # server ms of the next Korea-time midnight
        self.times: dict[str, str] = {}
        self.last_fill: dict[str, int] = {}
        self.cancels: dict[str, _CancelRow] = {}
        exchange.sink = self.on_event

    def on_event(self, event: ev.Event) -> None:
        """Record what the exchange delivers (times, last fill prices, cancel rows)."""
        if isinstance(event, ev.OrderAccepted | ev.OrderAmended):
            self.times.setdefault(event.ord_no, _hhmmss(event.ts))
        elif isinstance(event, ev.OrderFilled):
            self.last_fill[event.ord_no] = event.price
        elif isinstance(event, ev.CancelAccepted):
            self.cancels[event.ord_no] = _CancelRow(
                event.ord_no, event.orig_ord_no, event.qty, _hhmmss(event.ts)
            )
        elif isinstance(event, ev.CancelConfirmed):
            row = self.cancels.get(event.ord_no)
            if row is not None:
                row.done = event.qty
                row.status = "확인"
        elif isinstance(event, ev.CancelRejected) and event.ord_no:
            row = self.cancels.get(event.ord_no)
            if row is not None:
                row.status = "거부"

    def root(self, order: TruthOrder) -> str:
        """Return the first order number of ``order``'s modify chain (모주문번호)."""
        orders = self.exchange.orders
        while order.origin is not None and order.origin in orders:
            order = orders[order.origin]
        return order.ord_no


class _Walk:
    """The seeded random walk of one symbol and the server ms its next bar is due."""

    __slots__ = ("bars", "next_due")

    def __init__(self, bars: Iterator[list[Bar]]) -> None:
        self.bars = bars
        self.next_due = 0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: SimServer) -> None:
        self.sim = sim
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("a connection ended with an error")


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30.0  # an idle keep-alive connection is dropped after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.sim._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, add=False)

    def do_POST(self) -> None:
        self.server.sim._handle(self)

    def do_GET(self) -> None:
        self.server.sim._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http: %s", format % args)


class SimServer:
    """A Kiwoom-compatible REST server on a :class:`SimExchange` (see the module docstring).

    ``rate`` is the calls per second allowed per api-id (None: unlimited; the token endpoints are
    never limited); ``sessions`` True enforces :data:`KRX_SESSIONS` in Korea time (or pass any
    :class:`engine.SessionCalendar`); ``page_size`` rows per status-list page; ``market`` False
    feeds no bars (only :meth:`trade` fills); ``venue_ms`` delays the venue's part of every request
    (a resting order, a cancel taking shares) behind the order server's answer; ``clock`` (seconds,
    monotonic) drives the simulated clock and the rate limit, ``now`` (an aware datetime) gives the
    wall time of the start and of token expiry. ``credentials`` (appkey -> secretkey), when given,
    is checked at token issue; by default any non-empty appkey and secretkey are accepted.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        rate: int | None = 5,
        sessions: bool | SessionCalendar = False,
        page_size: int = 100,
        token_ttl: timedelta = timedelta(hours=24),
        market: bool = True,
        step_ms: int = 200,
        venue_ms: int = 0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _korea_now,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        if type(seed) is not int:
            raise ValueError(f"seed must be an int, not {seed!r}")
        if rate is not None and (type(rate) is not int or rate < 1):
            raise ValueError(f"rate must be a positive int or None, not {rate!r}")
        if type(page_size) is not int or page_size < 1:
            raise ValueError(f"page_size must be a positive int, not {page_size!r}")
        if type(step_ms) is not int or step_ms < 1:
            raise ValueError(f"step_ms must be a positive int of ms, not {step_ms!r}")
        if type(venue_ms) is not int or not 0 <= venue_ms <= 60_000:
            raise ValueError(f"venue_ms must be an int of 0 to 60,000 ms, not {venue_ms!r}")
        if not isinstance(token_ttl, timedelta) or token_ttl <= timedelta(0):
            raise ValueError(f"token_ttl must be a positive timedelta, not {token_ttl!r}")
        self.host = host
        self._port = port
        self.seed = seed
        self.rate = rate
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.market = market
        self.step_ms = step_ms
        self.venue_ms = venue_ms
        self._clock = clock
        self._now = now
        self._credentials = dict(credentials) if credentials is not None else None
        if sessions is True:
            self.sessions: SessionCalendar | None = KRX_SESSIONS
        elif sessions is False or sessions is None:
            self.sessions = None
        else:
            self.sessions = sessions
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.log: list[ServerCall] = []
        self.throttled = 0
        self._tokens: dict[str, datetime] = {}
        self._rates: dict[str, int | None] = {}
        self._windows: dict[str, deque[float]] = {}
        self._faults: list[list[Any]] = []  # [Fault, times left]
        self._walks: dict[str, _Walk] = {}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0  # requests being handled (a delayed answer counts until it is written)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        started = now()
        if not isinstance(started, datetime) or started.utcoffset() is None:
            raise ValueError(f"now() must return an aware datetime, not {started!r}")
        self.started_at = started
        self._clock0 = clock()
        self._last_ms = 0
        self._days: dict[str, _Day] = {}
        self._day = self._open_day(0, first=True)

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> SimServer:
        """Bind the socket and serve in a daemon thread; return self."""
        if self._httpd is not None:
            raise RuntimeError("this SimServer was already started")
        cls = _HTTPServer6 if ":" in self.host else _HTTPServer
        self._httpd = httpd = cls((self.host, self._port), self)
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name=f"SimServer:{self.port}",
        )
        self._thread.start()
        logger.debug("serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection (idempotent)."""
        httpd = self._httpd
        if httpd is None or self._stopped.is_set():
            self._stopped.set()
            return
        self._stopped.set()
        httpd.shutdown()
        httpd.server_close()
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.debug("stopped")

    def run_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called from another thread.

        A KeyboardInterrupt stops the server and propagates.
        """
        if self._httpd is None:
            self.start()
        try:
            while not self._stopped.wait(0.2):
                pass
        finally:
            self.stop()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "not started"
        return (
            f"<SimServer {where} seed={self.seed} rate={self.rate} "
            f"tokens={len(self._tokens)} day={self._day.date}>"
        )

    @property
    def port(self) -> int:
        """Return the bound port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the SimServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """Return ``http://HOST:PORT`` (after :meth:`start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- inspection and control --------------------------------------------------------------
    @property
    def exchange(self) -> SimExchange:
        """Return the exchange of the current day (it changes at a Korea-time midnight)."""
        with self.lock:
            return self._sync().exchange

    def truth(self, ord_no: str) -> TruthOrder:
        """Return the exchange's record of ``ord_no`` today, after advancing to now (KeyError)."""
        with self.lock:
            return self._sync().exchange.orders[ord_no]

    def trade(self, stk_cd: str, price: int, volume: int) -> None:
        """Print a trade of ``volume`` shares at ``price``: resting orders it reaches fill."""
        with self.lock:
            exchange = self._sync().exchange
            exchange.on_bar(Bar.tick(stk_cd, exchange.now_ms, price, volume))
            exchange.advance(exchange.now_ms)

    def inject(self, fault: Fault) -> None:
        """Script ``fault`` for the next matching requests."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, not {fault!r}")
        with self.lock:
            self._faults.append([fault, fault.times])

    def expire_tokens(self) -> None:
        """Invalidate every issued token now (8005 on its next use)."""
        with self.lock:
            self._tokens.clear()

    def issue_token(self) -> str:
        """Return a fresh valid token without a request (a test shortcut)."""
        with self.lock:
            token = secrets.token_urlsafe(32)
            self._tokens[token] = self._now() + self.token_ttl
            return token

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (delayed answers written); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def set_rate(self, api_id: str, n: int | None) -> None:
        """Allow ``n`` calls per second of ``api_id`` (None: unlimited)."""
        if n is not None and (type(n) is not int or n < 1):
            raise ValueError(f"a rate is a positive int or None, not {n!r}")
        with self.lock:
            self._rates[api_id] = n

    # -- the simulated clock -----------------------------------------------------------------
    def _open_day(self, ms: int, *, first: bool = False) -> _Day:
        """Start the exchange of the Korea-time day that contains server ms ``ms``."""
        if first:
            start = self.started_at
            origin = 0
        else:
            local = (self.started_at + timedelta(milliseconds=ms)).astimezone(KST)
            start = datetime.combine(local.date(), clock_time(0), KST)
            origin = (start - self.started_at) // timedelta(milliseconds=1)
        local_start = start.astimezone(KST)
        midnight = datetime.combine(local_start.date() + timedelta(days=1), clock_time(0), KST)
        end = origin + (midnight - start) // timedelta(milliseconds=1)
        exchange = SimExchange(
            seed=self.seed,
            start=start,
            latency=Latency(venue=Delay(self.venue_ms)),
            sessions=self.sessions,
        )
        day = _Day(exchange, origin, end)
        self._days[day.date] = day
        return day

    def _elapsed_ms(self) -> int:
        ms = int((self._clock() - self._clock0) * 1000)
        if ms < self._last_ms:
            ms = self._last_ms
        self._last_ms = ms
        return ms

    def _sync(self) -> _Day:
        """Bring the exchange to the wall clock (a new day after a midnight); return the day."""
        ms = self._elapsed_ms()
        day = self._day
        if ms >= day.end_ms:
            self._feed(day, day.end_ms - 1)
            day.exchange.close()
            day.exchange.drain()
            day = self._day = self._open_day(ms)
            logger.debug("a new day: %s (order numbers restart)", day.date)
        self._feed(day, ms)
        return day

    def _feed(self, day: _Day, upto: int) -> None:
        """Advance ``day``'s exchange to server ms ``upto``, feeding the bars due on the way."""
        exchange = day.exchange
        origin = day.origin_ms
        walks = self._walks
        if self.market and walks:
            step = self.step_ms
            due = min(w.next_due for w in walks.values())
            if due <= upto:
                first = max(-(-due // step), -(-(origin + exchange.now_ms) // step))
                last = upto // step
                if last - first >= _MAX_CATCH_UP:
                    first = last - _MAX_CATCH_UP + 1
                for k in range(first, last + 1):
                    at = k * step
                    exchange.advance(at - origin)
                    for walk in walks.values():
                        if walk.next_due <= at:
                            bar = next(walk.bars)[0]
                            exchange.on_bar(bar._replace(at_ms=at - origin))
                            walk.next_due = at + step
        if upto - origin > exchange.now_ms:
            exchange.advance(upto - origin)

    def _ensure_walk(self, day: _Day, stk_cd: str) -> None:
        """Give ``stk_cd`` a random walk (once) and a first bar today, before its first order."""
        if not self.market:
            return
        walk = self._walks.get(stk_cd)
        if walk is None:
            seed = self.seed * 1_000_003 + int(stk_cd, 36)
            walk = self._walks[stk_cd] = _Walk(
                random_walk([stk_cd], steps=None, seed=seed, step_ms=self.step_ms)
            )
        exchange = day.exchange
        if exchange.last_price(stk_cd) is None:
            bar = next(walk.bars)[0]
            exchange.on_bar(bar._replace(at_ms=exchange.now_ms))
            walk.next_due = ((day.origin_ms + exchange.now_ms) // self.step_ms + 1) * self.step_ms

    # -- HTTP --------------------------------------------------------------------------------
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler) -> None:
        """Serve one request on ``handler``: read, answer (outside the lock), log."""
        with self._idle:
            self._busy += 1
        try:
            self._serve(handler)
        finally:
            with self._idle:
                self._busy -= 1
                if not self._busy:
                    self._idle.notify_all()

    def _serve(self, handler: _Handler) -> None:
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= _MAX_BODY:
            raw = handler.rfile.read(length) if length else b""
        else:  # unread: answer 1517 (not UTF-8 JSON) and drop the connection
            handler.close_connection = True
            raw = b"\xff"
        reply = self._respond(handler.command, handler.path, handler.headers, raw)
        self._write(handler, reply)

    def _respond(self, method: str, path: str, headers: Message, raw: bytes) -> _Reply:
        path = path.split("?", 1)[0]
        sent = (headers.get("api-id") or "").strip()
        header_api = sent if _API_ID.fullmatch(sent) else ""
        api_id = header_api or _TOKEN_PATHS.get(path, "")
        # The token endpoints' bodies hold secrets: never kept.
        body = {} if path in _TOKEN_PATHS else (self._parse(raw) or {})
        fault: Fault | None = None
        with self.lock:
            self.calls[api_id] += 1
            try:
                fault = self._take_fault(api_id)
                if fault is not None and not fault.kind.processed:
                    reply = self._blocked(fault, api_id)
                else:
                    reply = self._process(method, path, header_api, api_id, headers, raw)
                    if fault is not None:
                        reply = self._spoil(fault, reply)
            except Exception:
                logger.error("unexpected error serving %s", api_id or "(no api-id)", exc_info=True)
                reply = _reply(api_id, {"return_code": 1, "return_msg": _UNEXPECTED}, "error")
            if reply.status == 429:
                self.throttled += 1
            call = ServerCall(
                api_id,
                body,
                reply.status if reply.answer else 0,
                reply.return_code,
                reply.outcome,
                fault.kind if fault is not None else None,
            )
            self.log.append(call)
        logger.debug(
            "%s %s -> HTTP %s, return_code %s (%s%s)",
            api_id or "(no api-id)",
            path if path in _TOKEN_PATHS or path in _TR_PATHS else "(unknown path)",
            call.http_status,
            call.return_code,
            call.outcome,
            f", fault {fault.kind.value}" if fault is not None else "",
        )
        return reply

    def _take_fault(self, api_id: str) -> Fault | None:
        for entry in self._faults:
            fault: Fault = entry[0]
            if fault.api_id is None or fault.api_id == api_id:
                entry[1] -= 1
                if entry[1] <= 0:
                    self._faults.remove(entry)
                return fault
        return None

    def _throttle_reply(self, api_id: str, limit: int | None) -> _Reply:
        # An injected 429 on an unlimited api-id names the quoted 5/s: a real 1700 names N > 0.
        msg = f"{_TOO_MANY}[1700:{_TOO_MANY}. 유량={limit or 5}, API ID={api_id}]"
        return _reply(api_id, {"return_code": 5, "return_msg": msg}, "throttled", 429)

    def _blocked(self, fault: Fault, api_id: str) -> _Reply:
        """Answer a fault that stops the request before the order server sees it."""
        if fault.kind is FaultKind.HTTP_429:
            reply = self._throttle_reply(api_id, self._limit(api_id))
            reply.outcome = "blocked"
            return reply
        if fault.kind is FaultKind.FIREWALL_400:
            return _Reply(400, api_id, "blocked", raw=_FIREWALL_PAGE, content_type=_HTML)
        return _Reply(0, api_id, "blocked", answer=False)  # CLOSE_BEFORE

    @staticmethod
    def _spoil(fault: Fault, reply: _Reply) -> _Reply:
        """Apply a fault that strikes after the request was processed."""
        kind = fault.kind
        if kind is FaultKind.DELAY:
            reply.delay = fault.delay
        elif kind is FaultKind.CLOSE_AFTER:
            reply.answer = False
        elif kind is FaultKind.HTTP_500:
            reply.status, reply.payload = 500, None
            reply.raw, reply.content_type = _ERROR_PAGE, _HTML
        elif kind is FaultKind.MALFORMED_JSON:
            full = reply.body()
            reply.status, reply.payload = 200, None
            reply.raw = full[: max(1, len(full) // 2)]
        elif kind is FaultKind.SERVER_ERROR_1999:
            reply.status, reply.cont_yn, reply.next_key = 200, "N", ""
            reply.payload = {"return_code": 1, "return_msg": _UNEXPECTED}
        return reply

    def _write(self, handler: _Handler, reply: _Reply) -> None:
        """Send ``reply`` in one write (or close without answering)."""
        if reply.delay:
            time.sleep(reply.delay)
        if not reply.answer:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        body = reply.body()
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            "Server: kiwoom-simserver",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(body)}",
        ]
        if reply.content_type == _JSON:
            lines += [
                f"api-id: {reply.api_id}",
                f"cont-yn: {reply.cont_yn}",
                f"next-key: {reply.next_key}",
            ]
        if handler.close_connection or self._stopped.is_set():
            handler.close_connection = True
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            handler.wfile.write(head + body)
        except OSError:
            handler.close_connection = True

    # -- dispatch ----------------------------------------------------------------------------
    def _process(
        self, method: str, path: str, header_api: str, api_id: str, headers: Message, raw: bytes
    ) -> _Reply:
        """Route, throttle, authenticate, validate and serve one request (under the lock)."""
        token_api = _TOKEN_PATHS.get(path)
        allowed = _TR_PATHS.get(path)
        if method != "POST" or (token_api is None and allowed is None):
            payload = _api_error("1504", "해당 URI에서는 지원하지 않는 요청입니다")
            return _reply(api_id, payload, "not-found", 404)
        if token_api is not None:
            if header_api and header_api != token_api:
                return _reply(api_id, self._wrong_path())
            parsed = self._parse(raw)
            if parsed is None:
                return _reply(api_id, _BadInput("1517", "body").payload())
            if token_api == "au10001":
                return _reply(api_id, self._issue(parsed))
            return _reply(api_id, self._revoke(parsed))
        assert allowed is not None
        if not header_api:
            return _reply(api_id, _api_error("1501", "API ID가 Null이거나 값이 없습니다"))
        if header_api not in _KNOWN_TRS:
            return _reply(api_id, _api_error("1505", "해당 API ID는 존재하지 않습니다"))
        if header_api not in allowed:
            return _reply(api_id, self._wrong_path())
        limit = self._limit(api_id)
        if limit is not None and not self._admit(api_id, limit):
            return self._throttle_reply(api_id, limit)
        parsed = self._parse(raw)
        if not self._authorized(headers.get("authorization") or ""):
            return _reply(api_id, {"return_code": 3, "return_msg": _TOKEN_INVALID})
        if parsed is None:
            return _reply(api_id, _BadInput("1517", "body").payload())
        day = self._sync()
        try:
            if api_id in ("kt10000", "kt10001"):
                payload = self._place(day, parsed, Side.BUY if api_id == "kt10000" else Side.SELL)
            elif api_id == "kt10002":
                payload = self._modify(day, parsed)
            elif api_id == "kt10003":
                payload = self._cancel(day, parsed)
            else:
                cont = (headers.get("cont-yn") or "").strip().upper() == "Y"
                key = (headers.get("next-key") or "").strip() if cont else ""
                if cont and not key:
                    raise _BadInput("1511", "next-key")
                if key and not _ORD_NO.fullmatch(key):
                    raise _BadInput("1517", "next-key")
                if api_id == "ka10075":
                    name, rows = "oso", self._open_rows(day, parsed, key)
                else:
                    name, rows = "acnt_ord_cntr_prps_dtl", self._detail_rows(parsed, key)
                return self._page(api_id, name, rows)
        except _BadInput as bad:
            return _reply(api_id, bad.payload())
        return _reply(api_id, payload)

    @staticmethod
    def _wrong_path() -> dict[str, Any]:
        return _api_error("1504", "해당 URI에서는 지원하는 API ID가 아닙니다")

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any] | None:
        try:
            value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _limit(self, api_id: str) -> int | None:
        return self._rates.get(api_id, self.rate)

    def _admit(self, api_id: str, limit: int) -> bool:
        """Count a call in the sliding window (t-1, t]; return False when it is over the limit."""
        t = self._clock()
        window = self._windows.get(api_id)
        if window is None:
            window = self._windows[api_id] = deque()
        while window and window[0] <= t - 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(t)
        return True

    # -- tokens ------------------------------------------------------------------------------
    def _keys_problem(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        appkey, secretkey = body.get("appkey"), body.get("secretkey")
        if not (isinstance(appkey, str) and appkey and isinstance(secretkey, str) and secretkey):
            msg = f"{_AUTH_FAILED}[8020:appkey 또는 secretkey가 없습니다]"
            return {"return_code": 3, "return_msg": msg}
        if self._credentials is not None:
            expected = self._credentials.get(appkey)
            if expected is None:
                msg = f"{_AUTH_FAILED}[8001:App Key 검증에 실패했습니다]"
                return {"return_code": 3, "return_msg": msg}
            if not secrets.compare_digest(expected.encode(), secretkey.encode()):
                msg = f"{_AUTH_FAILED}[8002:Secret Key 검증에 실패했습니다]"
                return {"return_code": 3, "return_msg": msg}
        return None

    def _issue(self, body: Mapping[str, Any]) -> dict[str, Any]:
        problem = self._keys_problem(body)
        if problem is not None:
            return problem
        if body.get("grant_type") != "client_credentials":
            msg = f"{_AUTH_FAILED}[8011:grant_type이 올바르지 않습니다]"
            return {"return_code": 3, "return_msg": msg}
        token = secrets.token_urlsafe(32)
        expires = self._now() + self.token_ttl
        self._tokens[token] = expires
        return {
            "expires_dt": expires.astimezone(KST).strftime("%Y%m%d%H%M%S"),
            "token_type": "bearer",
            "token": token,
            "return_code": 0,
            "return_msg": _OK,
        }

    def _revoke(self, body: Mapping[str, Any]) -> dict[str, Any]:
        problem = self._keys_problem(body)
        if problem is not None:
            return problem
        token = body.get("token")
        if not isinstance(token, str) or not self._valid(token):
            msg = f"{_AUTH_FAILED}[8015:토큰 폐기에 실패했습니다]"
            return {"return_code": 3, "return_msg": msg}
        del self._tokens[token]
        return {"return_code": 0, "return_msg": _OK}

    def _valid(self, token: str) -> bool:
        expires = self._tokens.get(token)
        if expires is None:
            return False
        if self._now() >= expires:
            del self._tokens[token]
            return False
        return True

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.strip().partition(" ")
        return scheme.lower() == "bearer" and bool(token.strip()) and self._valid(token.strip())

    # -- order TRs ---------------------------------------------------------------------------
    @staticmethod
    def _venue(body: Mapping[str, Any]) -> str:
        return _choice(body, "dmst_stex_tp", _VENUES)

    @staticmethod
    def _code(body: Mapping[str, Any]) -> str:
        stk_cd = _field(body, "stk_cd")
        if not _plain_code(stk_cd):
            raise _BadInput("1517", "stk_cd")
        return stk_cd

    @staticmethod
    def _price(body: Mapping[str, Any], name: str, *, required: bool) -> int:
        text = _field(body, name, required=required)
        if text and not _QTY.fullmatch(text):
            raise _BadInput("1517", name)
        return int(text) if text else 0

    @staticmethod
    def _settle(exchange: SimExchange, ticket: Ticket) -> Ticket:
        """Run the exchange until ``ticket`` is answered (immediately: zero latency)."""
        exchange.advance(exchange.now_ms)
        if ticket.status is TicketStatus.PENDING:
            exchange.drain()
        if ticket.status is TicketStatus.PENDING:
            raise RuntimeError("the exchange did not answer a request")
        return ticket

    def _place(self, day: _Day, body: Mapping[str, Any], side: Side) -> dict[str, Any]:
        venue = self._venue(body)
        stk_cd = self._code(body)
        qty = _quantity(body, "ord_qty", all_allowed=False)
        trde_tp = _field(body, "trde_tp")
        kind = ORDER_TYPES.get(trde_tp)
        if kind is None:
            raise _BadInput("1517", "trde_tp")
        market = kind[0]
        price = self._price(body, "ord_uv", required=not market)
        if price == 0 and not market:
            raise _BadInput("1517", "ord_uv")
        if price and market:
            raise _BadInput("1517", "ord_uv")
        self._price(body, "cond_uv", required=False)
        exchange = day.exchange
        self._ensure_walk(day, stk_cd)
        try:
            ticket = exchange.place(
                stk_cd=stk_cd, side=side, qty=qty, price=price, trde_tp=trde_tp, exchange=venue
            )
        except SimError:
            raise _BadInput("1517", "body") from None
        self._settle(exchange, ticket)
        if ticket.status is not TicketStatus.ACCEPTED:
            return _rc(ticket.code, ticket.message)
        return {
            "ord_no": ticket.ord_no,
            "dmst_stex_tp": venue,
            "return_code": 0,
            "return_msg": f"{side.label}주문이 완료되었습니다",
        }

    def _target(
        self, day: _Day, body: Mapping[str, Any], qty_field: str
    ) -> tuple[str, int, TruthOrder | None]:
        venue = self._venue(body)
        orig_ord_no = _field(body, "orig_ord_no")
        if not _ORD_NO.fullmatch(orig_ord_no):
            raise _BadInput("1517", "orig_ord_no")
        stk_cd = self._code(body)
        qty = _quantity(body, qty_field, all_allowed=True)
        orig = day.exchange.orders.get(orig_ord_no)
        if orig is not None and orig.stk_cd != stk_cd:
            orig = None  # no such order of this symbol
        return venue, qty, orig

    def _modify(self, day: _Day, body: Mapping[str, Any]) -> dict[str, Any]:
        venue, qty, orig = self._target(day, body, "mdfy_qty")
        price = self._price(body, "mdfy_uv", required=True)
        if price == 0:
            raise _BadInput("1517", "mdfy_uv")
        self._price(body, "mdfy_cond_uv", required=False)
        if orig is None:
            return _rc(*RC_UNKNOWN_ORDER)
        exchange = day.exchange
        try:
            ticket = exchange.modify(orig_ord_no=orig.ord_no, qty=qty, price=price)
        except SimError:
            raise _BadInput("1517", "body") from None
        self._settle(exchange, ticket)
        if ticket.status is not TicketStatus.ACCEPTED:
            return _rc(ticket.code, ticket.message)
        successor = exchange.orders[ticket.ord_no]
        return {
            "ord_no": ticket.ord_no,
            "base_orig_ord_no": day.root(orig),
            "mdfy_qty": _q(successor.qty),
            "dmst_stex_tp": venue,
            "return_code": 0,
            "return_msg": f"{orig.side.label}정정 주문입력이 완료되었습니다",
        }

    def _cancel(self, day: _Day, body: Mapping[str, Any]) -> dict[str, Any]:
        _venue, qty, orig = self._target(day, body, "cncl_qty")
        if orig is None:
            return _rc(*RC_UNKNOWN_ORDER)
        exchange = day.exchange
        open_now = 0 if orig.inflight_all else orig.leaves - orig.inflight
        try:
            ticket = exchange.cancel(orig_ord_no=orig.ord_no, qty=qty)
        except SimError:
            raise _BadInput("1517", "body") from None
        self._settle(exchange, ticket)
        if ticket.status is not TicketStatus.ACCEPTED:
            return _rc(ticket.code, ticket.message)
        taken = qty or open_now
        row = day.cancels.get(ticket.ord_no)
        if row is not None:
            row.qty = taken
        return {
            "ord_no": ticket.ord_no,
            "base_orig_ord_no": day.root(orig),
            "cncl_qty": _q(taken),
            "return_code": 0,
            "return_msg": f"{orig.side.label}취소 주문입력이 완료되었습니다",
        }

    # -- status lists ------------------------------------------------------------------------
    def _page(self, api_id: str, name: str, rows: Iterator[dict[str, str]]) -> _Reply:
        """Answer one page of ``rows`` (in ord_no order, from the continuation key on)."""
        taken = list(islice(rows, self.page_size + 1))
        page = taken[: self.page_size]
        reply = _reply(api_id, {name: page, "return_code": 0, "return_msg": _QUERY_OK})
        if len(taken) > self.page_size:
            reply.cont_yn, reply.next_key = "Y", taken[self.page_size]["ord_no"]
        return reply

    @staticmethod
    def _trde(order: TruthOrder) -> str:
        return _TRDE_CODES.get((order.market, order.tif), "0")

    @staticmethod
    def _io(order: TruthOrder, what: str = "") -> str:
        return ("+" if order.side is Side.BUY else "-") + order.side.label + what

    @staticmethod
    def _side_filter(code: str) -> Side | None:
        """Return the side a ``trde_tp``/``sell_tp`` code keeps (1 sell, 2 buy; 0 all: None)."""
        return Side.SELL if code == "1" else Side.BUY if code == "2" else None

    def _open_rows(self, day: _Day, body: Mapping[str, Any], key: str) -> Iterator[dict[str, str]]:
        """Check a ka10075 body; yield its rows: orders with unfilled shares, oldest first."""
        one = _choice(body, "all_stk_tp", ("0", "1")) == "1"
        side = self._side_filter(_choice(body, "trde_tp", ("0", "1", "2")))
        stk_cd = _field(body, "stk_cd", required=one)
        if stk_cd and not _plain_code(stk_cd.removeprefix("A")):
            raise _BadInput("1517", "stk_cd")
        stk_cd = stk_cd.removeprefix("A") if len(stk_cd) == 7 else stk_cd
        stex = _choice(body, "stex_tp", ("0", "1", "2"))
        return self._open_rows_of(day, key, stk_cd if one else "", side, stex)

    def _open_rows_of(
        self, day: _Day, key: str, stk_cd: str, side: Side | None, stex: str
    ) -> Iterator[dict[str, str]]:
        for order in sorted(day.exchange.open_orders(), key=lambda o: o.ord_no):
            if order.ord_no < key or (stk_cd and order.stk_cd != stk_cd):
                continue
            if side is not None and order.side is not side:
                continue
            code, text, sor = _STEX.get(order.exchange, ("1", order.exchange, "N"))
            if stex not in ("0", code):
                continue
            last = day.last_fill.get(order.ord_no)
            yield {
                "ord_no": order.ord_no,
                "orig_ord_no": order.origin or _NONE,
                "stk_cd": "A" + order.stk_cd,
                "ord_stt": "체결" if order.filled else "확인" if order.confirmed else "접수",
                "ord_qty": _q(order.qty),
                "ord_pric": _q(order.price),
                "oso_qty": _q(order.leaves),
                "cntr_qty": _q(order.filled),
                "cntr_pric": _q(last) if last is not None else "",
                "io_tp_nm": self._io(order, "정정" if order.origin else ""),
                "trde_tp": _TRDE_NAMES[self._trde(order)],
                "tm": day.times.get(order.ord_no, "000000"),
                "stex_tp": code,
                "stex_tp_txt": text,
                "sor_yn": sor,
            }

    def _detail_rows(self, body: Mapping[str, Any], key: str) -> Iterator[dict[str, str]]:
        """Check a kt00007 body; yield its rows: every order number of the day, in order."""
        ord_dt = _field(body, "ord_dt")
        if not _DATE.fullmatch(ord_dt):
            raise _BadInput("1517", "ord_dt")
        for name in ("qry_tp", "stk_bond_tp"):
            value = _field(body, name, required=False)
            if value and not value.isascii():
                raise _BadInput("1517", name)
        side = self._side_filter(_choice(body, "sell_tp", ("0", "1", "2"), required=False))
        stk_cd = _field(body, "stk_cd", required=False)
        if stk_cd and not _plain_code(stk_cd.removeprefix("A")):
            raise _BadInput("1517", "stk_cd")
        stk_cd = stk_cd.removeprefix("A") if len(stk_cd) == 7 else stk_cd
        start = _field(body, "fr_ord_no", required=False)
        if start and not _ORD_NO.fullmatch(start):
            raise _BadInput("1517", "fr_ord_no")
        venue = _choice(body, "dmst_stex_tp", ("%", *_VENUES), required=False)
        day = self._days.get(ord_dt)
        if day is None:
            return iter(())
        return self._detail_rows_of(day, max(key, start), stk_cd, side, venue.strip("%"))

    def _detail_rows_of(
        self, day: _Day, key: str, stk_cd: str, side: Side | None, venue: str
    ) -> Iterator[dict[str, str]]:
        orders = day.exchange.orders
        numbers = sorted(n for n in (*orders, *day.cancels) if n >= key)
        for ord_no in numbers:
            cancel = day.cancels.get(ord_no)
            order = orders[cancel.orig_ord_no if cancel is not None else ord_no]
            if (stk_cd and order.stk_cd != stk_cd) or (side is not None and order.side is not side):
                continue
            if venue and order.exchange != venue:
                continue
            if cancel is None:
                yield {
                    "ord_no": ord_no,
                    "ori_ord": order.origin or _NONE,
                    "stk_cd": "A" + order.stk_cd,
                    "io_tp_nm": self._io(order, "정정" if order.origin else ""),
                    "mdfy_cncl": "정정" if order.origin else "",
                    "acpt_tp": "거부" if order.rejected else "확인" if order.confirmed else "접수",
                    "ord_qty": _q(order.qty),
                    "ord_uv": _q(order.price),
                    "cnfm_qty": _q(order.qty if order.confirmed and not order.rejected else 0),
                    "cntr_qty": _q(order.filled),
                    "cntr_uv": str(order.notional // order.filled if order.filled else 0),
                    "ord_remnq": _q(order.leaves),
                    "dmst_stex_tp": order.exchange,
                    "trde_tp": self._trde(order),
                    "ord_tm": day.times.get(ord_no, "000000"),
                }
            else:
                yield {
                    "ord_no": ord_no,
                    "ori_ord": cancel.orig_ord_no,
                    "stk_cd": "A" + order.stk_cd,
                    "io_tp_nm": order.side.label + "취소",
                    "mdfy_cncl": "취소",
                    "acpt_tp": cancel.status,
                    "ord_qty": _q(cancel.qty),
                    "ord_uv": _q(order.price),
                    "cnfm_qty": _q(cancel.done),
                    "cntr_qty": _q(0),
                    "cntr_uv": "0",
                    "ord_remnq": _q(0),
                    "dmst_stex_tp": order.exchange,
                    "trde_tp": self._trde(order),
                    "ord_tm": cancel.tm,
                }
