"""The Kiwoom adapter against hostile servers, over real HTTP on loopback.

Each test is the regression test of one attack on the adapter: a redirect or a bottomless JSON
answer that used to escape as a raw exception, a server trickling bytes past every timeout, a
continuation that never ends, a compressed bomb, a token the server hands out already expired,
and a traceback that shows its local variables. The servers here are small purpose-built
HTTP/1.1 servers writing raw bytes, so they can misbehave in ways a real HTTP library will not.
"""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import socketserver
import ssl
import subprocess
import threading
import time
import traceback
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from adapters.cli.kiwoom_cli import EXIT
from adapters.cli.main import main
from adapters.kiwoom.auth import Credentials, TokenManager
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import (
    AnswerTooLarge,
    AuthError,
    ConfigError,
    ConnectFailed,
    KiwoomError,
    NotJson,
    Outcome,
    PagingError,
    RequestNotSent,
    Timeout,
    TokenInvalid,
    TokenUnavailable,
    UnexpectedFailure,
)
from adapters.kiwoom.secret import Secret
from adapters.kiwoom.simserver import SimServer
from adapters.kiwoom.transport import Transport
from engine import OrderBook, Side
from engine.sessions import KST

APPKEY = "hardening-appkey-3c81d0"
SECRET = "hardening-secretkey-e5a294"
TOKEN = "hardening-token-91b7f4c2"
ORDER = "/api/dostk/ordr"
CANCEL = {"dmst_stex_tp": "KRX", "orig_ord_no": "0000140", "stk_cd": "005930", "cncl_qty": "0"}
OPEN_ORDERS = {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"}


# -- a server that answers with raw bytes ------------------------------------------------------
class Out(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class Exchange:
    """One request the hostile server received, and the socket to answer it on."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes, out: Out) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self.out = out

    @property
    def api_id(self) -> str:
        return self.headers.get("api-id", "")

    def raw(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        head = {"Content-Type": "application/json;charset=UTF-8", "Content-Length": str(len(body))}
        head.update(headers or {})
        lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'X')}"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        self.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def json(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.send(200, json.dumps(body).encode(), headers)


#: Answers one request; returns False to close the connection afterwards.
Reply = Callable[[Exchange], bool]


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    """A reply that always sends this answer."""

    def reply(ex: Exchange) -> bool:
        ex.send(status, body, headers)
        return True

    return reply


def ok(ex: Exchange) -> bool:
    ex.json({"return_code": 0, "return_msg": "ok"}, {"cont-yn": "N", "next-key": ""})
    return True


def token_reply(expires_dt: str = "") -> Reply:
    def reply(ex: Exchange) -> bool:
        expires = expires_dt or (datetime.now(KST) + timedelta(days=1)).strftime("%Y%m%d%H%M%S")
        ex.json({"return_code": 0, "return_msg": "ok", "token": TOKEN, "expires_dt": expires})
        return True

    return reply


class Hostile:
    """A loopback HTTP/1.1 server answering each api-id with a :data:`Reply`."""

    def __init__(
        self, replies: dict[str, Reply] | None = None, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.replies: dict[str, Reply] = {"au10001": token_reply(), "au10002": ok}
        self.replies.update(replies or {})
        self.default: Reply = ok  # for the api-ids without a reply of their own
        self.calls: Counter[str] = Counter()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while owner._one(self.rfile, self.wfile):
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the client hung up on a trickle: expected here

            def get_request(self) -> tuple[Any, Any]:
                sock, address = super().get_request()
                return (sock if tls is None else tls.wrap_socket(sock, server_side=True)), address

        self._server = Server(("127.0.0.1", 0), Handler)
        scheme = "http" if tls is None else "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def _one(self, rfile: Any, wfile: Out) -> bool:
        line = rfile.readline(65537)
        if not line.strip():
            return False
        headers: dict[str, str] = {}
        while (header := rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0")))
        exchange = Exchange(line.split()[1].decode(), headers, body, wfile)
        self.calls[exchange.api_id] += 1
        return self.replies.get(exchange.api_id, self.default)(exchange)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Hostile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def client_of(base_url: str, **kwargs: Any) -> KiwoomClient:
    options: dict[str, Any] = {
        "appkey": APPKEY,
        "secretkey": SECRET,
        "allow_loopback": True,
        "rates": {"*": None},
        "timeout": (1.0, 1.0),
        "throttle_pause": 0.01,
    }
    options.update(kwargs)
    return KiwoomClient(base_url, **options)


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


def caught(action: Callable[[], object]) -> KiwoomError:
    """Run ``action``; return the KiwoomError it raised (any other exception fails the test).

    A function of its own, so the caught error's traceback starts here and holds no test local.
    """
    try:
        action()
    except KiwoomError as exc:
        return exc
    raise AssertionError("no KiwoomError was raised")


# -- 1. after sending, anything unexpected is UNKNOWN ------------------------------------------
def redirect(ex: Exchange) -> bool:
    ex.send(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
    return True


def bottomless(ex: Exchange) -> bool:
    ex.send(200, b'{"return_code": 0, "ord_no": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    return True


def deep(ex: Exchange) -> bool:  # parses (not past the recursion limit) but nests 400 deep
    ex.json({"return_code": 0, "ord_no": "0000141", "x": json.loads("[" * 400 + "]" * 400)})
    return True


def bad_status_line(ex: Exchange) -> bool:
    ex.raw(b"HTTP/1.1 two hundred OK\r\n\r\n")
    return False


def bad_chunks(ex: Exchange) -> bool:
    ex.raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    return False


def short_body(ex: Exchange) -> bool:
    ex.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + b'{"return_code": 0')
    return False


def huge_number(ex: Exchange) -> bool:
    ex.send(200, b'{"return_code": 0, "ord_no": ' + b"9" * 10_000 + b"}")
    return True


def brotli(ex: Exchange) -> bool:
    ex.send(200, b"\x1b\x03\x00", {"Content-Encoding": "br"})
    return True


def cut_gzip(ex: Exchange) -> bool:
    ex.send(200, gzip.compress(b'{"return_code": 0, "ord_no": "0000141"}')[:-12], gzip_header())
    return True


def not_utf8(ex: Exchange) -> bool:
    ex.send(200, b'{"return_code": 0, "ord_no": "\xff\xfe"}')
    return True


def gzip_header() -> dict[str, str]:
    return {"Content-Encoding": "gzip"}


HOSTILE_ANSWERS: dict[str, Reply] = {
    "redirect": redirect,
    "bottomless": bottomless,
    "deep": deep,
    "bad_status_line": bad_status_line,
    "bad_chunks": bad_chunks,
    "short_body": short_body,
    "huge_number": huge_number,
    "brotli": brotli,
    "cut_gzip": cut_gzip,
    "not_utf8": not_utf8,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ANSWERS))
def test_any_failure_after_sending_is_an_unknown_outcome(hostile: Hostile, name: str) -> None:
    hostile.replies["kt10003"] = HOSTILE_ANSWERS[name]
    with client_of(hostile.base_url) as client:
        error = caught(lambda: client.cancel(orig_ord_no="0000140", stk_cd="005930", qty=0))
        assert error.outcome is Outcome.UNKNOWN and not error.safe_to_resend, repr(error)
        assert error.api_id == "kt10003"
        assert hostile.calls["kt10003"] == 1  # it did reach the server
        # the client is still usable: the next call gets a fresh, healthy connection
        assert client.call("ka10075", OPEN_ORDERS).body["return_code"] == 0


def test_a_redirect_or_a_bottomless_answer_has_its_own_error(hostile: Hostile) -> None:
    hostile.replies["kt10003"] = redirect
    with client_of(hostile.base_url) as client:
        error = caught(lambda: client.call("kt10003", CANCEL))
        assert isinstance(error, NotJson) and error.http_status == 302
        hostile.replies["kt10003"] = bottomless
        error = caught(lambda: client.call("kt10003", CANCEL))
        assert isinstance(error, NotJson) and "not a Kiwoom JSON answer" in error.message


def test_an_unexpected_exception_below_the_transport_is_unknown_not_raw(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: a bug in the answer's reading, after a real request reached the server.
    def broken(data: bytes) -> None:
        raise LookupError("a bug")

    with client_of(hostile.base_url) as client:
        client.tokens.token()  # au10001 must not be the call that breaks
        monkeypatch.setattr("adapters.kiwoom.transport._json_object", broken)
        error = caught(lambda: client.call("kt10003", CANCEL))
    assert isinstance(error, UnexpectedFailure) and error.outcome is Outcome.UNKNOWN
    assert "LookupError" in error.message and hostile.calls["kt10003"] == 1
    assert error.__context__ is None and error.__cause__ is None


def test_a_secret_inside_a_lower_layer_s_message_is_blanked_out(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: a lower layer that quotes what it sent in its message.
    def quoting(raw: object, watch: object, limit: int) -> bytes:
        raise OSError(f"reset while sending Bearer {TOKEN} for {APPKEY}")

    with client_of(hostile.base_url) as client:
        client.tokens.token()
        monkeypatch.setattr("adapters.kiwoom.transport._read_body", quoting)
        error = caught(lambda: client.call("kt10003", CANCEL))
        assert error.outcome is Outcome.UNKNOWN and "Bearer <hidden>" in str(error)
        assert TOKEN not in str(error) and TOKEN not in repr(error)
        error = caught(
            lambda: client.transport.post(
                "/oauth2/token", "au10001", {"appkey": Secret(APPKEY), "secretkey": Secret(SECRET)}
            )
        )
        assert APPKEY not in str(error) and "for <hidden>" in str(error)


def test_failures_certainly_before_sending_are_not_processed(hostile: Hostile) -> None:
    with client_of(hostile.base_url) as client:
        error = caught(lambda: client.call("kt10003", {"qty": object()}))
        assert isinstance(error, RequestNotSent) and error.outcome is Outcome.NOT_PROCESSED
        error = caught(lambda: client.call("ka10075", OPEN_ORDERS, cont_key="a\r\nX-Evil: 1"))
        assert isinstance(error, RequestNotSent)
        assert hostile.calls["kt10003"] == hostile.calls["ka10075"] == 0
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as closed:
        port = closed.server_address[1]
    with client_of(f"http://127.0.0.1:{port}") as client:  # nothing listens there any more
        error = caught(lambda: client.transport.post(ORDER, "kt10003", CANCEL))
        assert isinstance(error, ConnectFailed) and error.outcome is Outcome.NOT_PROCESSED


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_an_untrusted_tls_server_gets_nothing_and_the_failure_is_not_processed(
    tmp_path: Path,
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", *ec, "-subj", "/CN=127.0.0.1", *files],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Hostile(tls=context) as server:
        transport = Transport(server.base_url, allow_loopback=True, timeout=(1.0, 1.0))
        error = caught(lambda: transport.post(ORDER, "kt10003", CANCEL, token=Secret(TOKEN)))
        transport.close()
    # the certificate is not trusted: the handshake fails before the request is written
    assert isinstance(error, ConnectFailed) and error.outcome is Outcome.NOT_PROCESSED
    assert "CERTIFICATE_VERIFY_FAILED" in error.message and server.calls["kt10003"] == 0


class Proxy(Hostile):
    """Forwards every TR to a SimServer, except those given their own reply."""

    def __init__(self, target: SimServer, replies: dict[str, Reply]) -> None:
        self.target = target
        super().__init__({"au10001": self.forward, "au10002": self.forward})
        self.default = self.forward
        self.replies.update(replies)

    def forward(self, ex: Exchange) -> bool:
        host, port = self.target.base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        skip = ("host", "connection", "content-length", "accept-encoding")
        conn.request(
            "POST", ex.path, ex.body, {k: v for k, v in ex.headers.items() if k not in skip}
        )
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        kept = {k: v for k, v in answer.getheaders() if k.lower() in ("cont-yn", "next-key")}
        ex.send(answer.status, data, kept)
        return True


def forward_then_garble(proxy: Proxy) -> Reply:
    def reply(ex: Exchange) -> bool:
        proxy.forward(Exchange(ex.path, ex.headers, ex.body, _Sink()))  # the exchange acts
        return bottomless(ex)

    return reply


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(seed=5, rate=None, market=False, page_size=2) as srv:
        yield srv


def test_the_cli_exits_5_not_1_when_a_cancel_gets_a_hostile_answer(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIWOOM_APPKEY", APPKEY)
    monkeypatch.setenv("KIWOOM_SECRETKEY", SECRET)
    with client_of(sim.base_url) as client:
        no = client.place(stk_cd="005930", side=Side.BUY, qty=10, price=50_000).ord_no
    argv = ["cancel", "--ord-no", no, "--stk-cd", "005930", "--qty", "4", "--timeout", "2"]
    proxy = Proxy(sim, {"kt10003": redirect})
    with proxy:
        assert main([*argv, "--base-url", proxy.base_url]) == EXIT["unknown"] == 5
    out = capsys.readouterr().out
    assert "outcome:  UNKNOWN" in out and "do NOT send it again" in out
    assert proxy.calls["kt10003"] == 1 and sim.calls["kt10003"] == 0
    assert sim.truth(no).leaves == 10
    # the exchange did act, the answer was garbage: reconciliation finds the cancel
    proxy = Proxy(sim, {})
    proxy.replies["kt10003"] = forward_then_garble(proxy)
    with proxy:
        assert main([*argv, "--base-url", proxy.base_url]) == EXIT["accepted"]
    out = capsys.readouterr().out
    assert "outcome:  UNKNOWN" in out and "the server did take it" in out
    assert sim.calls["kt10003"] == 1 and sim.truth(no).cancelled == 4


# -- 2. a deadline for the whole call -----------------------------------------------------------
def trickle_body(ex: Exchange) -> bool:
    ex.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
    for _ in range(400):
        ex.raw(b" ")
        time.sleep(0.1)
    return False


def trickle_status_line(ex: Exchange) -> bool:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        ex.raw(bytes([byte]))
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("reply", [trickle_body, trickle_status_line])
def test_a_trickling_server_is_cut_off_at_the_deadline(hostile: Hostile, reply: Reply) -> None:
    hostile.replies["kt10003"] = reply
    # every byte comes within the 0.5 s read timeout; only the deadline can end the call
    with client_of(hostile.base_url, timeout=(1.0, 0.5), deadline=1.5) as client:
        client.tokens.token()
        started = time.monotonic()
        error = caught(lambda: client.call("kt10003", CANCEL))
        took = time.monotonic() - started
        assert isinstance(error, Timeout) and error.outcome is Outcome.UNKNOWN
        assert "1.5 s deadline" in error.message
        assert 1.4 <= took < 2.5, took
        assert client.call("ka10075", OPEN_ORDERS).body["return_code"] == 0


def test_the_deadline_defaults_to_connect_plus_read_and_is_checked() -> None:
    transport = Transport("http://127.0.0.1:1", allow_loopback=True, timeout=(1.5, 4.0))
    assert transport.deadline == 5.5
    assert Transport("http://127.0.0.1:1", allow_loopback=True, deadline=0.25).deadline == 0.25
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ConfigError):
            Transport("http://127.0.0.1:1", allow_loopback=True, deadline=bad)


def test_a_slow_but_timely_answer_is_read_in_full(hostile: Hostile) -> None:
    def slow(ex: Exchange) -> bool:
        body = json.dumps({"return_code": 0, "ord_no": "0000141", "pad": "x" * 2000}).encode()
        ex.raw(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), 500):
            ex.raw(body[i : i + 500])
            time.sleep(0.05)
        return True

    hostile.replies["kt10003"] = slow
    with client_of(hostile.base_url, deadline=2.0) as client:
        assert client.cancel(orig_ord_no="0000140", stk_cd="005930", qty=0).ord_no == "0000141"


# -- 3. continuation ----------------------------------------------------------------------------
def pages(cont: Callable[[int], tuple[str, str]]) -> Reply:
    """ka10075 pages: page n has one row and the (cont-yn, next-key) ``cont(n)`` gives."""
    served = [0]

    def reply(ex: Exchange) -> bool:
        served[0] += 1
        row = {"ord_no": f"{served[0]:07d}", "stk_cd": "005930", "io_tp_nm": "+매수"}
        row |= {"ord_qty": "1", "oso_qty": "1", "ord_pric": "1000"}
        flag, key = cont(served[0])
        ex.json(
            {"return_code": 0, "return_msg": "ok", "oso": [row]}, {"cont-yn": flag, "next-key": key}
        )
        return True

    return reply


def test_the_same_next_key_twice_is_an_error_not_ten_thousand_pages(hostile: Hostile) -> None:
    hostile.replies["ka10075"] = pages(lambda n: ("Y", "k1" if n >= 2 else "k0"))
    with client_of(hostile.base_url) as client:
        error = caught(client.open_orders)
        assert isinstance(error, PagingError) and "repeats the next-key" in error.message
        assert error.outcome is Outcome.UNKNOWN and not error.safe_to_resend
        assert hostile.calls["ka10075"] == 3
        # the broker's reconciliation raises too: a short list never reconciles as "clean"
        with pytest.raises(PagingError):
            KiwoomBroker(client, OrderBook()).reconcile()


@pytest.mark.parametrize("flag", ["X", "YES", "1", "Y N"])
def test_a_cont_yn_neither_y_nor_n_is_an_error(hostile: Hostile, flag: str) -> None:
    hostile.replies["ka10075"] = pages(lambda n: (flag, f"k{n}"))
    with client_of(hostile.base_url) as client:
        error = caught(client.open_orders)
        assert isinstance(error, PagingError) and "neither Y nor N" in error.message
        assert hostile.calls["ka10075"] == 1


def test_cont_yn_is_read_regardless_of_case_and_spacing(hostile: Hostile) -> None:
    hostile.replies["ka10075"] = pages(lambda n: (" y ", f"k{n}") if n < 3 else ("n ", ""))
    with client_of(hostile.base_url) as client:
        assert [o.ord_no for o in client.open_orders()] == ["0000001", "0000002", "0000003"]


def test_pages_are_capped(hostile: Hostile) -> None:
    hostile.replies["ka10075"] = pages(lambda n: ("Y", f"k{n}"))
    with client_of(hostile.base_url, max_pages=5) as client:
        error = caught(client.open_orders)
        assert isinstance(error, PagingError) and "more than 5 pages" in error.message
        assert hostile.calls["ka10075"] == 5
    with pytest.raises(ConfigError):
        client_of(hostile.base_url, max_pages=0)


# -- 4. a cap on the answer's size --------------------------------------------------------------
def bomb(coding: str, size: int) -> bytes:
    """``size`` zero bytes after a JSON opening, compressed as ``coding``."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + 15 if coding == "gzip" else 15)
    parts = [pack.compress(b'{"return_code": 0, "pad": "')]
    zeros = b"0" * (1 << 20)
    parts += [pack.compress(zeros) for _ in range(size >> 20)]
    return b"".join([*parts, pack.compress(b'"}'), pack.flush()])


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compressed_bomb_is_stopped_at_the_cap(hostile: Hostile, coding: str) -> None:
    body = bomb(coding, 64 << 20)
    assert len(body) < 1 << 20  # 64 MiB inflated from well under 1 MiB
    hostile.replies["kt10003"] = answer(200, body, {"Content-Encoding": coding})
    with client_of(hostile.base_url, max_answer=1 << 20) as client:
        client.tokens.token()
        tracemalloc.start()
        try:
            error = caught(lambda: client.call("kt10003", CANCEL))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert isinstance(error, AnswerTooLarge) and error.outcome is Outcome.UNKNOWN
    assert peak < 4 << 20, f"peak {peak} bytes while reading a 64 MiB bomb capped at 1 MiB"


def test_plain_answers_over_the_cap_are_refused_announced_or_not(hostile: Hostile) -> None:
    big = json.dumps({"return_code": 0, "pad": "x" * (2 << 20)}).encode()

    def chunked(ex: Exchange) -> bool:
        ex.raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(big), 1 << 16):
            part = big[i : i + (1 << 16)]
            ex.raw(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        ex.raw(b"0\r\n\r\n")
        return True

    with client_of(hostile.base_url, max_answer=1 << 20) as client:
        for reply in (answer(200, big), chunked):
            hostile.replies["ka10075"] = reply
            error = caught(lambda: client.call("ka10075", OPEN_ORDERS))
            assert isinstance(error, AnswerTooLarge), repr(error)
        hostile.replies["ka10075"] = ok
        assert client.call("ka10075", OPEN_ORDERS).body["return_code"] == 0
    with pytest.raises(ConfigError):
        client_of(hostile.base_url, max_answer=10)


def test_a_compressed_answer_within_the_cap_is_decoded(hostile: Hostile) -> None:
    accepted = {"return_code": 0, "return_msg": "ok", "ord_no": "0000141", "cncl_qty": "4"}
    raw = json.dumps(accepted).encode()
    bodies = {
        "gzip": gzip.compress(raw),
        "deflate": zlib.compress(raw),
        "identity": raw,
    }
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    bodies["deflate-raw"] = raw_deflate.compress(raw) + raw_deflate.flush()
    with client_of(hostile.base_url) as client:
        for name, body in bodies.items():
            coding = name.split("-")[0]
            hostile.replies["kt10003"] = answer(200, body, {"Content-Encoding": coding})
            got = client.cancel(orig_ord_no="0000140", stk_cd="005930", qty=0)
            assert (got.ord_no, got.qty) == ("0000141", 4), name


# -- 5. an already-expired token is not re-issued on every call --------------------------------
def test_a_token_issued_already_expired_is_used_not_reissued_per_call(hostile: Hostile) -> None:
    hostile.replies["au10001"] = token_reply("20000101000000")  # long past
    with client_of(hostile.base_url) as client:
        for _ in range(5):
            client.call("ka10075", OPEN_ORDERS)
        assert hostile.calls["au10001"] == 1 and hostile.calls["ka10075"] == 5


def test_the_host_clock_far_ahead_does_not_make_every_call_reissue(sim: SimServer) -> None:
    ahead = datetime.now(UTC) + timedelta(days=3)
    with client_of(sim.base_url, now=lambda: ahead) as client:
        for _ in range(4):
            client.open_orders()
        assert sim.calls["au10001"] == 1
        sim.expire_tokens()  # the server's word (8005) still gets a new token at once
        client.open_orders()
        assert sim.calls["au10001"] == 2


def test_an_expiring_token_is_asked_for_again_after_the_interval(hostile: Hostile) -> None:
    hostile.replies["au10001"] = token_reply("20000101000000")
    clock = [100.0]
    transport = Transport(hostile.base_url, allow_loopback=True)
    tokens = TokenManager(
        transport, Credentials(APPKEY, SECRET), reissue_interval=60.0, clock=lambda: clock[0]
    )
    assert tokens.token() == Secret(TOKEN)
    clock[0] += 59.0
    tokens.token()
    assert hostile.calls["au10001"] == 1
    clock[0] += 1.0
    tokens.token()
    assert hostile.calls["au10001"] == 2 and tokens.issued == 2
    with pytest.raises(ConfigError):
        TokenManager(transport, Credentials(APPKEY, SECRET), reissue_interval=-1)
    transport.close()


# -- 6. no secret in a traceback's local variables ----------------------------------------------
def rendered(error: BaseException) -> str:
    te = traceback.TracebackException.from_exception(error, capture_locals=True)
    return "".join(te.format())


def test_no_secret_in_a_traceback_that_shows_local_variables(hostile: Hostile) -> None:
    texts: list[str] = []
    with client_of(hostile.base_url) as client:
        for hostile_reply in (redirect, bottomless, short_body):
            hostile.replies["kt10003"] = hostile_reply
            texts.append(
                rendered(
                    caught(lambda: client.cancel(orig_ord_no="0000140", stk_cd="005930", qty=0))
                )
            )
        refused = {"return_code": 3, "return_msg": "[8005:Token이 유효하지 않습니다]"}
        hostile.replies["ka10075"] = answer(200, json.dumps(refused).encode())
        error = caught(lambda: client.call("ka10075", OPEN_ORDERS))
        assert isinstance(error, TokenInvalid)
        texts.append(rendered(error))
    sent = hostile.calls["kt10003"]
    au10001_failures: list[tuple[Reply, type[KiwoomError]]] = [
        (short_body, TokenUnavailable),
        (token_reply("not-a-date"), AuthError),  # a readable answer that holds the token
        (redirect, TokenUnavailable),
    ]
    for reply, kind in au10001_failures:  # au10001's body holds the keys
        hostile.replies["au10001"] = reply
        with client_of(hostile.base_url) as client:
            error = caught(lambda: client.call("kt10003", CANCEL))
            assert type(error) is kind and error.outcome is Outcome.NOT_PROCESSED
            assert hostile.calls["kt10003"] == sent, "the TR went out without a token"
            texts.append(rendered(error))
    for text in texts:
        assert "self = KiwoomClient(" in text  # the locals were rendered
        for secret in (TOKEN, APPKEY, SECRET):
            assert secret not in text, text
    assert any("token = Secret(<hidden>)" in t for t in texts)


def test_secret_hides_its_value_everywhere_but_reveal() -> None:
    secret = Secret(TOKEN)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r:>40}", repr([secret])):
        assert TOKEN not in text and "hidden" in text
    assert secret.reveal() == TOKEN and Secret.of(secret) is secret and Secret.of(TOKEN) == secret
    assert secret != Secret("other") and secret != TOKEN and bool(secret)
    assert len({secret, Secret(TOKEN)}) == 1
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
    creds = Credentials(Secret(APPKEY), SECRET)
    assert creds.appkey.reveal() == APPKEY and creds.secretkey == Secret(SECRET)
    with pytest.raises(ConfigError):
        Credentials(Secret("  "), SECRET)
