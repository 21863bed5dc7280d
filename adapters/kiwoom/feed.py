"""The real-time order feed: Kiwoom's WebSocket, logged in, registered, turned into engine events.

:class:`KiwoomFeed` connects to ``wss://api.kiwoom.com:10000/api/dostk/websocket`` (real),
``wss://mockapi.kiwoom.com:10000/api/dostk/websocket`` (mock) or, when allowed, a loopback
simulator such as ``order-engine sim-server``, and then, on every connect and reconnect:

1. sends ``LOGIN`` with the access token of the REST client's token manager and waits for its
   answer (``return_code`` 0). An authentication failure (8005 and its relatives, as the
   top-level code or inside ``return_msg``) re-issues the token once; a second one stops the
   feed (it would only fail again);
2. registers type ``00`` (주문체결) for the whole account (``item [""]``) and waits for the answer;
3. calls ``on_connected()`` (a REST reconcile: Kiwoom keeps no replay and no sequence numbers,
   so what happened while disconnected is learned there), on a worker thread. Frames arriving
   meanwhile are held, and delivered after it, in order: the stream is never trusted before the
   reconcile. If ``on_connected`` raises, the connection is closed and made again later;
4. delivers every type-00 frame as engine events
   (:func:`adapters.kiwoom.realtime.events_from_values`) through ``on_events(events)``, on one
   worker thread, in arrival order. An execution seen before (same order number 9203 and
   execution number 909) is dropped. A frame that cannot
   be mapped is logged and passed to ``on_bad_frame``; it never stops the feed.

Every ``PING`` is echoed unchanged. A ``SYSTEM`` message (another session with the same app key
replaced this one) stops the feed and says so (:attr:`KiwoomFeed.stop_reason`): it does not fight
for the connection. Any other disconnect is followed by a reconnect after a capped exponential
backoff with jitter (``rng`` makes it reproducible).

The feed runs its own asyncio loop on a background thread: :meth:`KiwoomFeed.start`,
:meth:`KiwoomFeed.stop` (prompt and clean) or a ``with`` block. Strategy threads keep calling the
broker meanwhile; the callbacks are where the feed meets the book, so make them take the book's
lock (``KiwoomBroker.apply_events`` and ``reconcile`` do). Wiring it to a broker is one line::

    feed = KiwoomFeed.for_broker(client, on_events=broker.apply_events,
                                 on_connected=broker.reconcile)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from adapters.kiwoom.auth import TokenManager
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import ConfigError, KiwoomError
from adapters.kiwoom.realtime import RealtimeError, events_from_values
from adapters.kiwoom.secret import Secret
from adapters.kiwoom.transport import MOCK_URL, REAL_URL, is_loopback
from engine import events as ev
from engine.sessions import KST

__all__ = [
    "MOCK_WS_URL",
    "REAL_WS_URL",
    "WS_PATH",
    "FeedError",
    "FeedStats",
    "KiwoomFeed",
    "check_ws_url",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

REAL_WS_URL: Final = "wss://api.kiwoom.com:10000"
MOCK_WS_URL: Final = "wss://mockapi.kiwoom.com:10000"
WS_PATH: Final = "/api/dostk/websocket"
_WS_HOSTS: Final = {"api.kiwoom.com": REAL_WS_URL, "mockapi.kiwoom.com": MOCK_WS_URL}
_REG_00: Final = {
    "trnm": "REG",
    "grp_no": "1",
    "refresh": "1",
    "data": [{"item": [""], "type": ["00"]}],
}
# 8005 token invalid, and its relatives: 8001-8050 keys and tokens, 8103 device authentication
_AUTH_CODE: Final = re.compile(r"(?<!\d)(80\d\d|8103)(?!\d)")

#: Events delivered together, from one frame.
OnEvents = Callable[[list[ev.Event]], object]


class FeedError(KiwoomError):
    """The feed could not log in or register (the message says which and why)."""


def check_ws_url(url: str, *, allow_loopback: bool = False) -> str:
    """Return the full WebSocket endpoint of ``url`` (``.../api/dostk/websocket``) or raise.

    Kiwoom's real and mock hosts are reached over ``wss`` on port 10000 only; a loopback
    simulator (``ws://127.0.0.1:PORT``) only with ``allow_loopback``: tokens go nowhere else.
    """
    if not isinstance(url, str):
        raise ConfigError(f"a WebSocket URL is a string, not {type(url).__name__}")
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("a WebSocket URL carries no credentials, query or fragment")
    if parts.path.rstrip("/") not in ("", WS_PATH):
        raise ConfigError(f"the WebSocket path is {WS_PATH}, not {parts.path!r}")
    if host in _WS_HOSTS:
        if parts.scheme != "wss" or parts.port not in (None, 10000):
            raise ConfigError(f"Kiwoom's {host} WebSocket is wss on port 10000 only")
        return _WS_HOSTS[host] + WS_PATH
    if is_loopback(host):
        if not allow_loopback:
            raise ConfigError(f"{url!r} is a loopback URL (a local simulator): allow_loopback=True")
        if parts.scheme not in ("ws", "wss"):
            raise ConfigError(f"a WebSocket URL is ws or wss, not {parts.scheme!r}")
        return f"{parts.scheme}://{parts.netloc}{WS_PATH}"
    raise ConfigError(
        f"refusing host {host or url!r}: only {REAL_WS_URL}, {MOCK_WS_URL} or a loopback "
        "simulator (allow_loopback=True) receive tokens"
    )


@attrs.define
class FeedStats:
    """What the feed has done so far (read from any thread; updated by the feed's thread).

    ``reconnect_seconds`` is how long the last reconnect took, from the drop to the end of
    ``on_connected``.
    """

    connects: int = 0  # logged in and registered
    disconnects: int = 0
    frames: int = 0  # REAL frames received
    events: int = 0  # engine events delivered
    duplicates: int = 0  # executions dropped as seen before
    bad_frames: int = 0  # frames (entries) that could not be mapped
    callback_errors: int = 0  # on_events / on_connected raised
    pings: int = 0  # PINGs echoed
    token_reissues: int = 0
    reconnect_seconds: float | None = None


class KiwoomFeed:
    """The real-time order feed (see the module docstring).

    ``tokens`` is the REST client's :class:`TokenManager`; ``url`` the WebSocket base or
    endpoint (see :func:`check_ws_url`); ``on_events`` receives each frame's events; the optional
    ``on_connected`` runs after every (re)connect before any event is delivered; ``on_bad_frame``
    gets ``(frame_text, error)``; ``on_stopped`` gets the reason when the feed stops by itself.
    ``backoff`` (first delay, cap) in seconds; ``rng`` draws the jitter; ``trade_date`` gives
    the Korea-time date frames belong to (they carry only ``HHmmss``).
    """

    def __init__(
        self,
        tokens: TokenManager,
        url: str,
        *,
        on_events: OnEvents,
        on_connected: Callable[[], object] | None = None,
        on_bad_frame: Callable[[str, Exception], object] | None = None,
        on_stopped: Callable[[str], object] | None = None,
        allow_loopback: bool = False,
        backoff: tuple[float, float] = (0.5, 30.0),
        rng: random.Random | None = None,
        login_timeout: float = 10.0,
        trade_date: Callable[[], date] = lambda: datetime.now(KST).date(),
        dedup_memory: int = 100_000,
    ) -> None:
        first, cap = backoff
        if not 0 < first <= cap:
            raise ConfigError(
                f"backoff must be (first, cap) with 0 < first <= cap, not {backoff!r}"
            )
        if not login_timeout > 0:
            raise ConfigError(f"login_timeout must be positive seconds, not {login_timeout!r}")
        if type(dedup_memory) is not int or dedup_memory < 1:
            raise ConfigError(f"dedup_memory must be a positive int, not {dedup_memory!r}")
        self.url = check_ws_url(url, allow_loopback=allow_loopback)
        self.tokens = tokens
        self.on_events = on_events
        self.on_connected = on_connected
        self.on_bad_frame = on_bad_frame
        self.on_stopped = on_stopped
        self.backoff = (float(first), float(cap))
        self.rng = rng if rng is not None else random.Random()
        self.login_timeout = float(login_timeout)
        self.trade_date = trade_date
        self.stats = FeedStats()
        self._seen: OrderedDict[tuple[date, str, str], None] = OrderedDict()
        self._dedup_memory = dedup_memory
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._connected = threading.Event()
        self._done = threading.Event()
        self._streamed = False  # the current session got as far as streaming
        self.stop_reason = ""

    @classmethod
    def for_broker(
        cls,
        client: KiwoomClient,
        *,
        on_events: OnEvents,
        on_connected: Callable[[], object],
        url: str | None = None,
        allow_loopback: bool = False,
        **options: Any,
    ) -> KiwoomFeed:
        """Return a feed for ``client``'s account, wired to a broker's two entry points.

        ``on_events`` is typically ``broker.apply_events`` and ``on_connected``
        ``broker.reconcile``. ``url`` defaults to the real or mock WebSocket that matches the
        client's REST base URL; a loopback client (sim-server) needs its ``ws://`` URL.
        """
        if url is None:
            url = {REAL_URL: REAL_WS_URL, MOCK_URL: MOCK_WS_URL}.get(client.base_url, "")
            if not url:
                raise ConfigError(
                    f"no WebSocket URL is known for {client.base_url!r}: pass url= "
                    "(sim-server prints it on its second line)"
                )
        return cls(
            client.tokens,
            url,
            on_events=on_events,
            on_connected=on_connected,
            allow_loopback=allow_loopback,
            **options,
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "stopped" if self._done.is_set() else "idle"
        return f"KiwoomFeed({self.url!r}, {state})"

    # -- the threaded API --------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Return True while logged in, registered and past ``on_connected``."""
        return self._connected.is_set()

    @property
    def running(self) -> bool:
        """Return True from :meth:`start` until the feed has stopped."""
        return self._thread is not None and not self._done.is_set()

    def start(self) -> KiwoomFeed:
        """Start the feed's thread (it connects, and reconnects, by itself); return self."""
        if self._thread is not None:
            raise RuntimeError("this KiwoomFeed was already started")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name="KiwoomFeed"
        )
        self._thread.start()
        ready.wait(5)
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the feed is connected (past ``on_connected``); False on timeout."""
        return self._connected.wait(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the feed has stopped (by :meth:`stop` or by itself); False on timeout."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the thread (idempotent); wait at most ``timeout``."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self.stop_reason:
            self.stop_reason = "stopped"

    def __enter__(self) -> KiwoomFeed:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("the feed's loop failed")
            self.stop_reason = self.stop_reason or "failed (see the log)"
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._done.set()

    # -- the loop ----------------------------------------------------------------------------
    async def _main(self) -> None:
        stop = self._stop
        assert stop is not None
        failures = 0
        dropped_at: float | None = None
        reissued = False
        while not stop.is_set():
            self._streamed = False
            session = asyncio.ensure_future(self._session(dropped_at))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not session.done():
                session.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await session
                break
            self._connected.clear()
            try:
                logged_in = session.result()
            except _AuthRefused as exc:
                if reissued:
                    self._end(f"authentication refused again after a new token: {exc}")
                    break
                reissued = True
                self.stats.token_reissues += 1
                log.info("the feed's LOGIN was refused (%s); issuing a new token", exc.code)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.tokens.invalidate, exc.token
                )
                continue  # at once: the server did not act on anything
            except _Replaced as exc:
                self._end(f"replaced by another session of the same app key: {exc}")
                break
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, FeedError) as exc:
                logged_in = False
                log.warning("feed connection failed: %s: %s", type(exc).__name__, exc)
            except KiwoomError as exc:  # no token could be had
                logged_in = False
                log.warning("feed: no token (%s); will retry", exc)
            except Exception:  # never let one bad session end the feed
                logged_in = False
                log.exception("feed: the session failed unexpectedly; will reconnect")
            if logged_in or self._streamed:
                failures = 0
                reissued = False
                self.stats.disconnects += 1
            dropped_at = time.monotonic()
            if stop.is_set():
                break
            delay = self._delay(failures)
            failures += 1
            log.info("feed: reconnecting in %.2f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _delay(self, failures: int) -> float:
        """Return the wait before the next attempt: capped exponential, half of it jittered."""
        first, cap = self.backoff
        ceiling = min(cap, first * float(2 ** min(failures, 30)))
        jitter = float(self.rng.uniform(0.0, ceiling / 2))
        return ceiling / 2 + jitter

    def _end(self, reason: str) -> None:
        log.warning("the feed stops: %s", reason)
        self.stop_reason = reason
        if self.on_stopped is not None:
            try:
                self.on_stopped(reason)
            except Exception:
                log.exception("on_stopped raised")

    async def _session(self, dropped_at: float | None) -> bool:
        """Connect, log in, register, reconcile, then stream until the connection ends.

        Return True when it got as far as streaming (a later drop is then a reconnect).
        """
        loop = asyncio.get_running_loop()
        token = await loop.run_in_executor(None, self.tokens.token)
        async with connect(
            self.url,
            proxy=None,
            open_timeout=self.login_timeout,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            max_size=2**22,
            max_queue=None,
        ) as ws:
            await ws.send(json.dumps({"trnm": "LOGIN", "token": token.reveal()}))
            answer = await self._answer(ws, "LOGIN")
            if answer.get("return_code") != 0:
                code = _auth_code(answer)
                if code:
                    raise _AuthRefused(code, token)
                raise FeedError(f"LOGIN refused: {answer.get('return_msg', '')}")
            await ws.send(json.dumps(_REG_00))
            answer = await self._answer(ws, "REG")
            if answer.get("return_code") not in (0, "0"):
                raise FeedError(f"REG refused: {answer.get('return_msg', '')}")
            deliverer = _Deliverer(self)  # holds frames until the reconcile is done
            reader = asyncio.ensure_future(self._read(ws, deliverer))
            try:
                if self.on_connected is not None:
                    reconciled: asyncio.Future[Any] = loop.run_in_executor(None, self.on_connected)
                    done, _ = await asyncio.wait(
                        {reader, reconciled}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if reader in done:  # the connection ended during the reconcile
                        reader.result()
                        return False
                    try:
                        reconciled.result()
                    except Exception:
                        self.stats.callback_errors += 1
                        log.exception("on_connected raised: reconnecting later")
                        deliverer.discard()  # the next reconcile covers them
                        return False
                self.stats.connects += 1
                if dropped_at is not None:
                    self.stats.reconnect_seconds = time.monotonic() - dropped_at
                self._connected.set()
                self._streamed = True
                log.info("feed connected (%s)", self.url)
                deliverer.go.set()
                await reader
            finally:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
                await deliverer.drain()
        return True

    async def _answer(self, ws: ClientConnection, trnm: str) -> dict[str, Any]:
        """Wait for the answer to ``trnm`` (echoing PINGs meanwhile)."""
        async with asyncio.timeout(self.login_timeout):
            while True:
                text = await ws.recv()
                message = _parse(text)
                if message is None:
                    continue
                kind = message.get("trnm")
                if kind == "PING":
                    await ws.send(text)
                    self.stats.pings += 1
                elif kind == "SYSTEM":
                    raise _Replaced(_system_text(message))
                elif kind == trnm:
                    return message
                elif trnm == "LOGIN" and "return_code" in message:
                    return message  # an error answer under another name
                else:
                    log.debug("feed: %s before the %s answer, ignored", kind, trnm)

    async def _read(self, ws: ClientConnection, deliverer: _Deliverer) -> None:
        """Read until the connection ends: echo PINGs, hand REAL frames on, stop on SYSTEM."""
        async for raw in ws:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            message = _parse(text)
            if message is None:
                self._bad(text, RealtimeError("frame is not a JSON object"))
                continue
            kind = message.get("trnm")
            if kind == "PING":
                await ws.send(text)  # unchanged
                self.stats.pings += 1
            elif kind == "REAL":
                self.stats.frames += 1
                deliverer.push(text, message)
            elif kind == "SYSTEM":
                raise _Replaced(_system_text(message))
            else:
                log.debug("feed: %s message ignored", kind)

    # -- delivery (on the deliverer's worker thread) -------------------------------------------
    def _events_of(self, text: str, message: Mapping[str, Any]) -> list[ev.Event]:
        """Map one REAL frame to events: duplicates dropped, bad entries reported."""
        data = message.get("data")
        if not isinstance(data, Sequence) or isinstance(data, str):
            self._bad(text, RealtimeError("REAL frame without a data list", field="data"))
            return []
        out: list[ev.Event] = []
        today = self.trade_date()
        for entry in data:
            if not isinstance(entry, Mapping) or entry.get("type") != "00":
                continue
            values = entry.get("values")
            if not isinstance(values, Mapping):
                self._bad(text, RealtimeError("a type-00 entry without values", field="values"))
                continue
            if values.get("913") == "체결" and values.get("909"):
                # order and execution numbers restart every day: the date is part of the key
                key = (today, str(values.get("9203", "")), str(values["909"]))
                if key in self._seen:
                    self.stats.duplicates += 1
                    continue
                self._seen[key] = None
                if len(self._seen) > self._dedup_memory:
                    self._seen.popitem(last=False)
            try:
                out.extend(events_from_values(values, trade_date=today))
            except RealtimeError as exc:
                self._bad(text, exc)
        return out

    def _bad(self, text: str, exc: Exception) -> None:
        self.stats.bad_frames += 1
        log.warning("feed: a frame could not be mapped: %s", exc)
        if self.on_bad_frame is not None:
            try:
                self.on_bad_frame(text, exc)
            except Exception:
                log.exception("on_bad_frame raised")

    def _deliver(self, text: str, message: Mapping[str, Any]) -> None:
        events = self._events_of(text, message)
        if not events:
            return
        try:
            self.on_events(events)
        except Exception:
            self.stats.callback_errors += 1
            log.exception("on_events raised; the feed goes on")
        self.stats.events += len(events)


class _Deliverer:
    """Hands frames to a worker thread, in order, once ``go`` is set (after the reconcile).

    The loop never waits for the book: it keeps reading and echoing PINGs meanwhile.
    """

    def __init__(self, feed: KiwoomFeed) -> None:
        self.feed = feed
        self.go = asyncio.Event()
        self.queue: asyncio.Queue[tuple[str, Mapping[str, Any]] | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._work())

    def push(self, text: str, message: Mapping[str, Any]) -> None:
        self.queue.put_nowait((text, message))

    def discard(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def _work(self) -> None:
        await self.go.wait()
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is None:
                return
            batch = [item]
            end = False
            while not self.queue.empty():  # take what is waiting: one thread hop for many
                nxt = self.queue.get_nowait()
                if nxt is None:
                    end = True
                    break
                batch.append(nxt)
            await loop.run_in_executor(None, self._deliver_all, batch)
            if end:
                return

    def _deliver_all(self, batch: list[tuple[str, Mapping[str, Any]]]) -> None:
        for text, message in batch:
            self.feed._deliver(text, message)

    async def drain(self) -> None:
        """Deliver what was received (if delivering had begun), then end."""
        if not self.go.is_set():
            self.task.cancel()
        self.queue.put_nowait(None)
        with contextlib.suppress(BaseException):
            await self.task


class _AuthRefused(Exception):
    def __init__(self, code: str, token: Secret) -> None:
        super().__init__(code)
        self.code = code
        self.token = token

    def __str__(self) -> str:
        return f"code {self.code}"


class _Replaced(Exception):
    pass


def _auth_code(answer: Mapping[str, Any]) -> str:
    """Return the authentication code of a refused LOGIN (``8005``...), or ""."""
    top = answer.get("return_code")
    if str(top).isdigit() and _AUTH_CODE.fullmatch(str(top)):
        return str(top)
    found = _AUTH_CODE.search(str(answer.get("return_msg", "")))
    return found.group(1) if found else ""


def _system_text(message: Mapping[str, Any]) -> str:
    code = message.get("code", "")
    text = message.get("message", message.get("return_msg", ""))
    return f"{code} {text}".strip() or "SYSTEM"


def _parse(text: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
