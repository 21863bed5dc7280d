"""The server side of Kiwoom's real-time WebSocket, for sim-server: LOGIN, REG, PING, REAL frames.

:class:`FeedServer` speaks the protocol of Kiwoom's ``/api/dostk/websocket`` (the one every
published Kiwoom client speaks, so any of them works against it with only the host changed):

- The client connects (handshake headers such as ``authorization`` or ``appkey`` are tolerated,
  never required) and, within 30 seconds, sends ``{"trnm": "LOGIN", "token": "<token>"}``.
  The first frame the server sends is the LOGIN answer, with an integer ``return_code``: ``0``,
  or ``1`` with ``[CODE=8005]`` in ``return_msg`` for a token the REST side never issued (or
  revoked, or that expired); the connection is then closed. A LOGIN with a token of an app key
  that already has a session replaces that session: the older one gets a ``SYSTEM`` message and
  is closed, as Kiwoom does.
- ``{"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": [""], "type": ["00"]}]}``
  registers real-time types (``refresh`` ``0`` replaces what was registered); ``REMOVE`` takes
  them away; both are answered ``{"trnm": "REG", "return_code": 0, "return_msg": ""}``.
- Every ``ping_interval`` seconds the server sends ``{"trnm": "PING"}``; a client that has not
  echoed it by the next one is disconnected. WebSocket control pings are answered.
- :meth:`FeedServer.publish` (thread-safe) sends ``REAL`` frames to every session registered for
  their type, in the order published.

Faults for tests (:meth:`FeedServer.inject`): drop every connection, send the next frames twice,
hold the next frames back, stop sending PING, send a SYSTEM message. The server runs its own
asyncio loop in a daemon thread; nothing here blocks the caller's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from http import HTTPStatus
from typing import Any, Final

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["WS_PATH", "FeedServer", "WsFault", "WsFaultKind"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: The path of Kiwoom's real-time WebSocket.
WS_PATH: Final = "/api/dostk/websocket"
_REPLACED: Final = "동일한 App key로 새 접속이 있어 기존 세션을 종료합니다"
_SYSTEM_CODE: Final = "R10001"
_TOKEN_INVALID: Final = "[CODE=8005]Token이 유효하지 않습니다"
_LOGIN_WAIT: Final = 30.0  # seconds a new connection has to send its LOGIN
_MAX_SESSION_QUEUE: Final = 100_000  # frames waiting for one slow session before it is dropped


class WsFaultKind(Enum):
    """A scripted misbehaviour of the WebSocket side."""

    DROP = "drop"  # close every connection at once, without a closing handshake
    DUPLICATE = "duplicate"  # send each of the next ``times`` frames twice
    DELAY = "delay"  # hold each of the next ``times`` frames back ``delay`` seconds
    NO_PING = "no_ping"  # send no PING for ``delay`` seconds
    SYSTEM = "system"  # send a SYSTEM message to every session and close it


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a non-negative number, not {value!r}")


@attrs.frozen
class WsFault:
    """A WebSocket fault: ``times`` frames (DUPLICATE, DELAY), ``delay`` seconds (DELAY, NO_PING).

    ``message`` is the text of a SYSTEM message.
    """

    kind: WsFaultKind = attrs.field(validator=attrs.validators.instance_of(WsFaultKind))
    times: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    delay: float = attrs.field(default=1.0, validator=_non_negative)
    message: str = _REPLACED


class _Session:
    """One logged-in connection: what it registered, and whether it owes a PING echo."""

    __slots__ = ("appkey", "conn", "owes_echo", "queue", "sender", "types")

    def __init__(self, conn: ServerConnection, appkey: str) -> None:
        self.conn = conn
        self.appkey = appkey
        self.types: set[str] = set()
        self.owes_echo = False
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.sender: asyncio.Task[None] | None = None


def _dumps(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class FeedServer:
    """A Kiwoom-compatible real-time WebSocket server (see the module docstring).

    ``check_token`` returns the app key a token was issued to, or None when it is not valid now
    (it is called on the server's own thread; make it thread-safe). ``ping_interval`` is the
    seconds between the server's PING messages.
    """

    def __init__(
        self,
        *,
        check_token: Callable[[str], str | None],
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 10.0,
        one_session_per_appkey: bool = True,
    ) -> None:
        if isinstance(ping_interval, bool) or not (
            isinstance(ping_interval, int | float) and ping_interval > 0
        ):
            raise ValueError(f"ping_interval must be positive seconds, not {ping_interval!r}")
        self.host = host
        self._port = port
        self.ping_interval = float(ping_interval)
        self.one_session_per_appkey = one_session_per_appkey
        self._check_token = check_token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._sessions: dict[ServerConnection, _Session] = {}
        self._faults: list[list[Any]] = []  # [WsFault, times left]
        self._faults_lock = threading.Lock()
        self._pending: deque[tuple[frozenset[str], str]] = deque()
        self._pending_lock = threading.Lock()
        self._wake_pending = False
        self._pings_paused_until = 0.0
        self.published = 0  # frames handed to publish()
        self.sent = 0  # frames written to sessions (a frame sent to two sessions counts twice)
        self.logins = 0  # successful LOGINs

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> FeedServer:
        """Bind and serve on a daemon thread with its own asyncio loop; return self."""
        if self._thread is not None:
            raise RuntimeError("this FeedServer was already started")
        self._thread = threading.Thread(target=self._run, daemon=True, name="FeedServer")
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            raise self._start_error
        if self._server is None:
            raise RuntimeError("the WebSocket server did not start")
        return self

    def stop(self) -> None:
        """Close every session and stop serving (idempotent, prompt)."""
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None or not loop.is_running():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); the thread ends
            self._start_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self._port,
            process_request=self._check_path,
            ping_interval=None,  # control pings: answered, never required of the client
            compression=None,
            max_queue=None,
        ) as server:
            self._server = server
            self._ready.set()
            pinger = asyncio.create_task(self._ping_loop())
            await self._stopping.wait()
            pinger.cancel()
            for session in list(self._sessions.values()):
                session.conn.transport.abort()
            server.close()
        logger.debug("WebSocket server stopped")

    @property
    def port(self) -> int:
        """Return the bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the FeedServer is not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the FeedServer has no socket")

    @property
    def url(self) -> str:
        """Return ``ws://HOST:PORT``, the base URL (the path is :data:`WS_PATH`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def sessions(self) -> int:
        """Return how many connections are logged in now."""
        return len(self._sessions)

    # -- publishing and faults -----------------------------------------------------------------
    def publish(self, frames: Sequence[Mapping[str, Any]]) -> None:
        """Send ``frames`` (whole ``REAL`` messages) to the registered sessions, in order.

        Thread-safe and non-blocking; frames published before :meth:`start` or after
        :meth:`stop` go nowhere.
        """
        loop = self._loop
        if not frames or loop is None or loop.is_closed():
            return
        self.published += len(frames)
        if not self._sessions:
            return  # nobody listens: nothing to encode
        texts = [(_frame_types(f), _dumps(f)) for f in frames]
        with self._pending_lock:
            self._pending.extend(texts)
            if self._wake_pending:
                return  # the loop has not taken the last ones yet: they go together
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._take_pending)

    def _take_pending(self) -> None:
        with self._pending_lock:
            texts = list(self._pending)
            self._pending.clear()
            self._wake_pending = False
        self._fan_out(texts)

    def inject(self, fault: WsFault) -> None:
        """Script ``fault`` (DROP, SYSTEM and NO_PING act at once; the others on next frames)."""
        if not isinstance(fault, WsFault):
            raise TypeError(f"expected a WsFault, not {fault!r}")
        loop = self._loop
        if fault.kind in (WsFaultKind.DUPLICATE, WsFaultKind.DELAY):
            with self._faults_lock:
                self._faults.append([fault, fault.times])
            return
        if loop is None:
            raise RuntimeError("the FeedServer is not started")
        loop.call_soon_threadsafe(self._act, fault)

    def _act(self, fault: WsFault) -> None:
        assert self._loop is not None
        if fault.kind is WsFaultKind.DROP:
            for session in list(self._sessions.values()):
                session.conn.transport.abort()
        elif fault.kind is WsFaultKind.NO_PING:
            self._pings_paused_until = self._loop.time() + fault.delay
        elif fault.kind is WsFaultKind.SYSTEM:
            for session in list(self._sessions.values()):
                self._system(session, fault.message)

    def _take_fault(self) -> WsFault | None:
        with self._faults_lock:
            for entry in self._faults:
                entry[1] -= 1
                if entry[1] <= 0:
                    self._faults.remove(entry)
                fault: WsFault = entry[0]
                return fault
        return None

    def _fan_out(self, texts: list[tuple[frozenset[str], str]]) -> None:
        assert self._loop is not None
        for types, text in texts:
            fault = self._take_fault() if self._faults else None
            if fault is not None and fault.kind is WsFaultKind.DELAY:
                self._loop.call_later(fault.delay, self._deliver, types, text)
                continue
            self._deliver(types, text)
            if fault is not None and fault.kind is WsFaultKind.DUPLICATE:
                self._deliver(types, text)

    def _deliver(self, types: frozenset[str], text: str) -> None:
        for session in list(self._sessions.values()):
            if session.types & types:
                if session.queue.qsize() >= _MAX_SESSION_QUEUE:
                    logger.warning("a session fell %d frames behind: dropped", _MAX_SESSION_QUEUE)
                    session.conn.transport.abort()
                    continue
                session.queue.put_nowait(text)

    # -- connections ---------------------------------------------------------------------------
    @staticmethod
    def _check_path(conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0].rstrip("/") != WS_PATH:
            return conn.respond(HTTPStatus.NOT_FOUND, f"not found; the path is {WS_PATH}\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        session: _Session | None = None
        try:
            session = await self._login(conn)
            if session is None:
                return
            session.sender = asyncio.create_task(self._send_loop(session))
            async for message in conn:
                await self._on_message(session, message)
        except ConnectionClosed:
            pass
        finally:
            if session is not None:
                if self._sessions.get(conn) is session:
                    del self._sessions[conn]
                session.queue.put_nowait(None)
                if session.sender is not None:
                    with contextlib.suppress(BaseException):
                        await session.sender

    async def _login(self, conn: ServerConnection) -> _Session | None:
        """Read the first message: a LOGIN with a valid token gives a session; else close."""
        try:
            message = await asyncio.wait_for(conn.recv(), _LOGIN_WAIT)
        except TimeoutError:
            await conn.close(1008, "no LOGIN")
            return None
        request = _parse(message)
        trnm = request.get("trnm") if request is not None else None
        if trnm != "LOGIN":
            answer = {"trnm": trnm or "", "return_code": 1, "return_msg": "LOGIN이 필요합니다"}
            await conn.send(_dumps(answer))
            await conn.close(1008, "LOGIN first")
            return None
        token = request.get("token") if request is not None else None
        appkey = self._check_token(token) if isinstance(token, str) and token else None
        if appkey is None:
            answer = {"trnm": "LOGIN", "return_code": 1, "return_msg": _TOKEN_INVALID}
            await conn.send(_dumps(answer))
            await conn.close(1008, "token refused")
            return None
        if self.one_session_per_appkey:
            for other in list(self._sessions.values()):
                if other.appkey == appkey:
                    self._system(other, _REPLACED)
        session = _Session(conn, appkey)
        self._sessions[conn] = session
        self.logins += 1
        await conn.send(_dumps({"trnm": "LOGIN", "return_code": 0, "return_msg": ""}))
        return session

    def _system(self, session: _Session, message: str) -> None:
        """Tell ``session`` it is ended (SYSTEM), then close it."""
        self._sessions.pop(session.conn, None)
        frame = {"trnm": "SYSTEM", "code": _SYSTEM_CODE, "message": message}
        session.queue.put_nowait(_dumps(frame))
        session.queue.put_nowait(None)  # the sender closes after writing what is queued

    async def _send_loop(self, session: _Session) -> None:
        conn = session.conn
        queue = session.queue
        try:
            while True:
                text = await queue.get()
                if text is None:
                    break
                await conn.send(text)
                self.sent += 1
        except ConnectionClosed:
            return
        await conn.close(1000, "session ended")

    async def _on_message(self, session: _Session, message: str | bytes) -> None:
        request = _parse(message)
        if request is None:
            logger.info("ignored a message that is not a JSON object")
            return
        trnm = request.get("trnm")
        if trnm == "PING":
            session.owes_echo = False
            return
        if trnm == "LOGIN":
            answer: dict[str, Any] = {"trnm": "LOGIN", "return_code": 0, "return_msg": ""}
        elif trnm in ("REG", "REMOVE"):
            answer = self._register(session, trnm, request)
        else:
            answer = {"trnm": trnm, "return_code": 1, "return_msg": f"알 수 없는 trnm: {trnm}"}
        session.queue.put_nowait(_dumps(answer))

    @staticmethod
    def _register(session: _Session, trnm: str, request: Mapping[str, Any]) -> dict[str, Any]:
        data = request.get("data")
        types: set[str] = set()
        entries = data if isinstance(data, list) else [request]
        for entry in entries:
            if not isinstance(entry, Mapping):
                return {"trnm": trnm, "return_code": 1, "return_msg": "data 형식 오류"}
            kinds = entry.get("type", entry.get("- type"))
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                return {"trnm": trnm, "return_code": 1, "return_msg": "type 형식 오류"}
            types.update(kinds)
        if trnm == "REG":
            if str(request.get("refresh", "1")) == "0":
                session.types.clear()
            session.types |= types
        else:
            session.types -= types
        return {"trnm": trnm, "return_code": 0, "return_msg": ""}

    async def _ping_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval)
            if loop.time() < self._pings_paused_until:
                continue
            for session in list(self._sessions.values()):
                if session.owes_echo:
                    logger.info("a session did not echo PING: closed")
                    self._sessions.pop(session.conn, None)
                    session.queue.put_nowait(None)
                    continue
                session.owes_echo = True
                session.queue.put_nowait('{"trnm":"PING"}')


def _parse(message: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _frame_types(frame: Mapping[str, Any]) -> frozenset[str]:
    data = frame.get("data")
    if not isinstance(data, list):
        return frozenset()
    return frozenset(e["type"] for e in data if isinstance(e, Mapping) and "type" in e)
